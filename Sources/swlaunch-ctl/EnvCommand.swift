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

    @Option(help: ArgumentHelp("""
        Pack compilers for another machine from DIR, which holds that machine's files at their paths (Debian \
        packages unpacked with dpkg-deb -x): --cc/--cxx are paths inside it (default: its usr/bin/*-gcc and \
        *-g++), nothing in it is run, and --platform defaults to the drivers' machine.
        """, valueName: "dir")) var root: String?
    @Option(help: ArgumentHelp("""
        Download a cross compiler package for another architecture and what it depends on of that architecture \
        (apt-cache depends, apt-get download; the architecture must be added: dpkg --add-architecture amd64 && \
        apt update), unpack it under <state>/cross/<package> and pack it as --root does, for example \
        g++-arm-linux-gnueabihf:amd64 on a Pi.
        """, valueName: "package")) var package: String?

    func run() throws {
        let locator = CompilerLocator()
        var foreignRoot = root
        if let package { foreignRoot = try CrossPackage(name: package).unpack() }
        var compilers: [String] = []
        if let foreignRoot {
            compilers = try Self.foreignCompilers(cc: cc, cxx: cxx, root: foreignRoot)
        } else {
            for (given, fallback) in [(cc, "cc"), (cxx, "c++")] {
                guard let path = locator.locate(given ?? fallback) else {
                    if given == nil { continue }
                    throw ValidationError("compiler '\(given!)' not found")
                }
                compilers.append(path)
            }
        }
        guard !compilers.isEmpty else { throw ValidationError("no cc or c++ on PATH; name compilers with --cc/--cxx") }
        let resolver = FileResolver()
        let platform = self.platform ?? foreignRoot.flatMap { Self.platform(ofDriver: compilers[0], root: $0) } ?? currentPlatform()
        let registry = ToolchainRegistry(resolver: resolver, platform: platform)
        let cwd = Posix.currentDirectory() ?? "/"
        for extra in add {
            guard Posix.fileExists(FileResolver.absolute(extra, in: cwd)) else { throw ValidationError("--add \(extra): no such file") }
        }
        guard foreignRoot == nil || add.isEmpty else { throw ValidationError("--add cannot be combined with --root or --package") }
        let standIns = try standIns(for: EnvironmentManifest(platform: platform, compilers: compilers), root: foreignRoot ?? "", locator: locator)
        let toolchain = try foreignRoot.map { try registry.foreignEnvironment(compilers: compilers, root: $0) }
            ?? registry.environment(compilers: compilers, extra: try resolver.tree(files: add, directories: [], in: cwd))
        let id = toolchain.id
        let path = output ?? EnvCommand.defaultDirectory + "/" + id + ".tar.zst"
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try EnvironmentArchive.write(toolchain, manifest: EnvironmentManifest(platform: platform, compilers: compilers, standsInFor: standIns),
                                     to: path, sourceRoot: foreignRoot ?? "")
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        print("\(id) \(path) \(size) bytes, \(toolchain.files.count) files, \(toolchain.symlinks.count) links, for \(platform): \(compilers.joined(separator: " "))")
    }

    /// The drivers named inside `root`, else its one `usr/bin/*-gcc` and `usr/bin/*-g++`.
    static func foreignCompilers(cc: String?, cxx: String?, root: String) throws -> [String] {
        if cc != nil || cxx != nil {
            return try [cc, cxx].compactMap { $0 }.map { path in
                guard path.hasPrefix("/"), Posix.fileExists(root + path) else { throw ValidationError("\(path): not in \(root)") }
                return path
            }
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/usr/bin")) ?? []).sorted()
        let drivers = ["-gcc", "-g++"].compactMap { suffix in names.first { $0.hasSuffix(suffix) }.map { "/usr/bin/" + $0 } }
        guard !drivers.isEmpty else { throw ValidationError("\(root)/usr/bin has no *-gcc or *-g++; name them with --cc/--cxx") }
        return drivers
    }

    /// The platform a driver inside `root` runs on, from its ELF machine.
    static func platform(ofDriver driver: String, root: String) -> String? {
        guard let physical = try? FileResolver(root: root).resolve(driver).0 else { return nil }
        switch ELFMachine.of(root + physical) {
        case 62: return "x86_64-linux"
        case 183: return "aarch64-linux"
        case 40: return "armv7l-linux"
        default: return nil
        }
    }
}

/// A cross compiler package of another architecture, downloaded with what it needs of that architecture and
/// unpacked (not installed) under `<state>/cross/<name>/root`.
struct CrossPackage {
    let name: String

    func unpack() throws -> String {
        let base = defaultStateDirectory() + "/cross/" + name.replacingOccurrences(of: "/", with: "_")
        let debs = base + "/debs", root = base + "/root"
        try? FileManager.default.removeItem(atPath: base)
        try FileManager.default.createDirectory(atPath: debs, withIntermediateDirectories: true)
        let listing = try run("/usr/bin/apt-cache", ["depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                                                     "--no-replaces", "--no-enhances", "--no-pre-depends", name], in: debs)
        // Lines without indentation name packages; <name> is virtual or not of that architecture (the target's
        // libraries, which a compile does not run).
        let packages = Set(listing.split(separator: "\n").filter { !$0.hasPrefix(" ") && !$0.hasPrefix("<") }.map(String.init)).sorted()
        guard !packages.isEmpty else { throw ValidationError("--package \(name): apt-cache depends names nothing") }
        _ = try run("/usr/bin/apt-get", ["download"] + packages, in: debs)
        for deb in ((try? FileManager.default.contentsOfDirectory(atPath: debs)) ?? []).sorted() where deb.hasSuffix(".deb") {
            _ = try run("/usr/bin/dpkg-deb", ["-x", debs + "/" + deb, root], in: debs)
        }
        printError("note: unpacked \(packages.count) packages of \(name) into \(root)")
        return root
    }

    private func run(_ program: String, _ arguments: [String], in directory: String) throws -> String {
        let out = directory + "/.out", err = directory + "/.err"
        defer { Posix.removeFile(out); Posix.removeFile(err) }
        let previous = Posix.currentDirectory() ?? "/"
        guard chdir(directory) == 0 else { throw ValidationError("\(directory): cannot enter") }
        defer { _ = chdir(previous) }
        guard Spawn.run(program, [program] + arguments, stdoutPath: out, stderrPath: err) == 0 else {
            let message = String(decoding: Posix.readFile(err) ?? [], as: UTF8.self).split(separator: "\n").suffix(3).joined(separator: "; ")
            throw ValidationError("--package \(name): \((program as NSString).lastPathComponent) \(arguments.prefix(2).joined(separator: " ")) failed: \(message)"
                                  + " (is the architecture added? dpkg --add-architecture amd64 && apt update)")
        }
        return String(decoding: Posix.readFile(out) ?? [], as: UTF8.self)
    }
}

/// A stand-in pair that would compile other objects (printed without the usage text).
struct StandInRefused: Error, CustomStringConvertible {
    let description: String
}

extension EnvCreate {
    /// Each `--stand-in-for` compiler beside the environment's compiler for it, checked to generate the same code.
    func standIns(for manifest: EnvironmentManifest, root: String, locator: CompilerLocator) throws -> [EnvironmentManifest.StandIn] {
        try standInFor.map { name in
            guard let client = locator.locate(name) else { throw ValidationError("--stand-in-for \(name): not found on PATH") }
            guard let standIn = manifest.compiler(for: name) else {
                throw ValidationError("--stand-in-for \(name): none of \(manifest.compilers.joined(separator: ", ")) is a compiler for it")
            }
            let clientIdentity: CompilerIdentity, standInIdentity: CompilerIdentity
            do {
                clientIdentity = try CompilerIdentity.probe(client)
                do {
                    guard root.isEmpty else { throw CompilerIdentityError(reason: "packed from \(root), not run") }
                    standInIdentity = try CompilerIdentity.probe(standIn)
                } catch {
                    // A cross compiler for another machine (x86_64 on the Pi) cannot run here: its file says enough.
                    guard let physical = try? FileResolver(root: root).resolve(standIn).0, let bytes = Posix.readFile(root + physical) else {
                        throw CompilerIdentityError(reason: "\(standIn): cannot read")
                    }
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
