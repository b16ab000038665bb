import REAPIProtos
import SwiftProtobuf
import Wire

/// An action a worker was leased, read back from the CAS into the job the sandbox runs: the input root's files,
/// links and directories at absolute paths (the input root is `/`), the command's program, arguments,
/// environment and working directory, and its outputs as absolute paths beside the names the result reports.
public struct ActionInput: Sendable {
    public var job: RemoteJob
    /// Each file's digest by its content hash (the sandbox's blob store is keyed by hash).
    public var fileDigests: [String: BlobDigest]
    /// The outputs as the command names them (relative to its working directory), by absolute path.
    public var outputNames: [String: String]
    public var actionDigest: BlobDigest

    /// Fetches the action's command and input root. `payload` is a lease's: an `Action` or its `Digest`.
    public static func fetch(payload: Google_Protobuf_Any, from client: REAPIClient) async throws(REAPIError) -> ActionInput {
        let action: REAction, actionDigest: BlobDigest
        if payload.isA(REAction.self), let decoded = try? REAction(unpackingAny: payload) {
            action = decoded
            actionDigest = BlobDigest(of: (try? decoded.serializedBytes()) ?? [])
        } else if payload.isA(REDigest.self), let digest = try? REDigest(unpackingAny: payload) {
            actionDigest = BlobDigest(digest)
            let bytes = try await client.read([actionDigest])[actionDigest] ?? []
            guard let decoded = try? REAction(serializedBytes: bytes) else { throw REAPIError(.protocolViolation, "action \(actionDigest): not an Action") }
            action = decoded
        } else {
            throw REAPIError(.protocolViolation, "a lease whose payload is neither an Action nor a Digest (\(payload.typeURL))")
        }
        let commandDigest = BlobDigest(action.commandDigest)
        let commandBytes = try await client.read([commandDigest])[commandDigest] ?? []
        guard let command = try? RECommand(serializedBytes: commandBytes) else {
            throw REAPIError(.protocolViolation, "command \(commandDigest): not a Command")
        }
        // The input root, one level of directories per round trip.
        var directories: [BlobDigest: REDirectory] = [:]
        var level = [BlobDigest(action.inputRootDigest)]
        while !level.isEmpty {
            let fetched = try await client.read(level.filter { directories[$0] == nil })
            var next: [BlobDigest] = []
            for (digest, bytes) in fetched {
                guard let directory = try? REDirectory(serializedBytes: bytes) else { throw REAPIError(.protocolViolation, "directory \(digest): not a Directory") }
                directories[digest] = directory
                next += directory.directories.map { BlobDigest($0.digest) }
            }
            level = Array(Set(next)).filter { directories[$0] == nil }
            guard directories.count < 1_000_000 else { throw REAPIError(.protocolViolation, "the input root has over a million directories") }
        }
        do {
            return try ActionInput(action: action, actionDigest: actionDigest, command: command, directories: directories)
        } catch {
            throw REAPIError(.protocolViolation, "action \(actionDigest): \(error)")
        }
    }

    init(action: REAction, actionDigest: BlobDigest, command: RECommand, directories: [BlobDigest: REDirectory]) throws(InputTreeError) {
        self.actionDigest = actionDigest
        var files: [FileEntry] = [], symlinks: [SymlinkEntry] = [], folders: [String] = []
        var digests: [String: BlobDigest] = [:]
        func isName(_ name: String) -> Bool { !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.utf8.contains(0) }
        func walk(_ digest: BlobDigest, at path: String, depth: Int) throws(InputTreeError) {
            guard depth < 256 else { throw InputTreeError(path: path, reason: "the input root is nested too deeply") }
            guard let directory = directories[digest] else { throw InputTreeError(path: path, reason: "directory \(digest) missing") }
            for file in directory.files {
                guard isName(file.name) else { throw InputTreeError(path: path, reason: "a file named \(file.name.debugDescription)") }
                let blob = BlobDigest(file.digest)
                guard blob.isWellFormed else { throw InputTreeError(path: path + "/" + file.name, reason: "not a SHA-256 digest") }
                files.append(FileEntry(path: path + "/" + file.name, hash: blob.hash, executable: file.isExecutable))
                digests[blob.hash] = blob
            }
            for link in directory.symlinks {
                guard isName(link.name) else { throw InputTreeError(path: path, reason: "a link named \(link.name.debugDescription)") }
                symlinks.append(SymlinkEntry(path: path + "/" + link.name, target: link.target))
            }
            for child in directory.directories {
                guard isName(child.name) else { throw InputTreeError(path: path, reason: "a directory named \(child.name.debugDescription)") }
                folders.append(path + "/" + child.name)
                try walk(BlobDigest(child.digest), at: path + "/" + child.name, depth: depth + 1)
            }
        }
        try walk(BlobDigest(action.inputRootDigest), at: "", depth: 0)
        guard let program = command.arguments.first else { throw InputTreeError(path: "command", reason: "no arguments") }
        let workingDirectory = try Self.absolute(command.workingDirectory, in: "/")
        var outputNames: [String: String] = [:]
        let named = command.outputPaths.isEmpty ? command.outputFiles : command.outputPaths
        for name in named { outputNames[try Self.absolute(name, in: workingDirectory)] = name }
        // The program as the command names it: absolute in swlaunch's own actions, else found on PATH in the root.
        var compiler = program
        if !program.hasPrefix("/") {
            let candidates = ["/usr/local/bin", "/usr/bin", "/bin"].map { $0 + "/" + program }
            compiler = candidates.first { candidate in files.contains { $0.path == candidate } || symlinks.contains { $0.path == candidate } } ?? program
        }
        job = RemoteJob(toolchain: String(repeating: "0", count: 64), compiler: compiler, arguments: Array(command.arguments.dropFirst()),
                        workingDirectory: workingDirectory,
                        environment: command.environmentVariables.map { $0.name + "=" + $0.value },
                        files: files, symlinks: symlinks, directories: folders, outputs: outputNames.keys.sorted())
        fileDigests = digests
        self.outputNames = outputNames
    }

    /// `path` (relative, possibly with `..`) resolved against the absolute `directory`; never above `/`.
    static func absolute(_ path: String, in directory: String) throws(InputTreeError) -> String {
        guard !path.hasPrefix("/") else { throw InputTreeError(path: path, reason: "an absolute path where REAPI wants a relative one") }
        var components = directory.split(separator: "/").map(String.init)
        for component in path.split(separator: "/") where component != "." {
            if component == ".." {
                guard !components.isEmpty else { throw InputTreeError(path: path, reason: "leads above the input root") }
                components.removeLast()
            } else {
                components.append(String(component))
            }
        }
        return "/" + components.joined(separator: "/")
    }
}
