import CompilerArgs
import Foundation
import REAPIProtos
import SwiftProtobuf
import Toolchain
import Wire

typealias RECommand = Build_Bazel_Remote_Execution_V2_Command
typealias REAction = Build_Bazel_Remote_Execution_V2_Action
typealias REPlatform = Build_Bazel_Remote_Execution_V2_Platform

/// A toolchain environment as an input root sees it: its files (with digests), links and directories at the
/// absolute paths they have where it runs.
public struct EnvironmentListing: Sendable {
    public var files: [(path: String, digest: BlobDigest, executable: Bool)] = []
    public var symlinks: [(path: String, target: String)] = []
    public var directories: [String] = []

    public init() {}

    /// Lists an unpacked environment's tree (nothing followed), hashing every file.
    public static func read(root: String) throws -> EnvironmentListing {
        var listing = EnvironmentListing()
        let fm = FileManager.default
        func walk(_ relative: String) throws {
            let names = try fm.contentsOfDirectory(atPath: root + relative).sorted()
            for name in names {
                let path = relative + "/" + name
                var info = stat()
                guard lstat(root + path, &info) == 0 else { throw InputTreeError(path: root + path, reason: "vanished while listed") }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    listing.directories.append(path)
                    try walk(path)
                case S_IFLNK:
                    listing.symlinks.append((path, try fm.destinationOfSymbolicLink(atPath: root + path)))
                case S_IFREG:
                    guard let bytes = fm.contents(atPath: root + path) else { throw InputTreeError(path: root + path, reason: "unreadable") }
                    listing.files.append((path, BlobDigest(of: [UInt8](bytes)), (info.st_mode & 0o111) != 0))
                default:
                    continue
                }
            }
        }
        try walk("")
        return listing
    }
}

/// Where the bytes of each file blob of an action come from on the client.
public enum BlobSource: Sendable, Equatable {
    /// A file of the job, read by its content hash (through the daemon's resolver).
    case jobFile(hash: String)
    /// A file of the toolchain environment, at this path on the client's disk.
    case path(String)
    /// Bytes built with the action (its command, the action itself, directories).
    case bytes([UInt8])
}

/// A job as a REAPI Action (docs/reapi.md): the command as given, run from the job's working directory inside
/// an input root that holds the toolchain environment and the job's files at their absolute paths, so that an
/// executor that makes the input root `/` compiles exactly what a local compile would (with `-g`, the same
/// directories are recorded).
public struct ActionLayout: Sendable {
    /// The action's digest: the key of the action cache.
    public var actionDigest: BlobDigest
    /// Every blob the action needs in the CAS, with where its bytes come from.
    public var blobs: [BlobDigest: BlobSource]
    /// The job's outputs as the command names them (relative to the working directory), in the job's order.
    public var outputPaths: [String]
    public var inputRoot: BlobDigest

    /// The platform properties of a job for `platform` (`x86_64-linux`): `OSFamily` and `ISA`, then `extra`.
    public static func platformProperties(for platform: String, extra: [(String, String)] = []) -> [(String, String)] {
        var machine = platform
        if machine.hasSuffix("-linux") { machine.removeLast("-linux".count) }
        return [("OSFamily", "linux"), ("ISA", machine)] + extra
    }

    /// The command's environment: the variables a helper allows (``HelperPolicy``), and a fixed PATH.
    static func environment(of job: RemoteJob) -> [(String, String)] {
        var variables = HelperPolicy.environment(job.environment).map { ($0.name, $0.value) }
        variables.removeAll { $0.0 == "PATH" }
        variables.append(("PATH", "/usr/local/bin:/usr/bin:/bin"))
        return variables.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
    }

    /// `path` relative to `directory` (both absolute and normalized), with `..` where it lies outside.
    public static func relative(_ path: String, from directory: String) -> String {
        let target = path.split(separator: "/"), base = directory.split(separator: "/")
        var common = 0
        while common < min(target.count, base.count), target[common] == base[common] { common += 1 }
        let ups = Array(repeating: "..", count: base.count - common)
        let rest = target[common...].map(String.init)
        let joined = (ups + rest).joined(separator: "/")
        return joined.isEmpty ? "." : joined
    }

    /// The Action message itself (for its `do_not_cache` form).
    private var action: REAction

    /// Lays out `job` (its compiler and arguments already those of the chosen environment) over `environment`.
    /// `jobFileSize` gives each job file's size by content hash. The action is cacheable; ``uncached()`` gives its
    /// `do_not_cache` form.
    public init(job: RemoteJob, environment: EnvironmentListing, environmentRoot: String, jobFileSize: (String) -> Int64?,
                platform: [(String, String)]) throws {
        var tree = InputTree()
        var blobs: [BlobDigest: BlobSource] = [:]
        for directory in environment.directories { try tree.addDirectory(directory) }
        for link in environment.symlinks { try tree.addSymlink(link.path, target: link.target) }
        for file in environment.files {
            try tree.addFile(file.path, digest: file.digest, executable: file.executable)
            blobs[file.digest] = .path(environmentRoot + file.path)
        }
        for link in job.symlinks { try tree.addSymlink(link.path, target: link.target) }
        for file in job.files {
            guard let size = jobFileSize(file.hash) else { throw InputTreeError(path: file.path, reason: "its size is not known (not read by this daemon)") }
            let digest = BlobDigest(hash: file.hash, size: size)
            try tree.addFile(file.path, digest: digest, executable: file.executable)
            blobs[digest] = .jobFile(hash: file.hash)
        }
        for directory in job.directories + [job.workingDirectory, "/tmp"] { try tree.addDirectory(directory) }
        // The folders of the outputs exist before the compile, as they do locally; the outputs themselves do not.
        for output in job.outputs { try tree.addDirectory(SandboxTree.parent(output)) }
        let (root, directories) = tree.encode()
        for (digest, bytes) in directories { blobs[digest] = .bytes(bytes) }

        let outputPaths = job.outputs.map { Self.relative($0, from: job.workingDirectory) }
        self.outputPaths = outputPaths
        let properties = platform.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        let platformMessage = REPlatform.with { message in
            message.properties = properties.map { property in .with { $0.name = property.0; $0.value = property.1 } }
        }
        let command = RECommand.with {
            $0.arguments = [job.compiler] + job.arguments
            $0.environmentVariables = Self.environment(of: job).map { variable in .with { $0.name = variable.0; $0.value = variable.1 } }
            $0.outputPaths = outputPaths.sorted()
            $0.outputFiles = outputPaths.sorted()
            let workingDirectory = Self.relative(job.workingDirectory, from: "/")
            $0.workingDirectory = workingDirectory == "." ? "" : workingDirectory
            $0.platform = platformMessage
        }
        let commandBytes: [UInt8] = try command.serializedBytes()
        let commandDigest = BlobDigest(of: commandBytes)
        blobs[commandDigest] = .bytes(commandBytes)
        let action = REAction.with {
            $0.commandDigest = commandDigest.proto
            $0.inputRootDigest = root.proto
            $0.platform = platformMessage
        }
        let actionBytes: [UInt8] = try action.serializedBytes()
        let actionDigest = BlobDigest(of: actionBytes)
        blobs[actionDigest] = .bytes(actionBytes)
        self.action = action
        self.actionDigest = actionDigest
        inputRoot = root
        self.blobs = blobs
    }

    /// The same action marked `do_not_cache` (another digest: a client that must not write the cache runs it,
    /// and the service never caches it). The input root and command are shared.
    public func uncached() throws -> ActionLayout {
        var layout = self
        layout.action.doNotCache = true
        let bytes: [UInt8] = try layout.action.serializedBytes()
        layout.blobs[actionDigest] = nil
        layout.actionDigest = BlobDigest(of: bytes)
        layout.blobs[layout.actionDigest] = .bytes(bytes)
        return layout
    }
}
