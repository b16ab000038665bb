import Foundation
import SystemSupport
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A scheduler is no single point of failure: daemons given `--scheduler primary,standby` move to the standby when
/// the primary stops and back when it answers again; a host is known by its id, so the same daemon reconnecting
/// replaces its old connection while another daemon of the same name is refused.
@Suite(.serialized) struct StandbySchedulerTests {
    /// Host names a scheduler lists, asked directly (as a daemon's link does).
    static func hosts(atSchedulerPort port: Int) -> [String]? {
        guard let peer = try? RawPeer(port: port, timeoutSeconds: 5) else { return nil }
        peer.send(.hello(Hello(role: .daemon, name: "probe")))
        guard case .helloAck? = peer.receive() else { return nil }
        peer.send(.statusRequest)
        guard case let .status(json)? = peer.receive(),
              let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let hosts = object["hosts"] as? [[String: Any]] else { return nil }
        return hosts.compactMap { $0["name"] as? String }.sorted()
    }

    static func waitUntil(seconds: Int, _ condition: () -> Bool) -> Bool {
        for _ in 0..<(seconds * 10) {
            if condition() { return true }
            usleep(100_000)
        }
        return false
    }

    @Test func theStandbyTakesOverAndThePrimaryGetsItsHostsBack() throws {
        let cluster = try TestCluster(helpers: 1, standby: true)
        let standby = try #require(cluster.standbyPort)
        // Under load a daemon may reach the standby first (the primary slow to answer its first hello); it moves
        // to the primary at the link's next probe, so the starting state is waited for, not assumed.
        #expect(Self.waitUntil(seconds: 30) {
            Self.hosts(atSchedulerPort: cluster.schedulerPort) == ["client", "helper1"] && Self.hosts(atSchedulerPort: standby) == []
        }, "the daemons did not settle on the primary")

        cluster.stop("scheduler", signal: SIGKILL)
        #expect(Self.waitUntil(seconds: 20) { Self.hosts(atSchedulerPort: standby) == ["client", "helper1"] },
                "the daemons did not register with the standby: \(String(cluster.log("client").suffix(1500)))")
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        let argv = ["gcc", "-Iinclude", "-c", "src/hello.c", "-o", "build/hello.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/hello.o"])
        let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/hello.o"],
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(launched == plain)
        #expect(try cluster.stats()["remote"] as? Int == 1, "the compile did not run remote through the standby")

        // The primary comes back: every daemon returns to it (the link probes it every 2 s), the standby empties.
        try cluster.restartScheduler(stopped: true)
        #expect(Self.waitUntil(seconds: 30) {
            Self.hosts(atSchedulerPort: cluster.schedulerPort) == ["client", "helper1"] && Self.hosts(atSchedulerPort: standby) == []
        }, "the daemons did not move back to the primary")
        #expect(cluster.log("client").contains("a preferred scheduler answers again"))
    }

    @Test func theSameHostIdReplacesItsConnectionAnotherIdIsRefused() throws {
        let cluster = try TestCluster(helpers: 1)
        func register(_ name: String, id: String, port: UInt32) throws -> RawPeer {
            let peer = try RawPeer(port: cluster.schedulerPort, timeoutSeconds: 3)
            peer.send(.hello(Hello(role: .daemon, name: name)))
            guard case .helloAck? = peer.receive() else { throw TestClusterError("no handshake") }
            peer.send(.register(HostInfo(name: name, address: "127.0.0.1", port: port, maxJobs: 1, platform: currentPlatform(),
                                         acceptsRemote: true, toolchains: [], id: id)))
            return peer
        }
        func port(of name: String) -> Int? {
            guard let json = try? cluster.ask(.statusRequest),
                  let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                  let hosts = object["hosts"] as? [[String: Any]] else { return nil }
            return hosts.first { $0["name"] as? String == name }?["port"] as? Int
        }
        let first = try register("twin", id: String(repeating: "a", count: 32), port: 1001)
        #expect(Self.waitUntil(seconds: 10) { port(of: "twin") == 1001 })
        // The same daemon on a new connection while the old one is still open (a reconnect race): it replaces it.
        let again = try register("twin", id: String(repeating: "a", count: 32), port: 1002)
        #expect(Self.waitUntil(seconds: 10) { port(of: "twin") == 1002 })
        #expect(cluster.log("scheduler").contains("host reconnected; its previous connection is dropped"))
        // The old connection closing does not remove the host.
        close(first.fd)
        usleep(500_000)
        #expect(port(of: "twin") == 1002)
        // Another daemon under the same name: refused, and reported.
        let impostor = try register("twin", id: String(repeating: "b", count: 32), port: 1003)
        guard case let .error(text)? = impostor.receive() else { Issue.record("the impostor was not refused"); return }
        #expect(text.contains("a live host is registered as twin already"))
        #expect(port(of: "twin") == 1002)
        #expect(cluster.log("scheduler").contains("duplicate host name refused"))
        _ = again
    }

    @Test func aDaemonReportsTheIdKeptInItsStateFolder() throws {
        let cluster = try TestCluster(helpers: 1)
        let idFile = cluster.directory + "/state-helper1/host-id"
        let id = try #require(Posix.readFile(idFile).map { String(decoding: $0, as: UTF8.self) })
        #expect(id.count == 33 && id.hasSuffix("\n"))
        func statusID() -> String? {
            guard let json = try? cluster.ask(.statusRequest),
                  let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                  let hosts = object["hosts"] as? [[String: Any]] else { return nil }
            return hosts.first { $0["name"] as? String == "helper1" }?["id"] as? String
        }
        #expect(statusID() == String(id.dropLast()))
    }
}
