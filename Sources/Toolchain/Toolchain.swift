import Foundation
import Synchronization
import SystemSupport
import Wire

/// A compiler and every file it loads, identified by a hash of their contents and paths.
public struct Toolchain: Sendable {
    public init(id: String, compiler: String, files: [FileEntry], symlinks: [SymlinkEntry]) {
        self.id = id
        self.compiler = compiler
        self.files = files
        self.symlinks = symlinks
    }

    public var id: String
    public var compiler: String
    public var files: [FileEntry]
    public var symlinks: [SymlinkEntry]
}

/// The names of the C and C++ compiler drivers swlaunch knows: what `swlaunch doctor` looks for on PATH, what the
/// masquerade directory links to the launcher, and the stems ``isCompilerName(_:)`` accepts.
public let compilerDriverNames = ["gcc", "g++", "cc", "c++", "clang", "clang++"]

/// Whether a program name looks like a C or C++ compiler driver (`gcc`, `x86_64-linux-gnu-g++-12`,
/// `clang++-21`, `cc` ...). Helpers run nothing else for peers.
public func isCompilerName(_ path: String) -> Bool {
    let base = path.split(separator: "/").last.map(String.init) ?? path
    var name = Substring(base)
    // strip a version suffix such as -12 or -21.1
    if let dash = name.lastIndex(of: "-"), name[name.index(after: dash)...].allSatisfy({ $0.isNumber || $0 == "." }),
       name.index(after: dash) < name.endIndex {
        name = name[..<dash]
    }
    if compilerDriverNames.contains(String(name)) { return true }
    return compilerDriverNames.contains { name.hasSuffix("-" + $0) }
}

public struct ToolchainError: Error, CustomStringConvertible {
    public let compiler: String
    public let reason: String
    public var description: String { "toolchain for \(compiler): \(reason)" }
}

/// Finds the files of native compilers, computes their ids and keeps a copy of each under the state directory.
public final class ToolchainRegistry: Sendable {
    private let resolver: FileResolver
    private let platform: String
    /// Each compiler's toolchain, with the identity its driver had (links followed) when it was found.
    private let cache = Mutex<[String: (HashJournal.Identity?, Toolchain)]>([:])
    /// Where the files found for each compiler are kept across restarts (nil: not kept).
    private let memoryPath: String?

    /// `memoryPath`: a file keeping which files each compiler was found to load, so that a restarted daemon does
    /// not ask the compiler and `ldd` again while the programs and the loader's cache are unchanged.
    public init(resolver: FileResolver, platform: String, memoryPath: String? = nil) {
        self.resolver = resolver
        self.platform = platform
        self.memoryPath = memoryPath
    }

    /// The toolchain of the compiler at `compiler` on this machine (blocking; cached while the file the driver's path
    /// leads to keeps its identity: `update-alternatives` pointing `c++` at another compiler changes the file at the
    /// end of the links, not the link named).
    public func native(compiler: String) throws -> Toolchain {
        let stamp = HashJournal.Identity.following(compiler)
        if let (known, toolchain) = cache.withLock({ $0[compiler] }), known == stamp { return toolchain }
        let toolchain = try discover(compiler)
        cache.withLock { $0[compiler] = (stamp, toolchain) }
        return toolchain
    }

    /// The native toolchain of `compiler` if it was discovered already and the compiler has not changed since.
    public func nativeIfKnown(compiler: String) -> Toolchain? {
        guard let (stamp, toolchain) = cache.withLock({ $0[compiler] }), stamp == HashJournal.Identity.following(compiler) else { return nil }
        return toolchain
    }

    /// One environment holding several compilers (a C and a C++ driver, say) and extra files.
    public func environment(compilers: [String], extra: ResolvedTree = ResolvedTree()) throws -> Toolchain {
        var files: [String: FileEntry] = [:]
        var links: [String: SymlinkEntry] = [:]
        for compiler in compilers {
            let toolchain = try native(compiler: compiler)
            for f in toolchain.files { files[f.path] = f }
            for l in toolchain.symlinks { links[l.path] = l }
        }
        for f in extra.files { files[f.path] = f }
        for l in extra.symlinks { links[l.path] = l }
        let id = EnvironmentArchive.identity(files: Array(files.values), symlinks: Array(links.values), platform: platform)
        return Toolchain(id: id, compiler: compilers.first ?? "", files: Array(files.values), symlinks: Array(links.values))
    }

    private func discover(_ compiler: String) throws -> Toolchain {
        guard isCompilerName(compiler) else { throw ToolchainError(compiler: compiler, reason: "not a C or C++ compiler driver") }
        guard Posix.isExecutableFile(compiler) else { throw ToolchainError(compiler: compiler, reason: "not an executable file") }
        let memory = memoryPath.map(ToolchainMemory.init(path:))
        let files: [String]
        if let remembered = memory?.files(of: compiler) {
            files = remembered
        } else {
            let (members, libraries) = try loadedFiles(of: compiler)
            files = members + libraries
            memory?.remember(compiler, files: files, programs: members.filter { !$0.hasSuffix(".o") })
        }
        let tree = try resolver.tree(files: files, directories: [], in: "/")
        let id = EnvironmentArchive.identity(files: tree.files, symlinks: tree.symlinks, platform: platform)
        return Toolchain(id: id, compiler: compiler, files: tree.files, symlinks: tree.symlinks)
    }

    /// The programs `compiler` runs (itself first, and clang's GCC installation marker) and the shared libraries
    /// they load: asked of the driver and `ldd`.
    private func loadedFiles(of compiler: String) throws -> (members: [String], libraries: [String]) {
        var members = [compiler]
        let isClang = compiler.split(separator: "/").last?.contains("clang") ?? false
        if !isClang {
            var answered = false
            for program in ["cc1", "cc1plus", "cc1obj", "cc1objplus", "as"] {
                guard let answer = try? capture(compiler, ["-print-prog-name=\(program)"]), !answer.isEmpty else { continue }
                answered = true
                if answer.contains("/") {
                    if Posix.isExecutableFile(answer) { members.append(answer) }
                } else if let found = searchPath(answer) {
                    members.append(found)
                }
            }
            // A driver for another machine (an x86_64 cross compiler on a Pi) cannot be asked: its configure line says
            // where its programs are.
            if !answered { members += Self.programs(ofDriverFile: compiler) }
        }
        if isClang, let verbose = try? capture(compiler, ["-v"], stream: 2) {
            // The clang driver derives libstdc++'s include directories from the GCC installation it
            // detects, by finding crtbegin.o; the sandbox needs that marker to make the same choice.
            for line in verbose.split(separator: "\n") where line.hasPrefix("Selected GCC installation: ") {
                let directory = String(line.dropFirst("Selected GCC installation: ".count))
                if Posix.fileExists(directory + "/crtbegin.o") { members.append(directory + "/crtbegin.o") }
            }
        }
        var libraries: [String] = []
        for member in members where !member.hasSuffix(".o") {
            // ldd runs the library loader of this machine, which cannot load another machine's program (nor can
            // an ARM system's ldd load an x86_64 one): then the ELF file is read.
            let listed = (try? sharedLibraries(of: member)) ?? []
            libraries.append(contentsOf: listed.isEmpty ? ELFFile.sharedLibraries(of: member) : listed)
        }
        return (members, libraries)
    }

    /// The programs a gcc driver runs to compile (cc1, cc1plus, as), found from the configure line in its file:
    /// `<libexecdir>/gcc-cross/<target>/<version>/` (Debian's cross compilers) or `<libexecdir>/gcc/<target>/<version>/`,
    /// and the assembler in `<prefix>/<target>/bin` or as `<prefix>/bin/<target>-as`.
    static func programs(ofDriverFile driver: String, root: String = "") -> [String] {
        let resolver = FileResolver(root: root)
        func executable(_ path: String) -> Bool { (try? resolver.resolve(path)).map { Posix.isExecutableFile(root + $0.0) } ?? false }
        guard let physical = try? resolver.resolve(driver).0, let bytes = Posix.readFile(root + physical),
              let (options, version) = CompilerIdentity.configureLine(in: bytes) else { return [] }
        func value(_ name: String) -> String? { options.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) } }
        guard let target = value("--target") else { return [] }
        let prefix = value("--prefix") ?? "/usr/local"
        let libexec = value("--libexecdir") ?? prefix + "/libexec"
        let versionDirectory = options.contains("--with-gcc-major-version-only") ? String(version.prefix { $0 != "." }) : version
        var programs: [String] = []
        for kind in ["gcc-cross", "gcc"] {
            let directory = "\(libexec)/\(kind)/\(target)/\(versionDirectory)"
            for program in ["cc1", "cc1plus", "cc1obj", "cc1objplus"] where executable(directory + "/" + program) {
                programs.append(directory + "/" + program)
            }
        }
        for assembler in ["\(prefix)/\(target)/bin/as", "\(prefix)/bin/\(target)-as"] where executable(assembler) {
            programs.append(assembler)
        }
        return programs
    }

    /// An environment of compilers for another machine, packed from `root`, a folder holding that machine's files
    /// at their paths (Debian packages unpacked with `dpkg-deb -x`): nothing in it is run. The programs come from
    /// each driver's configure line, the libraries from ELF headers; `EnvironmentArchive.write(sourceRoot: root)`
    /// reads the files.
    public func foreignEnvironment(compilers: [String], root: String) throws -> Toolchain {
        let resolver = FileResolver(root: root)
        var members: [String] = []
        for compiler in compilers {
            guard isCompilerName(compiler) else { throw ToolchainError(compiler: compiler, reason: "not a C or C++ compiler driver") }
            guard (try? resolver.resolve(compiler)) != nil else { throw ToolchainError(compiler: compiler, reason: "not in \(root)") }
            let programs = Self.programs(ofDriverFile: compiler, root: root)
            guard !programs.isEmpty else {
                throw ToolchainError(compiler: compiler, reason: "no configure line in the driver, or none of its programs in \(root)")
            }
            members += [compiler] + programs
        }
        var libraries: [String] = []
        for member in members { libraries += ELFFile.sharedLibraries(of: member, root: root) }
        let tree = try resolver.tree(files: members + libraries, directories: [], in: "/")
        let id = EnvironmentArchive.identity(files: tree.files, symlinks: tree.symlinks, platform: platform)
        return Toolchain(id: id, compiler: compilers.first ?? "", files: tree.files, symlinks: tree.symlinks)
    }

    private func searchPath(_ name: String) -> String? {
        for dir in (Posix.environment("PATH") ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = dir + "/" + name
            if Posix.isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    private func sharedLibraries(of path: String) throws -> [String] {
        let output = try capture("/usr/bin/ldd", [path])
        var result: [String] = []
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if let arrow = parts.firstIndex(of: "=>"), arrow + 1 < parts.count, parts[arrow + 1].hasPrefix("/") {
                result.append(String(parts[arrow + 1]))
            } else if let first = parts.first, first.hasPrefix("/") || first.hasPrefix("\t/") {
                result.append(first.trimmingCharacters(in: .whitespaces))
            }
        }
        return result
    }

    /// Runs a program and returns what it printed on `stream` (1 for stdout, 2 for stderr).
    private func capture(_ program: String, _ arguments: [String], stream: Int = 1) throws -> String {
        guard let bytes = Spawn.output(program, [program] + arguments, stream: stream) else {
            throw ToolchainError(compiler: program, reason: "\(program) \(arguments.joined(separator: " ")) failed")
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
