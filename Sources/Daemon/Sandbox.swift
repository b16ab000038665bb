import Foundation
import SystemSupport
import Wire

/// Builds directory trees that mirror paths of another machine, by hard links (or copies across file systems).
enum SandboxTree {
    static func ensureDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// Places `source` at `root + path`, as a hard link unless `copy` is set (or linking fails);
    /// an existing entry there is left alone.
    static func place(file path: String, from source: String, under root: String, executable: Bool, copy: Bool = false) throws {
        let destination = root + path
        try ensureDirectory(parent(destination))
        if Posix.fileExists(destination) { return }
        if !copy, link(source, destination) == 0 || errno == EEXIST { return }
        guard let bytes = Posix.readFile(source) else { throw ResolveError(path: source, reason: "unreadable") }
        if let code = Posix.writeFileAtomically(destination, bytes, mode: executable ? 0o755 : 0o644) {
            throw ResolveError(path: destination, reason: Posix.errorText(code))
        }
    }

    static func place(symlink: SymlinkEntry, under root: String) throws {
        let destination = root + symlink.path
        try ensureDirectory(parent(destination))
        if Glibc.symlink(symlink.target, destination) != 0, errno != EEXIST {
            throw ResolveError(path: destination, reason: "cannot create symbolic link: \(Posix.errorText(errno))")
        }
    }

    /// Hard-links every file of `source` tree into `root` (directories recreated, symlinks copied);
    /// files directly inside a directory of `copyInto` are copied, since the sandbox may write there.
    static func linkTree(_ source: String, into root: String, copyInto: Set<String>) throws {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: source) else { return }
        while let relative = walker.nextObject() as? String {
            let from = source + "/" + relative
            let to = root + "/" + relative
            var info = stat()
            guard lstat(from, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try ensureDirectory(to)
            case S_IFLNK:
                let target = try fm.destinationOfSymbolicLink(atPath: from)
                if Glibc.symlink(target, to) != 0, errno != EEXIST {
                    throw ResolveError(path: to, reason: "cannot create symbolic link")
                }
            default:
                try place(file: "/" + relative, from: from, under: root, executable: (info.st_mode & 0o111) != 0,
                          copy: copyInto.contains(parent("/" + relative)))
            }
        }
    }
}

/// Stores file contents by SHA-256 under the state directory.
public final class BlobStore: Sendable {
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        try SandboxTree.ensureDirectory(directory)
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
        let status = Spawn.run(bwrap, [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "/bin/true"],
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
                         "--unshare-all", "--die-with-parent", "--chdir", job.workingDirectory, "--", job.compiler] + job.arguments
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
