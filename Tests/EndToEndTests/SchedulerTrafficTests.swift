import Foundation
import SystemSupport
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A scheduler connection's job traffic is answered by its task until it registers and on its event loop after
/// (`SchedulerFastPath`): a client that pipelines its registration and a burst of requests in one write gets every
/// request answered once, under its own id, and every job it reports is finished under its registered name.
@Suite struct SchedulerTrafficTests {
    @Test func requestsPipelinedWithTheRegistrationAreEachAnsweredAndTheirJobsFinishUnderTheRegisteredName() throws {
        let cluster = try TestCluster(helpers: 1)
        // A helper with room for every job, so that each request is granted.
        let helper = try RawPeer(port: cluster.schedulerPort)
        helper.send(.hello(Hello(role: .daemon, name: "roomy")))
        guard case .helloAck? = helper.receive() else { Issue.record("no handshake"); return }
        helper.send(.register(HostInfo(name: "roomy", address: "127.0.0.1", port: 1, maxJobs: 200, platform: currentPlatform(),
                                       acceptsRemote: true, toolchains: ["tc"], id: String(repeating: "c", count: 32))))

        let client = try RawPeer(port: cluster.schedulerPort)
        client.send(.hello(Hello(role: .daemon, name: "burst")))
        guard case .helloAck? = client.receive() else { Issue.record("no handshake"); return }
        let requests: [UInt64] = Array(1...60)
        var burst = Frame.encode(.register(HostInfo(name: "burst", address: "", port: 0, maxJobs: 0, platform: currentPlatform(),
                                                    acceptsRemote: false, toolchains: [], id: "")))
        for id in requests {
            burst += Frame.encode(.hostRequest(HostRequest(id: id, choices: [ToolchainChoice(platform: currentPlatform(), toolchain: "tc")],
                                                           exclude: [])))
        }
        client.send(bytes: burst)
        var answered: [UInt64] = []
        var reports: [UInt8] = []
        while answered.count < requests.count, let message = client.receive() {
            switch message {
            case let .hostGrant(grant):
                answered.append(grant.id)
                reports += Frame.encode(.jobStarted(id: grant.id, host: grant.name, source: "src/f\(grant.id).c"))
                reports += Frame.encode(.jobDone(JobReport(id: grant.id, outcome: .remote, host: grant.name, compileMicros: 1000,
                                                           inputBytes: 1000, source: "src/f\(grant.id).c")))
            case let .noHost(id, reason):
                Issue.record("request \(id) refused: \(reason)")
                answered.append(id)
            case .keepAlive:
                break
            default:
                Issue.record("unexpected answer \(message.kind)")
            }
        }
        #expect(answered.sorted() == requests, "each request answered once")
        client.send(bytes: reports)

        // Every job finished, as the client's registered name; none left running.
        var jobs: [[String: Any]] = []
        let settled = StandbySchedulerTests.waitUntil(seconds: 10) {
            guard let peer = try? RawPeer(port: cluster.schedulerPort, timeoutSeconds: 5) else { return false }
            peer.send(.hello(Hello(role: .monitor, name: "watch")))
            guard case .helloAck? = peer.receive() else { return false }
            peer.send(.subscribe)
            guard case let .event(json)? = peer.receive(),
                  let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return false }
            jobs = (object["jobs"] as? [[String: Any]] ?? []).filter { ($0["key"] as? String)?.hasPrefix("burst#") == true }
            return jobs.count == requests.count && jobs.allSatisfy { $0["outcome"] as? String == "remote" }
        }
        #expect(settled, "jobs: \(jobs.map { "\($0["key"] ?? "?") \($0["outcome"] ?? "?")" })")
        #expect(Set(jobs.compactMap { $0["client"] as? String }) == ["burst"])
        #expect(Set(jobs.compactMap { $0["source"] as? String }) == Set(requests.map { "src/f\($0).c" }))
    }

    /// A request that finds every slot busy waits for one to free instead of queueing behind one helper's running
    /// jobs: it is granted the slot that frees first, and one that no slot frees for is queued after a while.
    @Test func aRequestWaitsForTheFirstSlotToFreeAndIsQueuedOnlyAfterAWhile() throws {
        let cluster = try TestCluster(helpers: 1, http: true)
        // Two one-slot hosts of a platform of their own (the cluster's daemons take none of these jobs).
        var hosts: [RawPeer] = []
        for name in ["wait-a", "wait-b"] {
            let host = try RawPeer(port: cluster.schedulerPort)
            host.send(.hello(Hello(role: .daemon, name: name)))
            guard case .helloAck? = host.receive() else { Issue.record("no handshake"); return }
            host.send(.register(HostInfo(name: name, address: "127.0.0.1", port: 1, maxJobs: 1, platform: "waitlab-linux",
                                         acceptsRemote: true, toolchains: ["tc"], id: String(repeating: name == "wait-a" ? "a" : "b", count: 32))))
            hosts.append(host)
        }
        let client = try RawPeer(port: cluster.schedulerPort)
        client.send(.hello(Hello(role: .daemon, name: "waiter")))
        guard case .helloAck? = client.receive() else { Issue.record("no handshake"); return }
        client.send(.register(HostInfo(name: "waiter", address: "", port: 0, maxJobs: 0, platform: currentPlatform(),
                                       acceptsRemote: false, toolchains: [], id: String(repeating: "c", count: 32))))
        func ask(_ id: UInt64) {
            client.send(.hostRequest(HostRequest(id: id, choices: [ToolchainChoice(platform: "waitlab-linux", toolchain: "tc")], exclude: [])))
        }
        func grant() -> HostGrant? {
            while let message = client.receive() {
                if case let .hostGrant(grant) = message { return grant }
                if case .keepAlive = message { continue }
                Issue.record("unexpected answer \(message.kind)")
                return nil
            }
            return nil
        }
        // The first two fill both slots (both hosts: the registrations may still be in flight, so ask until both are known).
        var first: HostGrant?, second: HostGrant?
        for attempt in 0..<50 {
            ask(UInt64(1 + 2 * attempt))
            first = grant()
            ask(UInt64(2 + 2 * attempt))
            second = grant()
            if let first, let second, first.name != second.name { break }
            for done in [first, second].compactMap({ $0 }) {
                client.send(.jobDone(JobReport(id: done.id, outcome: .remote, host: done.name, compileMicros: 1000, inputBytes: 1000)))
            }
            usleep(50_000)
        }
        guard let first, let second, first.name != second.name else { Issue.record("the two hosts were not granted"); return }
        // A third finds both busy: no answer while they are.
        ask(1000)
        #expect(client.isSilent(forMilliseconds: 500), "a request was answered with every slot busy")
        // The second host's job ends: the waiting request gets its slot.
        client.send(.jobDone(JobReport(id: second.id, outcome: .remote, host: second.name, compileMicros: 1000, inputBytes: 1000)))
        let third = grant()
        #expect(third?.id == 1000 && third?.name == second.name, "\(String(describing: third))")
        // A fourth with both busy again and nothing ending: queued on a host after waiting, not left unanswered.
        ask(1001)
        #expect(client.isSilent(forMilliseconds: 500))
        let fourth = grant()
        #expect(fourth?.id == 1001 && fourth.map { [first.name, second.name].contains($0.name) } == true, "\(String(describing: fourth))")
        // Both waits are in /metrics.
        let metrics = output(["/usr/bin/python3", "-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
                              "http://127.0.0.1:\(cluster.httpPort!)/metrics"])
        let waits = metrics.stdout.split(separator: "\n").first { $0.hasPrefix("swlaunch_slot_wait_seconds_count ") }
        #expect(waits == "swlaunch_slot_wait_seconds_count 2", "\(metrics.stdout)")
        _ = hosts
    }
}
