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
}
