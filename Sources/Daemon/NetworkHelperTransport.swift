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

    func attempt(_ job: RemoteJob, on grant: HostGrant, deadline: Duration, meter: AttemptMeter) async -> AttemptOutcome {
        let clock = ContinuousClock()
        let state = AttemptState(end: clock.now + deadline)
        return await withTaskGroup(of: AttemptOutcome?.self) { group in
            group.addTask {
                do {
                    return try await run(job, on: grant, meter: meter, extend: { seconds in state.end.withLock { $0 = $0 + .seconds(seconds) } },
                                         connected: { channel in state.channel.withLock { $0 = channel } })
                } catch let failure as JobFailure {
                    return .failed(failure)
                } catch {
                    return .failed(JobFailure(.infrastructure, "connection", "\(grant.name): \(error)"))
                }
            }
            group.addTask {
                // The watchdog: sleeps until the (possibly extended) deadline, then ends the attempt.
                while !Task.isCancelled {
                    let due = state.end.withLock { $0 }
                    if clock.now >= due { return .failed(JobFailure(.infrastructure, "deadline", "\(grant.name): no verdict within \(deadline)")) }
                    try? await Task.sleep(until: due, clock: clock)
                }
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if let channel = state.channel.withLock({ $0 }) { channel.channel.close(promise: nil) }
            return first ?? .failed(JobFailure(.infrastructure, "deadline", "\(grant.name): cancelled"))
        }
    }

    private func run(_ job: RemoteJob, on grant: HostGrant, meter: AttemptMeter, extend: @escaping @Sendable (Int64) -> Void,
                     connected: @Sendable (MessageChannel) -> Void) async throws -> AttemptOutcome {
        let channel = try await connectPeer(host: grant.address, port: Int(grant.port), security: security)
        connected(channel)
        return try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            try await offerHandshake(&iterator, outbound, hello: Hello(role: .daemon, name: name))
            try await outbound.write(.compile(job))
            meter.countSent(job.files.reduce(job.arguments.reduce(0) { $0 + $1.utf8.count }) { $0 + $1.path.utf8.count + $1.hash.utf8.count + 1 })
            return try await withKeepAlives(outbound) {
                while let message = try await nextMessage(&iterator) {
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
                        return .failed(JobFailure(.infrastructure, "helper-error", "\(grant.name): \(text)"))
                    default:
                        throw FrameError.unexpected(message.kind, expected: "needBlobs, needEnvironment or result")
                    }
                }
                throw JobFailure(.infrastructure, "connection", "\(grant.name) closed the connection before its verdict")
            }
        }
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
