import REAPIProtos
import SwiftProtobuf
import Testing
import Wire
@testable import RemoteExecution

/// The Action a job becomes, and the job a worker reads back from it: the REAPI contract of docs/reapi.md.
@Suite struct ActionLayoutTests {
    static let gcc = BlobDigest(of: Array("gcc driver".utf8))
    static let cc1 = BlobDigest(of: Array("cc1".utf8))
    static let source = BlobDigest(of: Array("int main(void) { return 0; }\n".utf8))
    static let header = BlobDigest(of: Array("#define X 1\n".utf8))

    static func environment() -> EnvironmentListing {
        var listing = EnvironmentListing()
        listing.directories = ["/usr", "/usr/bin", "/usr/libexec", "/usr/libexec/gcc"]
        listing.files = [("/usr/bin/gcc-12", gcc, true), ("/usr/libexec/gcc/cc1", cc1, true)]
        listing.symlinks = [("/usr/bin/gcc", "gcc-12")]
        return listing
    }

    static func job(outputs: [String] = ["/home/u/p/build/a.o"], environment: [String] = ["LANG=C", "LD_PRELOAD=/evil.so"]) -> RemoteJob {
        RemoteJob(toolchain: String(repeating: "a", count: 64), compiler: "/usr/bin/gcc",
                  arguments: ["-g", "-I../include", "-c", "../src/a.c", "-o", "a.o"], workingDirectory: "/home/u/p/build",
                  environment: environment,
                  files: [FileEntry(path: "/home/u/p/src/a.c", hash: source.hash, executable: false),
                          FileEntry(path: "/home/u/p/include/x.h", hash: header.hash, executable: false)],
                  symlinks: [], directories: ["/home/u/p/include"], outputs: outputs)
    }

    static func layout(_ job: RemoteJob = job()) throws -> ActionLayout {
        let sizes = [source.hash: source.size, header.hash: header.size]
        return try ActionLayout(job: job, environment: environment(), environmentRoot: "/env", jobFileSize: { sizes[$0] },
                                platform: ActionLayout.platformProperties(for: "x86_64-linux"))
    }

    /// Decodes the layout's own blobs as a worker would find them in the CAS.
    static func readBack(_ layout: ActionLayout) throws -> ActionInput {
        func bytes(_ digest: BlobDigest) throws -> [UInt8] {
            guard case let .bytes(bytes)? = layout.blobs[digest] else { throw InputTreeError(path: "\(digest)", reason: "not in the layout") }
            return bytes
        }
        let action = try Build_Bazel_Remote_Execution_V2_Action(serializedBytes: try bytes(layout.actionDigest))
        let command = try Build_Bazel_Remote_Execution_V2_Command(serializedBytes: try bytes(BlobDigest(action.commandDigest)))
        var directories: [BlobDigest: Build_Bazel_Remote_Execution_V2_Directory] = [:]
        for (digest, source) in layout.blobs {
            guard case let .bytes(data) = source, let directory = try? Build_Bazel_Remote_Execution_V2_Directory(serializedBytes: data),
                  BlobDigest(of: (try? directory.serializedBytes()) ?? []) == digest, digest != layout.actionDigest else { continue }
            directories[digest] = directory
        }
        return try ActionInput(action: action, actionDigest: layout.actionDigest, command: command, directories: directories)
    }

    @Test func theCommandIsTheJobAtItsPathsWithAnAllowListedEnvironment() throws {
        let layout = try Self.layout()
        guard case let .bytes(actionBytes)? = layout.blobs[layout.actionDigest] else { Issue.record("no action blob"); return }
        let action = try Build_Bazel_Remote_Execution_V2_Action(serializedBytes: actionBytes)
        guard case let .bytes(commandBytes)? = layout.blobs[BlobDigest(action.commandDigest)] else { Issue.record("no command blob"); return }
        let command = try Build_Bazel_Remote_Execution_V2_Command(serializedBytes: commandBytes)
        #expect(command.arguments == ["/usr/bin/gcc", "-g", "-I../include", "-c", "../src/a.c", "-o", "a.o"])
        #expect(command.workingDirectory == "home/u/p/build")
        #expect(command.outputPaths == ["a.o"])
        #expect(command.environmentVariables.map { "\($0.name)=\($0.value)" } == ["LANG=C", "PATH=/usr/local/bin:/usr/bin:/bin"])
        #expect(action.platform.properties.map { "\($0.name)=\($0.value)" } == ["ISA=x86_64", "OSFamily=linux"])
        #expect(!action.doNotCache)
        // Every file blob comes from where the client has it.
        #expect(layout.blobs[Self.source] == .jobFile(hash: Self.source.hash))
        #expect(layout.blobs[Self.gcc] == .path("/env/usr/bin/gcc-12"))
    }

    @Test func theDigestIsStableAndSaysEverythingThatChangesTheObject() throws {
        let first = try Self.layout(), again = try Self.layout()
        #expect(first.actionDigest == again.actionDigest)
        // A variable outside the allow-list does not split the cache; one the compiler reads does.
        #expect(try Self.layout(Self.job(environment: ["LANG=C"])).actionDigest == first.actionDigest)
        #expect(try Self.layout(Self.job(environment: ["LANG=de_DE.UTF-8"])).actionDigest != first.actionDigest)
        let uncached = try first.uncached()
        #expect(uncached.actionDigest != first.actionDigest)
        #expect(uncached.inputRoot == first.inputRoot && uncached.blobs[first.actionDigest] == nil && uncached.blobs.count == first.blobs.count)
        var edited = Self.job()
        edited.files[1].hash = Self.cc1.hash
        let sizes = [Self.source.hash: Self.source.size, Self.cc1.hash: Self.cc1.size]
        let other = try ActionLayout(job: edited, environment: Self.environment(), environmentRoot: "/env", jobFileSize: { sizes[$0] },
                                     platform: ActionLayout.platformProperties(for: "x86_64-linux"))
        #expect(other.inputRoot != first.inputRoot)
    }

    @Test func aWorkerReadsBackTheSameJob() throws {
        let job = Self.job(outputs: ["/home/u/p/build/a.o", "/home/u/p/deps/a.d"])
        let input = try Self.readBack(try Self.layout(job))
        #expect(input.job.compiler == "/usr/bin/gcc")
        #expect(input.job.arguments == job.arguments)
        #expect(input.job.workingDirectory == "/home/u/p/build")
        #expect(input.job.outputs == ["/home/u/p/build/a.o", "/home/u/p/deps/a.d"])
        #expect(input.outputNames["/home/u/p/deps/a.d"] == "../deps/a.d")
        #expect(Set(input.job.files.map(\.path)) == ["/home/u/p/src/a.c", "/home/u/p/include/x.h", "/usr/bin/gcc-12", "/usr/libexec/gcc/cc1"])
        #expect(input.job.files.first { $0.path == "/usr/bin/gcc-12" }?.executable == true)
        #expect(input.job.symlinks == [SymlinkEntry(path: "/usr/bin/gcc", target: "gcc-12")])
        #expect(Set(input.job.directories).isSuperset(of: ["/tmp", "/home/u/p/include", "/home/u/p/deps"]))
        #expect(input.job.environment == ["LANG=C", "PATH=/usr/local/bin:/usr/bin:/bin"])
    }

    @Test func directoriesAreCanonical() throws {
        var tree = InputTree()
        try tree.addFile("/b", digest: Self.source, executable: false)
        try tree.addFile("/a/z", digest: Self.header, executable: false)
        try tree.addFile("/B", digest: Self.header, executable: false)
        var reversed = InputTree()
        try reversed.addFile("/B", digest: Self.header, executable: false)
        try reversed.addFile("/a/z", digest: Self.header, executable: false)
        try reversed.addFile("/b", digest: Self.source, executable: false)
        let (root, directories) = tree.encode()
        #expect(root == reversed.encode().root)
        let top = try Build_Bazel_Remote_Execution_V2_Directory(serializedBytes: directories[root]!)
        // Sorted by UTF-8 bytes: upper case first.
        #expect(top.files.map(\.name) == ["B", "b"])
        #expect(top.directories.map(\.name) == ["a"])
    }

    @Test func badPathsAreRefusedWithThePath() throws {
        var tree = InputTree()
        #expect(throws: InputTreeError(path: "/a/../b", reason: "not a normalized absolute path")) {
            try tree.addFile("/a/../b", digest: Self.source, executable: false)
        }
        try tree.addFile("/x/y", digest: Self.source, executable: false)
        #expect(throws: InputTreeError(path: "/x/y", reason: "both a directory and a file or link")) { try tree.addDirectory("/x/y/z") }
        #expect(throws: InputTreeError.self) { try ActionInput.absolute("../../..", in: "/a") }
        #expect(try ActionInput.absolute("../b/./c.o", in: "/a/w") == "/a/b/c.o")
        #expect(ActionLayout.relative("/a/b/c.o", from: "/a/w") == "../b/c.o")
        #expect(ActionLayout.relative("/a/w/c.o", from: "/a/w") == "c.o")
    }

    @Test func aHostileInputRootIsRefused() throws {
        let layout = try Self.layout()
        guard case let .bytes(actionBytes)? = layout.blobs[layout.actionDigest] else { Issue.record("no action"); return }
        let action = try Build_Bazel_Remote_Execution_V2_Action(serializedBytes: actionBytes)
        let command = Build_Bazel_Remote_Execution_V2_Command.with { $0.arguments = ["gcc"]; $0.outputPaths = ["a.o"] }
        let evil = Build_Bazel_Remote_Execution_V2_Directory.with {
            $0.files = [.with { $0.name = ".."; $0.digest = Self.source.proto }]
        }
        let root = BlobDigest(of: try evil.serializedBytes())
        var forged = action
        forged.inputRootDigest = root.proto
        #expect(throws: InputTreeError.self) {
            try ActionInput(action: forged, actionDigest: layout.actionDigest, command: command, directories: [root: evil])
        }
        let escaping = Build_Bazel_Remote_Execution_V2_Command.with { $0.arguments = ["gcc"]; $0.outputPaths = ["../../etc/passwd"] }
        let empty = Build_Bazel_Remote_Execution_V2_Directory()
        let emptyDigest = BlobDigest(of: try empty.serializedBytes())
        forged.inputRootDigest = emptyDigest.proto
        #expect(throws: InputTreeError.self) {
            try ActionInput(action: forged, actionDigest: layout.actionDigest, command: escaping, directories: [emptyDigest: empty])
        }
    }

    @Test func endpoints() throws {
        #expect(try REAPIEndpoint.parse("127.0.0.1:50051") == REAPIEndpoint(host: "127.0.0.1", port: 50051))
        #expect(try REAPIEndpoint.parse("grpcs://cache.example:443", instanceName: "main")
            == REAPIEndpoint(host: "cache.example", port: 443, instanceName: "main", tls: true))
        #expect(try REAPIEndpoint.parse("grpc://[::1]:8980").host == "::1")
        #expect(throws: REAPIError.self) { try REAPIEndpoint.parse("cache.example") }
    }
}
