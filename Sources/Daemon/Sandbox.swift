import Foundation
import SystemSupport
import Toolchain
import Wire

/// Stores file contents by SHA-256 under the state directory.
/// Kept to a size limit: the least recently used contents go first (use is the file's mtime).
public final class BlobStore: @unchecked Sendable {
    public let directory: String
    public let limitBytes: Int64
    private let lock = NSLock()
    private var storedSinceTrim: Int64 = 0

    public init(directory: String, limitBytes: Int64 = 2 << 30) throws {
        self.directory = directory
        self.limitBytes = limitBytes
        try SandboxTree.ensureDirectory(directory)
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

    public func contains(_ hash: String) -> Bool { Posix.fileExists(path(hash)) }

    /// Stores a blob after checking that its contents have the announced hash.
    public func store(_ blob: Blob) throws {
        guard blob.hash.count == 64, blob.hash.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw ResolveError(path: blob.hash, reason: "not a SHA-256 name")
        }
        guard FileResolver.digest(blob.contents) == blob.hash else {
            throw ResolveError(path: blob.hash, reason: "contents do not match their hash")
        }
        if let code = Posix.writeFileAtomically(path(blob.hash), blob.contents, mode: 0o444) {
            throw ResolveError(path: path(blob.hash), reason: Posix.errorText(code))
        }
        lock.lock()
        storedSinceTrim += Int64(blob.contents.count)
        let due = storedSinceTrim > max(limitBytes / 16, 64 << 20)
        if due { storedSinceTrim = 0 }
        lock.unlock()
        if due { trim() }
    }
}

/// Runs one compile in a bubblewrap sandbox whose root holds only the toolchain and the job's files,
/// at the client's paths, with no network.
public struct SandboxRunner: Sendable {
    public let bwrap: String
    public let hostName: String

    public init(bwrap: String = "/usr/bin/bwrap", hostName: String) {
        self.bwrap = bwrap
        self.hostName = hostName
    }

    /// Why this host cannot sandbox, or nil when it can.
    public func unavailableReason() -> String? {
        guard Posix.isExecutableFile(bwrap) else { return "bubblewrap (\(bwrap)) is not installed" }
        let status = Spawn.run(bwrap, [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
                                       "--cap-drop", "ALL", "--die-with-parent", "/bin/true"],
                               stdoutPath: "/dev/null", stderrPath: "/dev/null")
        return status == 0 ? nil : "bubblewrap cannot create namespaces here"
    }

    /// Validates that a path from a peer is absolute and has no `..` or empty components.
    static func checkedPath(_ path: String) throws -> String {
        guard path.hasPrefix("/"), !path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().contains(where: { $0 == ".." || $0 == "." }),
              !path.contains("\0") else {
            throw ResolveError(path: path, reason: "not a normalized absolute path")
        }
        return path
    }

    static let localeDirectories = ["/usr/lib/locale", "/usr/share/locale"]
    /// The compiler's TMPDIR inside the sandbox (a fresh directory per job).
    static let scratchDirectory = "/.swlaunch-tmp"

    public func run(_ job: RemoteJob, toolchainTree: String, blobs: BlobStore, jobDirectory: String) throws -> JobResult {
        let root = jobDirectory + "/root"
        let scratch = jobDirectory + "/tmp"
        try SandboxTree.ensureDirectory(root)
        try SandboxTree.ensureDirectory(scratch)
        // The root is read-only in the sandbox; only the output directories are writable. Files placed
        // directly in those are copies, so a compile can never write through a hard link into the
        // blob store or the toolchain.
        let outputDirectories = Set(try job.outputs.map { SandboxTree.parent(try Self.checkedPath($0)) })
        try SandboxTree.linkTree(toolchainTree, into: root, copyInto: outputDirectories)
        for link in job.symlinks { try SandboxTree.place(symlink: SymlinkEntry(path: try Self.checkedPath(link.path), target: link.target), under: root) }
        for file in job.files {
            let path = try Self.checkedPath(file.path)
            try SandboxTree.place(file: path, from: blobs.path(file.hash), under: root, executable: file.executable,
                                  copy: outputDirectories.contains(SandboxTree.parent(path)))
        }
        for directory in job.directories + [job.workingDirectory] + Array(outputDirectories) {
            try SandboxTree.ensureDirectory(root + (try Self.checkedPath(directory)))
        }
        for output in job.outputs { unlink(root + output) }
        for special in [Self.scratchDirectory, "/dev", "/proc"] { try SandboxTree.ensureDirectory(root + special) }
        let writable = outputDirectories.sorted().flatMap { ["--bind", root + $0, $0] }
        // Locale data decides the compiler's quotes and message language; it comes from this host.
        var localeBinds: [String] = []
        for directory in Self.localeDirectories where Posix.fileExists(directory) {
            try SandboxTree.ensureDirectory(root + directory)
            localeBinds += ["--ro-bind", directory, directory]
        }

        let stdoutPath = jobDirectory + "/stdout", stderrPath = jobDirectory + "/stderr"
        let arguments = [bwrap, "--ro-bind", root, "/", "--dev", "/dev", "--proc", "/proc",
                         "--bind", scratch, Self.scratchDirectory] + writable + localeBinds + [
                         "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL",
                         "--die-with-parent", "--chdir", job.workingDirectory, "--", job.compiler] + job.arguments
        let environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "TMPDIR=" + Self.scratchDirectory]
            + job.environment.filter { !$0.hasPrefix("PATH=") && !$0.hasPrefix("TMPDIR=") }
        let start = Posix.nowMicros()
        guard let status = Spawn.run(bwrap, arguments, stdoutPath: stdoutPath, stderrPath: stderrPath, environment: environment) else {
            throw ResolveError(path: bwrap, reason: "cannot start the sandbox")
        }
        let elapsed = Posix.nowMicros() - start
        var outputs: [OutputFile] = []
        for output in job.outputs {
            if let bytes = Posix.readFile(root + output) { outputs.append(OutputFile(path: output, contents: bytes)) }
        }
        return JobResult(exitStatus: status, stdout: Posix.readFile(stdoutPath) ?? [], stderr: Posix.readFile(stderrPath) ?? [],
                         outputs: outputs, host: hostName, timings: JobTimings(compile: elapsed))
    }
}
