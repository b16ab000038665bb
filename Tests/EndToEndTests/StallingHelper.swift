import Foundation
import SystemSupport
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A fake helper that registers with a real scheduler (plain loopback, no key), takes jobs and then only sends
/// keep-alives: alive, never progressing. Lives until the test process ends.
final class StallingHelper: @unchecked Sendable {
    let name: String
    let port = TestCluster.freePort()
    private let lock = NSLock()
    private var jobs = 0
    var jobsTaken: Int { lock.withLock { jobs } }

    init(name: String, schedulerPort: Int) throws {
        self.name = name
        let listener = try listenOnLoopback(port: port)
        let scheduler = try RawPeer(port: schedulerPort)
        scheduler.send(.hello(Hello(role: .daemon, name: name)))
        guard case .helloAck? = scheduler.receive() else { throw TestClusterError("the scheduler did not answer the stalling helper") }
        scheduler.send(.register(HostInfo(name: name, address: "127.0.0.1", port: UInt32(port), maxJobs: 8, platform: currentPlatform(),
                                          acceptsRemote: true, toolchains: [], note: "stalls")))
        Thread.detachNewThread {
            while true {
                scheduler.send(.heartbeat(running: 0, load: 0, toolchains: []))
                sleep(2)
            }
        }
        Thread.detachNewThread {
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { continue }
                Thread.detachNewThread { self.stall(RawPeer(accepted: client)) }
            }
        }
    }

    private func stall(_ peer: RawPeer) {
        guard case .hello? = peer.receive() else { return }
        peer.send(.helloAck(HelloAck(name: name)))
        guard case .compile? = peer.receive() else { return }
        lock.withLock { jobs += 1 }
        while !peer.isClosedNow() {
            peer.send(.keepAlive)
            sleep(1)
        }
    }
}
