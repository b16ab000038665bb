import Foundation
import Testing
import SystemSupport
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// `swlaunch doctor` and the launcher's use of the configuration, against real daemons.
@Suite(.serialized)
struct DoctorAndConfigTests {
    static let cluster: Result<TestCluster, any Error> = Result { try TestCluster(helpers: 1) }

    func scratch() throws -> String {
        let dir = NSTemporaryDirectory() + "swlaunch-doctor-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "int f(void) { return 1; }\n".write(toFile: dir + "/a.c", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func healthyClusterHasNoProblems() throws {
        let cluster = try Self.cluster.get()
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "doctor"], in: try scratch(), outputs: [],
                                     environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(outcome.status == 0, "\(outcome.stdout)")
        #expect(outcome.stdout.contains("ok     helpers: helper1 (2 slots)"))
        #expect(outcome.stdout.contains("ok     client: takes no remote jobs (started with --no-remote)"))
        #expect(outcome.stdout.hasSuffix("No problems found.\n"))
    }

    @Test func noDaemon() throws {
        let cluster = try Self.cluster.get()
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "doctor"], in: try scratch(), outputs: [],
                                     environment: ["SWLAUNCH_SOCKET": "/nonexistent/swlaunchd.sock"])
        #expect(outcome.status == 1)
        #expect(outcome.stdout.contains("FAIL   daemon: no swlaunchd answering on /nonexistent/swlaunchd.sock"))
        #expect(outcome.stdout.contains("fix: start it"))
    }

    @Test func unreachableScheduler() throws {
        let cluster = try Self.cluster.get()
        try cluster.start("lonely", cluster.binaries + "/swlaunchd", [
            "--name", "lonely", "--no-remote", "--scheduler", "127.0.0.1:\(TestCluster.freePort())",
            "--socket", cluster.directory + "/lonely.sock", "--state-dir", cluster.directory + "/state-lonely",
        ])
        defer { cluster.stop("lonely") }
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: cluster.directory + "/lonely.sock") { usleep(50_000) }
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "doctor"], in: try scratch(), outputs: [],
                                     environment: ["SWLAUNCH_SOCKET": cluster.directory + "/lonely.sock"])
        #expect(outcome.status == 1)
        #expect(outcome.stdout.contains("ok     daemon: answering"))
        #expect(outcome.stdout.contains("FAIL   scheduler: no scheduler connected"))
    }

    @Test func missingEnvironmentIsNamedWithFileAndLine() throws {
        let cluster = try Self.cluster.get()
        let dir = try scratch()
        try "[jobs]\nfallback = \"local\"\n\n[toolchains]\n\"arm-linux-gnueabihf-g++\" = { x86_64-linux = \"envs/arm.tar.zst\" }\n"
            .write(toFile: dir + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "doctor"], in: dir, outputs: [],
                                     environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(outcome.status == 1)
        #expect(outcome.stdout.contains("FAIL   configuration: \(dir)/swlaunch.toml:5: toolchains.arm-linux-gnueabihf-g++: x86_64-linux: 'envs/arm.tar.zst' does not exist"))
        // The launcher refuses to guess too: the compile fails with the same words.
        let compile = try runCompile([cluster.binaries + "/swlaunch", "gcc", "-c", "a.c"], in: dir, outputs: ["a.o"],
                                     environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(compile.status == 1)
        #expect(compile.stderr == "swlaunch: error: \(dir)/swlaunch.toml:5: toolchains.arm-linux-gnueabihf-g++: x86_64-linux: 'envs/arm.tar.zst' does not exist\n")
    }

    /// A launcher sends its compile right behind its hello, without waiting for the answer; a daemon that refuses
    /// the hello is no daemon to it. Here a stand-in daemon reads both frames before it answers, then refuses.
    @Test func theCompileFollowsTheHelloAndARefusedHelloIsNoDaemon() throws {
        let dir = try scratch()
        try "[jobs]\nfallback = \"fail\"\n".write(toFile: dir + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let socketPath = dir + "/refusing.sock", kinds = dir + "/kinds", refusal = dir + "/refusal"
        guard Posix.writeFileAtomically(refusal, Frame.encode(.error("expected a hello of protocol version 99"))) == nil else {
            throw TestClusterError("cannot write \(refusal)")
        }
        let script = """
            import socket, struct, sys
            l = socket.socket(socket.AF_UNIX); l.bind(sys.argv[1]); l.listen(1); l.settimeout(60)
            c, _ = l.accept(); c.settimeout(5)
            data, kinds = b'', []
            try:
                while len(kinds) < 2:
                    chunk = c.recv(65536)
                    if not chunk: break
                    data += chunk
                    kinds, i = [], 0
                    while i + 4 <= len(data):
                        n = struct.unpack('<I', data[i:i + 4])[0]
                        if i + 4 + n > len(data): break
                        kinds.append(data[i + 4]); i += 4 + n
            except socket.timeout:
                pass
            open(sys.argv[2], 'w').write(','.join(map(str, kinds)))
            c.sendall(open(sys.argv[3], 'rb').read()); c.close()
            """
        guard let pid = Spawn.start("/usr/bin/python3", ["python3", "-c", script, socketPath, kinds, refusal],
                                    stdoutPath: dir + "/stand-in.out", stderrPath: dir + "/stand-in.err") else {
            throw TestClusterError("cannot start python3")
        }
        for _ in 0..<100 where access(socketPath, F_OK) != 0 { usleep(50_000) }
        let failed = try runCompile([try Self.cluster.get().binaries + "/swlaunch", "gcc", "-c", "a.c"], in: dir, outputs: ["a.o"],
                                    environment: ["SWLAUNCH_SOCKET": socketPath])
        _ = Spawn.wait(pid)
        #expect(String(decoding: Posix.readFile(kinds) ?? [], as: UTF8.self)
                == "\(MessageKind.hello.rawValue),\(MessageKind.submit.rawValue)")
        #expect(failed.status == 1)
        #expect(failed.stderr.hasPrefix(
            "swlaunch: error: a.c could not be distributed: no-daemon (refused: expected a hello of protocol version 99)"), "\(failed.stderr)")
        #expect(failed.files.isEmpty)
    }

    @Test func fallbackFailMakesInfrastructureFailuresVisible() throws {
        let cluster = try Self.cluster.get()
        let dir = try scratch()
        try "[jobs]\nfallback = \"fail\"\n".write(toFile: dir + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let failed = try runCompile([cluster.binaries + "/swlaunch", "gcc", "-c", "a.c"], in: dir, outputs: ["a.o"],
                                    environment: ["SWLAUNCH_SOCKET": "/nonexistent/swlaunchd.sock"])
        #expect(failed.status == 1)
        #expect(failed.stderr.hasPrefix("swlaunch: error: a.c could not be distributed: no-daemon"))
        #expect(failed.stderr.hasSuffix("(jobs.fallback = \"fail\" at \(dir)/swlaunch.toml:2)\n"))
        #expect(failed.files.isEmpty)
        // With the cluster up the same compile is distributed.
        let distributed = try runCompile([cluster.binaries + "/swlaunch", "gcc", "-c", "a.c"], in: dir, outputs: ["a.o"],
                                         environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(distributed.status == 0)
        #expect(distributed.files["a.o"] != nil)
        // And the default policy compiles locally.
        let local = try runCompile([cluster.binaries + "/swlaunch", "gcc", "-c", "a.c"], in: dir, outputs: ["a.o"],
                                   environment: ["SWLAUNCH_SOCKET": "/nonexistent/swlaunchd.sock", "SWLAUNCH_FALLBACK": "local"])
        #expect(local.status == 0)
        #expect(local.files["a.o"] != nil)
    }

    @Test func configShowsWhereEachSettingCameFrom() throws {
        let cluster = try Self.cluster.get()
        let dir = try scratch()
        try "[jobs]\ncount = 12\n".write(toFile: dir + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "config"], in: dir, outputs: [],
                                     environment: ["SWLAUNCH_LOG_LEVEL": "debug"])
        #expect(outcome.status == 0)
        #expect(outcome.stdout.contains("jobs.count = 12  # \(dir)/swlaunch.toml:2\n"))
        #expect(outcome.stdout.contains("log.level = \"debug\"  # environment SWLAUNCH_LOG_LEVEL\n"))
        #expect(outcome.stdout.contains("jobs.fallback = \"local\"  # default\n"))
    }
}
