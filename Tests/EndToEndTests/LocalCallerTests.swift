import Foundation
import SystemSupport
import Testing
import Toolchain
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A local user talks to the (root) client daemon directly, as a hostile launcher would: the daemon does
/// nothing for them that they could not do themselves.
@Suite(.serialized, .enabled(if: getuid() == 0 && Posix.isExecutableFile("/usr/bin/setpriv") && Posix.isExecutableFile("/usr/bin/python3"),
                             "needs root to act as another user"))
struct LocalCallerTests {
    static let cluster: Result<TestCluster, any Error> = Result { try TestCluster(helpers: 1) }
    static let nobody: uid_t = 65534

    /// Sends `messages` to the client daemon's socket as user nobody and returns the first reply that is not a
    /// keep-alive or the handshake's answer.
    func submitAsNobody(_ job: JobRequest) throws -> Message? {
        let cluster = try Self.cluster.get()
        let frames = cluster.directory + "/frames-\(UUID().uuidString.prefix(6))"
        let reply = frames + ".reply"
        let bytes = Frame.encode(.hello(Hello(role: .launcher, name: "nobody"))) + Frame.encode(.submit(job))
        guard Posix.writeFileAtomically(frames, bytes, mode: 0o644) == nil else { throw TestClusterError("cannot write \(frames)") }
        let script = """
            import socket, struct, sys
            s = socket.socket(socket.AF_UNIX); s.settimeout(60); s.connect(sys.argv[1]); s.sendall(open(sys.argv[2], 'rb').read())
            def exact(n):
                b = b''
                while len(b) < n:
                    c = s.recv(n - len(b))
                    if not c: raise SystemExit(1)
                    b += c
                return b
            while True:
                header = exact(4); body = exact(struct.unpack('<I', header)[0])
                if body[0] not in (2, 4): sys.stdout.buffer.write(header + body); break
            """
        guard let status = Spawn.run("/usr/bin/setpriv", ["setpriv", "--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--clear-groups",
                                                          "/usr/bin/python3", "-c", script, cluster.clientSocket, frames],
                                     stdoutPath: reply, stderrPath: reply + ".err"), status == 0,
              let answer = Posix.readFile(reply), answer.count > 4 else {
            throw TestClusterError("no reply: \(String(decoding: Posix.readFile(reply + ".err") ?? [], as: UTF8.self))")
        }
        return try Frame.decode(body: Array(answer.dropFirst(4)))
    }

    func project() throws -> String {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/shared-project"
        try FileManager.default.createDirectory(atPath: project + "/private", withIntermediateDirectories: true)
        try "#include \"private/secret.h\"\nint f(void) { return SECRET; }\n".write(toFile: project + "/uses-secret.c", atomically: true, encoding: .utf8)
        try "int g(void) { return 7; }\n".write(toFile: project + "/open.c", atomically: true, encoding: .utf8)
        try "#define SECRET 0x5ec2e7\n".write(toFile: project + "/private/secret.h", atomically: true, encoding: .utf8)
        chmod(project + "/private/secret.h", 0o600)
        chmod(cluster.directory, 0o755)
        return project
    }

    func job(compiler: String = "/usr/bin/gcc", source: String, project: String, inputs: [String]) -> JobRequest {
        JobRequest(compiler: compiler, arguments: ["-c", source, "-o", "out.o"], workingDirectory: project, environment: [],
                   inputs: inputs, directories: [], outputs: [project + "/out.o"], preprocessMicros: 0, environments: [], language: "c")
    }

    @Test func anotherUsersFileIsNotReadForThem() throws {
        let cluster = try Self.cluster.get(), project = try project()
        // Control: what nobody can read is compiled remotely for them.
        guard case .result? = try submitAsNobody(job(source: "open.c", project: project, inputs: [project + "/open.c"])) else {
            Issue.record("the control compile was not distributed: \(cluster.log("client").suffix(1500))")
            return
        }
        let reply = try submitAsNobody(job(source: "uses-secret.c", project: project, inputs: [project + "/uses-secret.c", project + "/private/secret.h"]))
        #expect(reply == .runLocally(reason: "unreadable-input"), "\(String(describing: reply))")
        let secretHash = FileResolver.digest(Posix.readFile(project + "/private/secret.h") ?? [])
        #expect(!Posix.fileExists(cluster.directory + "/state-helper1/blobs/" + secretHash), "the secret reached a helper")
        let reasons = try cluster.stats()["fallback_reasons"] as? [String: Int] ?? [:]
        #expect(reasons["unreadable-input"] == 1, "\(reasons)")
    }

    @Test func aCompilerOfTheirOwnIsNotRunOrPacked() throws {
        let cluster = try Self.cluster.get(), project = try project()
        let own = cluster.directory + "/nobody-tools"
        try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "/usr/bin/x86_64-linux-gnu-gcc-12", toPath: own + "/gcc")
        chown(own, Self.nobody, Self.nobody)
        chown(own + "/gcc", Self.nobody, Self.nobody)
        let archives = { ((try? FileManager.default.contentsOfDirectory(atPath: cluster.directory + "/state-client/envs")) ?? []).sorted() }
        let before = archives()
        let reply = try submitAsNobody(job(compiler: own + "/gcc", source: "open.c", project: project, inputs: [project + "/open.c"]))
        #expect(reply == .runLocally(reason: "untrusted-compiler"), "\(String(describing: reply))")
        #expect(archives() == before, "a user's own compiler was packed")
        #expect(cluster.log("client").contains("only compilers that no user but root can change"))
    }
}
