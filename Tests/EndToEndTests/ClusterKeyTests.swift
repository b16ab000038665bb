import Foundation
import Launch
import SystemSupport
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// Makes a cluster key with `swlaunch key generate` in `directory`.
func generateKey(_ path: String) throws {
    let binaries = TestCluster.builtBinaries()
    guard Spawn.run(binaries + "/swlaunch", ["swlaunch", "key", "generate", path], stdoutPath: "/dev/null", stderrPath: "/dev/null") == 0 else {
        throw TestClusterError("swlaunch key generate failed")
    }
}

/// Records what a client sends through a loopback proxy, so that a test can replay it later.
final class RecordingProxy: @unchecked Sendable {
    let port = TestCluster.freePort()
    private let lock = NSLock()
    private var recorded: [[UInt8]] = []
    var chunks: [[UInt8]] { lock.withLock { recorded } }

    init(to target: Int) throws {
        let listener = try listenOnLoopback(port: port, backlog: 1)
        Thread.detachNewThread {
            let client = accept(listener, nil, nil)
            close(listener)
            guard client >= 0, let server = try? RawPeer(port: target) else { return }
            Thread.detachNewThread { self.pump(from: server.fd, to: client, record: false) }
            self.pump(from: client, to: server.fd, record: true)
            withExtendedLifetime(server) {}
        }
    }

    private func pump(from: Int32, to: Int32, record: Bool) {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { shutdown(to, Int32(SHUT_WR)); return }
            if record { lock.withLock { recorded.append(Array(buffer[0..<n])) } }
            _ = Posix.writeAll(to, Array(buffer[0..<n]))
        }
    }
}

/// With a cluster key, only holders of the key can join, ask or send jobs; without one, nothing listens
/// beyond loopback unless the operator says --insecure.
@Suite(.serialized)
struct ClusterKeyTests {
    static let cluster: Result<TestCluster, any Error> = Result {
        let directory = NSTemporaryDirectory() + "swlaunch-key-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try generateKey(directory + "/cluster.key")
        try generateKey(directory + "/other.key")
        return try TestCluster(helpers: 1, keyFile: directory + "/cluster.key")
    }
    var keyDirectory: String { (try? Self.cluster.get().keyFile.map { String($0[..<$0.lastIndex(of: "/")!]) }) ?? "" }

    func hostNames() throws -> [String] {
        let json = try Self.cluster.get().ask(.statusRequest)
        let hosts = (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["hosts"] as? [[String: Any]] ?? []
        return hosts.compactMap { $0["name"] as? String }.sorted()
    }

    func compileRemotely() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/project"
        if !Posix.fileExists(project) { try makeProject(in: project) }
        let before = try cluster.stats()["remote"] as? Int ?? 0
        let argv = ["gcc", "-Iinclude", "-c", "src/hello.c", "-o", "build/key.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/key.o"])
        let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/key.o"],
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(launched == plain)
        #expect(try cluster.stats()["remote"] as? Int == before + 1, "\(cluster.log("client").suffix(1500))")
    }

    @Test func membersCompileOverMutualTLS() throws {
        let cluster = try Self.cluster.get()
        try compileRemotely()
        // A member's monitor (through its daemon, which holds the key) watches the cluster over the same TLS.
        let watch = try DaemonConnection(path: cluster.clientSocket, role: .monitor, name: "test-monitor", timeoutSeconds: 10)
        try watch.send(.subscribe)
        guard case let .event(json) = try watch.receive() else { Issue.record("no event"); return }
        #expect(json.contains("\"kind\":\"snapshot\"") && json.contains("\"name\":\"helper1\""))
        #expect(cluster.log("helper1").contains("mutual TLS, cluster key"))
        #expect(try cluster.ask(.statusRequest).contains("mutual TLS"))
    }

    @Test func aPeerWithoutTheKeyIsRefusedAndTheOthersAreServed() throws {
        let cluster = try Self.cluster.get()
        // Plain frames: no TLS, so no handshake answer, from the helper or the scheduler.
        let helper = try RawPeer(port: cluster.helperPorts[0], timeoutSeconds: 5)
        helper.send(.hello(Hello(role: .daemon, name: "intruder")))
        #expect(helper.receive() == nil)
        let scheduler = try RawPeer(port: cluster.schedulerPort, timeoutSeconds: 5)
        scheduler.send(.hello(Hello(role: .daemon, name: "intruder")))
        scheduler.send(.register(HostInfo(name: "intruder", address: "127.0.0.1", port: 1, maxJobs: 64, platform: currentPlatform(),
                                          acceptsRemote: true, toolchains: [], note: "")))
        #expect(scheduler.receive() == nil)
        #expect(!(try hostNames()).contains("intruder"))
        // Nor can it watch: a monitor's subscription gets no event without the key.
        let monitor = try RawPeer(port: cluster.schedulerPort, timeoutSeconds: 3)
        monitor.send(.hello(Hello(role: .monitor, name: "peeker")))
        monitor.send(.subscribe)
        #expect(monitor.receive() == nil)
        // A daemon with another key cannot join.
        try cluster.start("outsider", cluster.binaries + "/swlaunchd", [
            "--name", "outsider", "--listen", "127.0.0.1:\(TestCluster.freePort())", "--scheduler", "127.0.0.1:\(cluster.schedulerPort)",
            "--socket", cluster.directory + "/outsider.sock", "--state-dir", cluster.directory + "/state-outsider",
            "--key-file", keyDirectory + "/other.key", "--log-level", "debug",
        ])
        defer { cluster.stop("outsider") }
        sleep(3)
        #expect(!(try hostNames()).contains("outsider"))
        #expect(cluster.log("outsider").contains("scheduler connection failed"), "\(cluster.log("outsider"))")
        #expect(cluster.isAlive("helper1") && cluster.isAlive("scheduler"))
        try compileRemotely()
    }

    @Test func aRecordedSessionCannotBeReplayed() throws {
        let cluster = try Self.cluster.get()
        let proxy = try RecordingProxy(to: cluster.schedulerPort)
        try cluster.start("recorded", cluster.binaries + "/swlaunchd", [
            "--name", "recorded", "--listen", "127.0.0.1:\(TestCluster.freePort())", "--scheduler", "127.0.0.1:\(proxy.port)",
            "--socket", cluster.directory + "/recorded.sock", "--state-dir", cluster.directory + "/state-recorded",
            "--key-file", cluster.keyFile!,
        ])
        for _ in 0..<100 where !(try hostNames()).contains("recorded") { usleep(100_000) }
        #expect(try hostNames().contains("recorded"))
        cluster.stop("recorded")
        for _ in 0..<100 where (try hostNames()).contains("recorded") { usleep(100_000) }
        #expect(!(try hostNames()).contains("recorded"))
        let recorded = proxy.chunks
        #expect(recorded.count >= 2)
        // The same bytes, in the same pieces, to the scheduler again.
        let replay = try RawPeer(port: cluster.schedulerPort, timeoutSeconds: 3)
        for chunk in recorded {
            replay.send(bytes: chunk)
            usleep(20_000)
        }
        sleep(2)
        #expect(!(try hostNames()).contains("recorded"))
        #expect(cluster.isAlive("scheduler"))
        try compileRemotely()
    }

    @Test func aSecondHostOfTheSameNameIsRefused() throws {
        let cluster = try Self.cluster.get()
        let port = TestCluster.freePort()
        try cluster.start("impostor", cluster.binaries + "/swlaunchd", [
            "--name", "helper1", "--listen", "127.0.0.1:\(port)", "--scheduler", "127.0.0.1:\(cluster.schedulerPort)",
            "--socket", cluster.directory + "/impostor.sock", "--state-dir", cluster.directory + "/state-impostor",
            "--key-file", cluster.keyFile!,
        ])
        defer { cluster.stop("impostor") }
        for _ in 0..<50 where !cluster.log("impostor").contains("refused") { usleep(100_000) }
        #expect(cluster.log("impostor").contains("a live host is registered as helper1 already"))
        #expect(cluster.log("scheduler").contains("duplicate host name refused"))
        let json = try cluster.ask(.statusRequest)
        #expect(json.contains("\"port\":\(cluster.helperPorts[0])") && !json.contains("\"port\":\(port)"), "\(json)")
        try compileRemotely()
    }

    @Test func withoutAKeyOnlyLoopbackIsListenedOn() throws {
        let cluster = try Self.cluster.get()
        let port = TestCluster.freePort()
        let daemonLog = cluster.directory + "/nokey-daemon.err"
        let daemon = Spawn.run(cluster.binaries + "/swlaunchd", ["swlaunchd", "--listen", "0.0.0.0:\(port)", "--socket", cluster.directory + "/nokey.sock",
                                                                  "--state-dir", cluster.directory + "/state-nokey"],
                               stdoutPath: "/dev/null", stderrPath: daemonLog)
        #expect(daemon != 0)
        #expect(String(decoding: Posix.readFile(daemonLog) ?? [], as: UTF8.self).contains("without a cluster key, only a loopback address"))
        let schedulerLog = cluster.directory + "/nokey-scheduler.err"
        let scheduler = Spawn.run(cluster.binaries + "/swlaunch-scheduler", ["swlaunch-scheduler", "--listen", "0.0.0.0:\(port)"],
                                  stdoutPath: "/dev/null", stderrPath: schedulerLog)
        #expect(scheduler != 0)
        #expect(String(decoding: Posix.readFile(schedulerLog) ?? [], as: UTF8.self).contains("without a cluster key, only a loopback address"))
        // A key that others can read is refused.
        let loose = cluster.directory + "/loose.key"
        try generateKey(loose)
        chmod(loose, 0o644)
        let looseLog = cluster.directory + "/loose.err"
        #expect(Spawn.run(cluster.binaries + "/swlaunch-scheduler", ["swlaunch-scheduler", "--listen", "127.0.0.1:\(port)", "--key-file", loose],
                          stdoutPath: "/dev/null", stderrPath: looseLog) != 0)
        #expect(String(decoding: Posix.readFile(looseLog) ?? [], as: UTF8.self).contains("lets other users read it"))
    }
}
