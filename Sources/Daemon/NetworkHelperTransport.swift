import ClusterKey
import Logging
import NIOCore
import NIOPosix
import Synchronization
import SystemSupport
import Wire
import WireNIO

/// A ``HelperTransport`` over the wire protocol: connects to the helper, sends the job, serves the contents and
/// the environment it asks for, and returns its verdict or why there is none. The attempt is abandoned at its
/// deadline (extended only while an environment is sent, by the time the archive's size allows).
struct NetworkHelperTransport: HelperTransport {
    let name: String
    let security: TransportSecurity
    /// Contents by SHA-256, for the helper's `needBlobs`.
    let contents: @Sendable (String) -> [UInt8]?
    /// The path of an environment archive this daemon serves, by id.
    let archive: @Sendable (String) -> String?
    let logger: Logger
    var transferBytesPerSecond: Double = 1_000_000
    /// Connections kept between jobs, shared by every copy of this transport.
    var connections = HelperConnections()

    func attempt(_ job: RemoteJob, on grant: HostGrant, deadline: Duration, meter: AttemptMeter) async -> AttemptOutcome {
        let clock = ContinuousClock()
        let state = AttemptState(end: clock.now + deadline)
        return await withTaskGroup(of: (outcome: AttemptOutcome, watchdog: Bool)?.self) { group in
            group.addTask {
                do {
                    return (try await run(job, on: grant, meter: meter, extend: { seconds in state.end.withLock { $0 = $0 + .seconds(seconds) } },
                                          connected: { channel in state.channel.withLock { $0 = channel } }), false)
                } catch let failure as JobFailure {
                    return (.failed(failure), false)
                } catch {
                    return (.failed(JobFailure(.infrastructure, "connection", "\(grant.name): \(error)")), false)
                }
            }
            group.addTask {
                // The watchdog: sleeps until the (possibly extended) deadline, then ends the attempt.
                while !Task.isCancelled {
                    let due = state.end.withLock { $0 }
                    if clock.now >= due { return (.failed(JobFailure(.infrastructure, "deadline", "\(grant.name): no verdict within \(deadline)")), true) }
                    try? await Task.sleep(until: due, clock: clock)
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            // Past the deadline the connection is closed, which ends the exchange under way; an attempt that ended by
            // itself has kept its connection for the next job or closed it already.
            if first?.watchdog ?? true, let channel = state.channel.withLock({ $0 }) { channel.channel.close(promise: nil) }
            return first?.outcome ?? .failed(JobFailure(.infrastructure, "deadline", "\(grant.name): cancelled"))
        }
    }

    private func run(_ job: RemoteJob, on grant: HostGrant, meter: AttemptMeter, extend: @escaping @Sendable (Int64) -> Void,
                     connected: @Sendable (MessageChannel) -> Void) async throws -> AttemptOutcome {
        let helper = "\(grant.address):\(grant.port)"
        // A kept connection first: one found closed before the helper said anything (it restarted, or its idle
        // timeout ended it just now) is replaced by a new one, as if it had not been there.
        if let link = connections.take(helper) {
            connected(link.channel)
            let heard = ManagedFlag()
            do {
                return try await exchange(job, on: link, helper: helper, grant: grant, meter: meter, extend: extend, heard: heard)
            } catch where !heard.isSet && !Task.isCancelled && (error as? JobFailure).map({ $0.code == "connection" }) ?? true {
                // Nothing heard: the connection had ended (a failure of the job itself, like an input changed, is
                // not tried again here).
                link.close()
            }
        }
        let link = try await HelperLink.open(host: grant.address, port: Int(grant.port), security: security, hello: Hello(role: .daemon, name: name),
                                             connected: connected)
        connections.opened()
        return try await exchange(job, on: link, helper: helper, grant: grant, meter: meter, extend: extend, heard: ManagedFlag())
    }

    /// Sends the job on `link` and serves what the helper asks for until its answer; the link goes back to the pool
    /// after a verdict or a refusal of the job, and is closed after anything else.
    private func exchange(_ job: RemoteJob, on link: HelperLink, helper: String, grant: HostGrant, meter: AttemptMeter,
                          extend: @escaping @Sendable (Int64) -> Void, heard: ManagedFlag) async throws -> AttemptOutcome {
        let contents = self.contents, archive = self.archive, transferBytesPerSecond = self.transferBytesPerSecond
        let outcome: AttemptOutcome
        do {
            outcome = try await link.perform { iterator, outbound in
                try await outbound.write(.compile(job))
                meter.countSent(job.files.reduce(job.arguments.reduce(0) { $0 + $1.utf8.count }) { $0 + $1.path.utf8.count + $1.hash.utf8.count + 1 })
                return try await withKeepAlives(outbound) {
                    while let message = try await nextMessage(&iterator) {
                        heard.set()
                        switch message {
                        case let .needBlobs(hashes):
                            let blobs = try await NIOThreadPool.singleton.runIfActive {
                                try hashes.map { hash in
                                    guard let bytes = contents(hash) else {
                                        throw JobFailure(.job, "input-changed", "\(hash): an input changed or vanished during the build")
                                    }
                                    return Blob(hash: hash, contents: bytes)
                                }
                            }
                            try await outbound.write(.blobs(blobs))
                            meter.countSent(blobs.reduce(0) { $0 + $1.contents.count })
                        case let .needEnvironment(id):
                            guard id == job.toolchain, let path = archive(id), let bytes = Posix.readFile(path) else {
                                throw JobFailure(.infrastructure, "protocol", "\(grant.name) asked for environment \(id), which this job does not use")
                            }
                            extend(10 + Int64(Double(bytes.count) / transferBytesPerSecond))
                            try await outbound.write(.environment(id: id, archive: bytes))
                            meter.countSent(bytes.count)
                        case let .result(result):
                            return .verdict(result)
                        case let .jobFailed(failure):
                            return .failed(failure)
                        case let .error(text):
                            throw JobFailure(.infrastructure, "helper-error", "\(grant.name): \(text)")
                        default:
                            throw FrameError.unexpected(message.kind, expected: "needBlobs, needEnvironment or result")
                        }
                    }
                    throw JobFailure(.infrastructure, "connection", "\(grant.name) closed the connection before its verdict")
                }
            }
        } catch let failure as JobFailure where failure.code == "helper-error" {
            return .failed(failure)
        }
        switch outcome {
        case .verdict:
            connections.giveBack(link, to: helper)
        case let .failed(failure) where failure.failureClass == .job || failure.code == JobFailure.movedCode:
            // The helper answered as the protocol says: the connection is as good as before.
            connections.giveBack(link, to: helper)
        default:
            link.close()
        }
        return outcome
    }
}

/// The deadline of one attempt (extended while an environment is sent) and its connection, shared by the
/// attempt and its watchdog.
private final class AttemptState: Sendable {
    let end: Mutex<ContinuousClock.Instant>
    let channel = Mutex<MessageChannel?>(nil)
    init(end: ContinuousClock.Instant) { self.end = Mutex(end) }
}

extension SchedulerLink: HostSource {
    public func requestHost(choices: [ToolchainChoice], exclude: [String]) async -> HostAnswer {
        switch await requestHostMessage(choices: choices, exclude: exclude) {
        case let .hostGrant(grant)?: return .granted(grant)
        case .noHost?: return .noHost
        default: return isConnected ? .noHost : .unreachable
        }
    }
}
