import CompilerArgs
import Foundation
import Synchronization
import SystemSupport
import Toolchain
import Wire

/// Stores file contents by SHA-256 under the state directory.
/// Kept to a size limit: the least recently used contents go first (use is the file's mtime).
/// Contents found at start-up are checked lazily: the first use of each in a process hashes it, and one whose
/// hash is not its name is removed (and asked of the client again).
public final class BlobStore: Sendable {
    public let directory: String
    public let limitBytes: Int64
    /// Bytes stored since the last trim.
    private let storedSinceTrim = Atomic<Int64>(0)
    /// When this store was opened: a file changed since (stored, touched or checked by this process) is trusted.
    private let opened: Int64

    public init(directory: String, limitBytes: Int64 = 2 << 30) throws {
        self.directory = directory
        self.limitBytes = limitBytes
        try SandboxTree.ensureDirectory(directory)
        // The file system's own clock, so that a change right after opening never looks older (without a marker,
        // everything is checked on every use).
        let marked = Posix.changeTimeNow(marker: directory + "/.opened")
        opened = marked > 0 ? marked : .max
    }

    /// Marks contents as used now, so that eviction keeps them longest.
    public func touch(_ hashes: [String]) {
        for hash in hashes { utimes(path(hash), nil) }
    }

    /// Removes the least recently used contents until the store is 90% of its limit; returns the bytes freed.
    /// Jobs already running keep their hard links, so eviction never breaks a compile in progress.
    @discardableResult
    public func trim() -> Int64 {
        let fm = FileManager.default
        var entries: [(String, Int64, Int)] = []
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where !name.hasPrefix(".") {
            var info = stat()
            guard stat(directory + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            entries.append((name, Int64(info.st_size), info.st_mtim.tv_sec))
        }
        var total = entries.reduce(0) { $0 + $1.1 }
        guard total > limitBytes else { return 0 }
        var freed: Int64 = 0
        for (name, size, _) in entries.sorted(by: { $0.2 < $1.2 }) where total > limitBytes * 9 / 10 {
            unlink(directory + "/" + name)
            total -= size
            freed += size
        }
        return freed
    }

    public func path(_ hash: String) -> String { directory + "/" + hash }

    /// An executable copy of a stored blob (mode 0555, beside it as `<hash>.x`), made on first use: a hard link
    /// to the blob itself could not be executed, and a change of its mode would reach every link. For the
    /// programs of a REAPI action, whose toolchain comes as input files.
    public func executablePath(_ hash: String) throws -> String {
        let executable = path(hash) + ".x"
        if Posix.fileExists(executable) { return executable }
        guard let contents = Posix.readFile(path(hash)) else { throw ResolveError(path: path(hash), reason: "not stored") }
        if let code = Posix.writeFileAtomically(executable, contents, mode: 0o555) {
            throw ResolveError(path: executable, reason: Posix.errorText(code))
        }
        return executable
    }

    public func contains(_ hash: String) -> Bool {
        var info = stat()
        guard stat(path(hash), &info) == 0 else { return false }
        if Posix.nanos(info.st_ctim) >= opened { return true }
        guard let contents = Posix.readFile(path(hash)), FileResolver.digest(contents) == hash else {
            unlink(path(hash))
            return false
        }
        utimes(path(hash), nil)
        return true
    }

    /// Stores a blob after checking that its contents have the announced hash.
    public func store(_ blob: Blob) throws {
        guard isSHA256Hex(blob.hash) else {
            throw ResolveError(path: blob.hash, reason: "not a SHA-256 name")
        }
        guard FileResolver.digest(blob.contents) == blob.hash else {
            throw ResolveError(path: blob.hash, reason: "contents do not match their hash")
        }
        if let code = Posix.writeFileAtomically(path(blob.hash), blob.contents, mode: 0o444) {
            throw ResolveError(path: path(blob.hash), reason: Posix.errorText(code))
        }
        let stored = storedSinceTrim.add(Int64(blob.contents.count), ordering: .relaxed).newValue
        // Whoever crosses the mark (and resets the count) trims.
        if stored > max(limitBytes / 16, 64 << 20),
           storedSinceTrim.compareExchange(expected: stored, desired: 0, ordering: .relaxed).exchanged {
            trim()
        }
    }
}

/// What one sandboxed job may use. Past a limit the job is stopped and its result is an infrastructure failure.
public struct SandboxLimits: Sendable {
    /// Wall-clock time of the whole compile.
    public var seconds: Int = 600
    /// Address space of each process (RLIMIT_AS).
    public var memoryBytes: Int64 = 8 << 30
    /// Processes of the sandbox's user (RLIMIT_NPROC; enforced when the daemon is not root).
    public var processes: Int = 256
    /// Largest file the compiler may write (RLIMIT_FSIZE), and largest output read back.
    public var fileBytes: Int64 = 1 << 30
    /// Disk used in the writable output directories, all files together.
    public var outputBytes: Int64 = 2 << 30
    /// Size of the compiler's TMPDIR (a tmpfs inside the sandbox).
    public var scratchBytes: Int64 = 1 << 30

    public init() {}
}

/// Runs one compile in a bubblewrap sandbox whose root holds only the toolchain and the job's files,
/// at the client's paths, with no network.
///
/// The tree is built by ``ConfinedTree`` (no symlink is ever followed on the host; link targets are relative);
/// the root is mounted read-only with only the output directories writable, and every file in those is a
/// copy, never a hard link into the blob store or an environment. `bwrap` starts with an empty environment
/// (`--clearenv`), and the compiler gets PATH, TMPDIR and the variables ``HelperPolicy`` allows. Outputs are
/// read back without following links, regular files only, within the size limit.
public struct SandboxRunner: Sendable {
    public let bwrap: String
    public let hostName: String
    public var limits: SandboxLimits
    /// The static `swlaunch` binary, which gcc compiles run their programs through (``SandboxWrapper``) so that
    /// a program killed by a signal is reported; nil runs them directly.
    public var wrapper: String?

    public init(bwrap: String = Bubblewrap.defaultPath, hostName: String, limits: SandboxLimits = SandboxLimits(),
                wrapper: String? = SandboxRunner.installedWrapper()) {
        self.bwrap = bwrap
        self.hostName = hostName
        self.limits = limits
        self.wrapper = wrapper
    }

    /// `swlaunch` beside the running daemon, when it is there.
    public static func installedWrapper() -> String? {
        guard let exe = Posix.realPath("/proc/self/exe"), let slash = exe.lastIndex(of: "/") else { return nil }
        let path = String(exe[..<slash]) + "/swlaunch"
        return Posix.isExecutableFile(path) ? path : nil
    }

    /// Where the wrapper and its report appear inside the sandbox.
    static let wrapperPath = "/.swlaunch/wrap", reportDirectory = "/.swlaunch/report"

    /// Namespace and privilege options every sandbox uses, including the probe.
    static let isolation = Bubblewrap.isolation

    /// Why this host cannot sandbox, or nil when it can.
    public func unavailableReason() -> String? { Bubblewrap.unavailableReason(bwrap) }

    /// The environment `prlimit` and `bwrap` themselves start with: nothing from the job.
    static let spawnEnvironment = Bubblewrap.spawnEnvironment

    /// Validates that a path from a peer is absolute and has no `..` or empty components.
    static func checkedPath(_ path: String) throws -> String {
        guard path.hasPrefix("/"), !path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().contains(where: { $0 == ".." || $0 == "." }),
              !path.contains("\0") else {
            throw ResolveError(path: path, reason: "not a normalized absolute path")
        }
        return path
    }

    static let localeDirectories = ["/usr/lib/locale", "/usr/share/locale"]
    /// The compiler's TMPDIR inside the sandbox (a fresh tmpfs per job).
    static let scratchDirectory = "/.swlaunch-tmp"

    /// Why a job was stopped or refused before or while it ran (an infrastructure failure, not the compiler's verdict).
    public struct Refusal: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// What a run tells beyond the compiler's output: whether the sandbox was set up and the compiler ran to an
    /// exit (bubblewrap's `--json-status-fd` reports an exit code only then), and how it exited.
    public struct Run: Sendable {
        public var result: JobResult
        /// False when bubblewrap failed before the compiler ran (set-up, or the compiler could not be executed).
        public var compilerRan: Bool
        /// Programs of the compile that a signal ended (from the wrapper's report), for example `signal 9 cc1plus`.
        public var signalled: [String]
    }

    /// A job's sandbox set up and ready to start: its tree placed and the command that starts the compile.
    public struct Prepared: Sendable {
        let tree: ConfinedTree
        let outputDirectories: [String]
        let outputs: [String]
        let arguments: [String]
        let jobDirectory: String
        /// Where the wrapper reports programs ended by a signal.
        let reportPath: String
    }

    /// Places the job's tree under `jobDirectory` (toolchain, inputs, output folders) and makes the command that
    /// runs its compile; nothing runs yet.
    public func prepare(_ job: RemoteJob, toolchainTree: String, blobs: BlobStore, jobDirectory: String) throws -> Prepared {
        let tree = try ConfinedTree(root: jobDirectory + "/root")
        let outputDirectories = Array(Set(try job.outputs.map { SandboxTree.parent(try Self.checkedPath($0)) })).sorted()
        func isWritable(_ path: String) -> Bool {
            outputDirectories.contains { SandboxTree.parent(path) == $0 || path.hasPrefix($0 == "/" ? "/" : $0 + "/") }
        }
        try tree.mirror(toolchainTree, copyUnder: outputDirectories)
        for link in job.symlinks { try tree.placeSymlink(try Self.checkedPath(link.path), target: link.target) }
        for file in job.files {
            let path = try Self.checkedPath(file.path)
            let source = file.executable && !isWritable(path) ? try blobs.executablePath(file.hash) : blobs.path(file.hash)
            try tree.placeFile(path, from: source, executable: file.executable, copy: isWritable(path))
        }
        for directory in job.directories + [job.workingDirectory] + outputDirectories {
            try tree.makeDirectories(try Self.checkedPath(directory))
        }
        for output in job.outputs { try tree.remove(output) }
        for special in [Self.scratchDirectory, "/dev", "/proc"] { try tree.makeDirectories(special) }
        let writable = outputDirectories.flatMap { ["--bind", tree.root + $0, $0] }
        // Locale data decides the compiler's quotes and message language; it comes from this host.
        var localeBinds: [String] = []
        for directory in Self.localeDirectories where Posix.fileExists(directory) {
            try tree.makeDirectories(directory)
            localeBinds += ["--ro-bind", directory, directory]
        }
        // gcc runs cc1, as and the rest through the wrapper, which reports any of them ended by a signal (gcc
        // itself exits 1 for a SIGKILLed cc1, as for a compile error). clang compiles in-process: its own exit says it.
        var wrapping: [String] = [], wrapperArguments: [String] = []
        let reportPath = jobDirectory + "/report"
        if let wrapper, !CompilerArgs.isClangDriver(job.compiler) {
            try SandboxTree.ensureDirectory(reportPath)
            try tree.makeDirectories(Self.reportDirectory)
            try tree.placeFile(Self.wrapperPath, from: "/dev/null", executable: true, copy: true)
            wrapping = ["--ro-bind", wrapper, Self.wrapperPath, "--bind", reportPath, Self.reportDirectory]
            wrapperArguments = ["-wrapper", [Self.wrapperPath, "--sandbox-wrapper", Self.reportDirectory + "/signals"].joined(separator: ",")]
        }
        var environment = ["--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "TMPDIR", Self.scratchDirectory]
        for (name, value) in HelperPolicy.environment(job.environment) { environment += ["--setenv", name, value] }

        let limitOptions = ["--as=\(limits.memoryBytes)", "--fsize=\(limits.fileBytes)", "--nproc=\(limits.processes)",
                            "--core=0", "--cpu=\(limits.seconds * 2)"]
        let arguments = ["/usr/bin/prlimit"] + limitOptions + ["--", bwrap, "--ro-bind", tree.root, "/", "--dev", "/dev", "--proc", "/proc",
                         "--size", String(limits.scratchBytes), "--tmpfs", Self.scratchDirectory] + writable + localeBinds + wrapping + Self.isolation
            + environment + ["--json-status-fd", "3", "--chdir", job.workingDirectory, "--", job.compiler] + wrapperArguments + job.arguments
        return Prepared(tree: tree, outputDirectories: outputDirectories, outputs: job.outputs, arguments: arguments, jobDirectory: jobDirectory,
                        reportPath: reportPath)
    }

    /// Runs a prepared sandbox's compile to its end (or stops it: the time limit, the disk limit, `abandoned`, which
    /// is asked before the compile starts too: a job can wait for a processor after its tree is placed) and reads back
    /// its outputs.
    public func start(_ prepared: Prepared, abandoned: @escaping () -> Bool = { false }) throws -> Run {
        let clientGone = "the client went away"
        if abandoned() { throw Refusal(reason: "\(hostName): job stopped: \(clientGone)") }
        let tree = prepared.tree, outputDirectories = prepared.outputDirectories, arguments = prepared.arguments
        let jobDirectory = prepared.jobDirectory
        let stdoutPath = jobDirectory + "/stdout", stderrPath = jobDirectory + "/stderr", statusPath = jobDirectory + "/status"
        let start = Posix.nowMicros()
        guard let pid = Spawn.start(arguments[0], arguments, stdoutPath: stdoutPath, stderrPath: stderrPath,
                                    environment: Self.spawnEnvironment, descriptor3Path: statusPath) else {
            throw ResolveError(path: bwrap, reason: "cannot start the sandbox")
        }
        let deadline = start + UInt64(limits.seconds) * 1_000_000
        var ticks = 0
        let ending = Spawn.supervise(pid) {
            if Posix.nowMicros() > deadline { return "the compile ran longer than \(limits.seconds) s" }
            if abandoned() { return clientGone }
            ticks += 1
            // Disk use of the writable directories, checked every second.
            if ticks % 5 == 0 {
                let used = outputDirectories.reduce(Int64(0)) { $0 + tree.usage(of: $1) }
                if used > limits.outputBytes { return "the compile wrote \(used) bytes, over the limit of \(limits.outputBytes)" }
            }
            return nil
        }
        let elapsed = Posix.nowMicros() - start
        let status: Int32
        switch ending {
        case let .stopped(reason): throw Refusal(reason: "\(hostName): job stopped: \(reason)")
        case let .finished(code): status = code
        }
        var outputs: [OutputFile] = []
        for output in prepared.outputs {
            if let bytes = try tree.readRegularFile(output, limit: Int(limits.fileBytes)) { outputs.append(OutputFile(path: output, contents: bytes)) }
        }
        let reported = String(decoding: Posix.readFile(statusPath) ?? [], as: UTF8.self)
        return Run(result: JobResult(exitStatus: status, stdout: Posix.readFile(stdoutPath) ?? [], stderr: Posix.readFile(stderrPath) ?? [],
                                     outputs: outputs, host: hostName, timings: JobTimings(compile: elapsed)),
                   compilerRan: reported.contains("\"exit-code\""),
                   signalled: String(decoding: Posix.readFile(prepared.reportPath + "/signals") ?? [], as: UTF8.self).split(separator: "\n").map(String.init))
    }
}
