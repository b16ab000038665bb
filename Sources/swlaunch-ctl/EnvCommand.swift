import ArgumentParser
import Foundation
import Launch
import Toolchain
import Wire

struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Create and list toolchain environments (a compiler and everything it loads, content-addressed).",
        subcommands: [EnvCreate.self, EnvList.self])

    static var defaultDirectory: String {
        defaultStateDirectory() + "/envs"
    }
}

struct EnvCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Pack a compiler with every file it needs to run on another machine of this platform.",
        discussion: """
            Packs the C and C++ drivers, the programs they run (cc1, cc1plus, as), the GCC installation marker \
            clang needs, and every shared library they load (resolved recursively, as ldd does), with the \
            symlinks on the way, into a deterministic .tar.zst. Its id is a hash of the platform, every path and \
            every file's content: the same toolchain gives the same id on every machine and every run. Prints \
            the id, the archive's path and its size.
            """)

    @Option(help: "The C compiler (default: cc on PATH).") var cc: String?
    @Option(help: "The C++ compiler (default: c++ on PATH).") var cxx: String?
    @Option(help: "An extra file to include (repeatable), for example a specs file.") var add: [String] = []
    @Option(help: ArgumentHelp("The platform the toolchain runs on, as helpers announce it (default: this machine's).", valueName: "arch-os"))
    var platform: String?
    @Option(name: .shortAndLong, help: "Where to write the archive (default: <state>/envs/<id>.tar.zst).") var output: String?
    @Option(help: ArgumentHelp("""
        A compiler of this machine the environment's compilers stand in for (repeatable): a Pi's native g++ for an \
        x86_64 arm-linux-gnueabihf-g++. Both are asked for their version, target, configure options, target defaults \
        and predefined macros; any difference is an error, a different package revision a note. The identity is \
        recorded, and swlaunchd refuses the environment once this compiler changes.
        """, valueName: "compiler")) var standInFor: [String] = []

    func run() throws {
        let locator = CompilerLocator()
        var compilers: [String] = []
        for (given, fallback) in [(cc, "cc"), (cxx, "c++")] {
            guard let path = locator.locate(given ?? fallback) else {
                if given == nil { continue }
                throw ValidationError("compiler '\(given!)' not found")
            }
            compilers.append(path)
        }
        guard !compilers.isEmpty else { throw ValidationError("no cc or c++ on PATH; name compilers with --cc/--cxx") }
        let resolver = FileResolver()
        let platform = self.platform ?? currentPlatform()
        let registry = ToolchainRegistry(resolver: resolver, platform: platform)
        let cwd = Posix.currentDirectory() ?? "/"
        for extra in add {
            guard Posix.fileExists(FileResolver.absolute(extra, in: cwd)) else { throw ValidationError("--add \(extra): no such file") }
        }
        let standIns = try standIns(for: EnvironmentManifest(platform: platform, compilers: compilers), locator: locator)
        let toolchain = try registry.environment(compilers: compilers, extra: try resolver.tree(files: add, directories: [], in: cwd))
        let id = toolchain.id
        let path = output ?? EnvCommand.defaultDirectory + "/" + id + ".tar.zst"
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try EnvironmentArchive.write(toolchain, manifest: EnvironmentManifest(platform: platform, compilers: compilers, standsInFor: standIns), to: path)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        print("\(id) \(path) \(size) bytes, \(toolchain.files.count) files, \(toolchain.symlinks.count) links, for \(platform): \(compilers.joined(separator: " "))")
    }
}

/// A stand-in pair that would compile other objects (printed without the usage text).
struct StandInRefused: Error, CustomStringConvertible {
    let description: String
}

extension EnvCreate {
    /// Each `--stand-in-for` compiler beside the environment's compiler for it, checked to generate the same code.
    func standIns(for manifest: EnvironmentManifest, locator: CompilerLocator) throws -> [EnvironmentManifest.StandIn] {
        try standInFor.map { name in
            guard let client = locator.locate(name) else { throw ValidationError("--stand-in-for \(name): not found on PATH") }
            guard let standIn = manifest.compiler(for: name) else {
                throw ValidationError("--stand-in-for \(name): none of \(manifest.compilers.joined(separator: ", ")) is a compiler for it")
            }
            let clientIdentity: CompilerIdentity, standInIdentity: CompilerIdentity
            do {
                clientIdentity = try CompilerIdentity.probe(client)
                do { standInIdentity = try CompilerIdentity.probe(standIn) } catch {
                    // A cross compiler for another machine (x86_64 on the Pi) cannot run here: its file says enough.
                    guard let bytes = Posix.readFile(standIn) else { throw CompilerIdentityError(reason: "\(standIn): cannot read") }
                    standInIdentity = try CompilerIdentity(driverFile: bytes)
                    printError("note: \(standIn) does not run here (\(error)); compared by the version and configure options in its file")
                }
            } catch { throw ValidationError("--stand-in-for \(name): \(error)") }
            let differences = standInIdentity.differences(from: clientIdentity)
            guard differences.isEmpty else {
                throw StandInRefused(description: """
                    \(standIn) (\(standInIdentity.summary)) cannot stand in for \(client) (\(clientIdentity.summary)): \
                    it would compile other objects. The stand-in's against \(name)'s: \(differences.joined(separator: "; "))
                    """)
            }
            if standInIdentity.differsOnlyInRevision(from: clientIdentity) {
                printError("note: \(standIn) stands in for \(client): the same gcc and configuration, package revisions differ "
                           + "(\(standInIdentity.packageVersion ?? "none") against \(clientIdentity.packageVersion ?? "none")), "
                           + "which shows only in the objects' .comment section")
            }
            return EnvironmentManifest.StandIn(compiler: name, identity: clientIdentity, standInPackageVersion: standInIdentity.packageVersion)
        }
    }
}

struct EnvList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show the environments known here: archives created with `env create`, and the daemon's unpacked cache.")

    @Option(help: "The daemon's state directory (its cache is <state>/environments).") var stateDir: String?

    func run() throws {
        let fm = FileManager.default
        let archives = ((try? fm.contentsOfDirectory(atPath: EnvCommand.defaultDirectory)) ?? []).filter { $0.hasSuffix(".tar.zst") }.sorted()
        print("archives in \(EnvCommand.defaultDirectory):")
        if archives.isEmpty { print("  none (create one with `swlaunch env create`)") }
        for name in archives {
            let path = EnvCommand.defaultDirectory + "/" + name
            let size = (try? fm.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            print("  \(name.dropLast(8))  \(size / 1024) KiB  \(path)")
        }
        let state = stateDir ?? defaultStateDirectory()
        let cacheDirectory = state + "/environments"
        print("unpacked in \(cacheDirectory):")
        guard fm.fileExists(atPath: cacheDirectory), let cache = try? EnvironmentCache(directory: cacheDirectory, limitBytes: .max) else {
            print("  none")
            return
        }
        let entries = cache.entries()
        if entries.isEmpty { print("  none") }
        for e in entries {
            print("  \(e.id)  \(e.platform)  \(e.bytes / 1024) KiB  last used \(e.lastUsed)  \(e.compilers.joined(separator: " "))")
        }
    }
}
