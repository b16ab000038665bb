import Foundation
import GRPCCore
import Logging
import REAPIProtos
import SwiftProtobuf
import Synchronization
import Wire

typealias BotSession = Google_Devtools_Remoteworkers_V1test2_BotSession
typealias Lease = Google_Devtools_Remoteworkers_V1test2_Lease

/// How a leased action ended on this worker.
public enum ActionExecution: Sendable {
    /// The compiler ran: its verdict, outputs by absolute path.
    case finished(JobResult)
    /// The action breaks this worker's policy (the job's fault): reported as FAILED_PRECONDITION.
    case refused(String)
    /// This worker could not run it (an infrastructure failure): reported as UNAVAILABLE.
    case failed(String)
}

/// Runs one leased action (the daemon's sandbox, in swlaunchd).
public protocol ActionExecutor: Sendable {
    func execute(_ input: ActionInput, client: REAPIClient) async -> ActionExecution
}

/// A Remote Workers API bot: keeps a bot session with the service, takes leases up to `capacity`, runs each
/// through the executor, uploads the outputs and reports the `ActionResult` as the lease's result.
///
/// While no lease runs, UpdateBotSession long-polls the service; while some run, the session is updated as soon
/// as one finishes and at least every `pollInterval` (to take a lease a free slot can run).
public final class REAPIWorker: Sendable {
    public let client: REAPIClient
    public let botID: String
    public let properties: [(String, String)]
    public let capacity: Int
    let executor: any ActionExecutor
    let logger: Logger
    let pollInterval: Duration = .milliseconds(250)
    let longPoll: Duration = .seconds(20)
    /// Failed updates of a session (about two minutes of a service away) before a new session is made.
    static let updateAttempts = 30

    public init(client: REAPIClient, botID: String, properties: [(String, String)], capacity: Int, executor: any ActionExecutor, logger: Logger) {
        self.client = client
        self.botID = botID
        self.properties = properties
        self.capacity = max(1, capacity)
        self.executor = executor
        self.logger = logger
    }

    /// A lease this worker holds and what became of it.
    final class Held: Sendable {
        let lease: Mutex<Lease>
        let task: Mutex<Task<Void, Never>?> = Mutex(nil)
        init(_ lease: Lease) { self.lease = Mutex(lease) }
    }

    /// Leases by id, and a signal that one finished.
    final class Leases: Sendable {
        let held = Mutex<[String: Held]>([:])
        let finished: AsyncStream<Void>
        let signal: AsyncStream<Void>.Continuation
        init() { (finished, signal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1)) }
    }

    var worker: Google_Devtools_Remoteworkers_V1test2_Worker {
        .with { worker in
            worker.devices = [.with { device in
                device.handle = botID
                device.properties = properties.map { property in .with { $0.key = property.0; $0.value = property.1 } }
            }]
            worker.configs = [.with { $0.key = "capacity"; $0.value = String(capacity) }]
        }
    }

    /// Serves leases until cancelled; a lost session is created again.
    public func run() async {
        let bots = Google_Devtools_Remoteworkers_V1test2_Bots.Client(wrapping: client.grpc)
        let leases = Leases()
        var backoff = 1
        while !Task.isCancelled {
            let session: BotSession
            do {
                var options = client.options
                options.timeout = .seconds(30)
                session = try await bots.createBotSession(.with {
                    $0.parent = client.instance
                    $0.botSession = .with { $0.botID = botID; $0.status = .ok; $0.worker = worker }
                }, metadata: client.metadata, options: options)
                logger.info("REAPI bot session", metadata: ["session": "\(session.name)", "endpoint": "\(client.endpoint.description)"])
                backoff = 1
            } catch {
                logger.warning("cannot create a REAPI bot session", metadata: ["endpoint": "\(client.endpoint.description)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(backoff * 2, 10)
                continue
            }
            await serve(session, bots: bots, leases: leases)
        }
        for held in leases.held.withLock({ Array($0.values) }) { held.task.withLock { $0?.cancel() } }
    }

    /// Updates one session until it is lost.
    func serve(_ first: BotSession, bots: Google_Devtools_Remoteworkers_V1test2_Bots.Client<some ClientTransport>, leases: Leases) async {
        var session = first
        var failures = 0
        while !Task.isCancelled {
            take(session.leases, into: leases)
            // Report what is held: running leases ACTIVE, finished ones COMPLETED with their result.
            let reported = leases.held.withLock { held in held.values.map { $0.lease.withLock { $0 } } }
            session.leases = reported
            session.status = .ok
            session.worker = worker
            if !reported.isEmpty, !reported.contains(where: { $0.state == .completed }) {
                await waitForFinish(leases, atMost: pollInterval)
                session.leases = leases.held.withLock { held in held.values.map { $0.lease.withLock { $0 } } }
            }
            var options = client.options
            options.timeout = session.leases.isEmpty ? longPoll : .seconds(10)
            let sent = session.leases
            logger.trace("updating the bot session", metadata: ["leases": "\(sent.map { "\($0.id):\($0.state)" })"])
            do {
                session = try await bots.updateBotSession(.with {
                    $0.name = session.name
                    $0.botSession = session
                    $0.updateMask = .with { $0.paths = ["leases", "status"] }
                }, metadata: client.metadata, options: options)
                failures = 0
            } catch let error as RPCError where error.code == .deadlineExceeded && sent.isEmpty {
                continue
            } catch let error as RPCError where error.code == .notFound || error.code == .invalidArgument {
                // The service no longer knows the session: a new one (the leases held are reported in it).
                logger.warning("REAPI bot session lost", metadata: ["session": "\(session.name)", "error": "\(error)"])
                return
            } catch {
                // The service is away (restarting, say): the same session is kept, so that the leases finished
                // meanwhile are reported in it when it is back, and not run again elsewhere.
                failures += 1
                logger.warning("REAPI bot session update failed", metadata: ["error": "\(error)", "failures": "\(failures)"])
                if failures >= Self.updateAttempts { return }
                try? await Task.sleep(for: .seconds(min(failures, 5)))
                continue
            }
            // Completed leases the service has taken are forgotten.
            let completed = Set(sent.filter { $0.state == .completed }.map(\.id))
            leases.held.withLock { held in for id in completed { held[id] = nil } }
        }
    }

    /// Starts the leases the service assigned that are new, stops those it cancelled.
    func take(_ assigned: [Lease], into leases: Leases) {
        for lease in assigned {
            switch lease.state {
            case .pending, .active:
                let isNew = leases.held.withLock { held -> Held? in
                    guard held[lease.id] == nil, held.count < capacity else { return nil }
                    var accepted = lease
                    accepted.state = .active
                    let entry = Held(accepted)
                    held[lease.id] = entry
                    return entry
                }
                if let isNew { start(isNew, leases: leases) }
            case .cancelled:
                let entry = leases.held.withLock { $0.removeValue(forKey: lease.id) }
                entry?.task.withLock { $0?.cancel() }
            default:
                continue
            }
        }
    }

    func start(_ held: Held, leases: Leases) {
        let lease = held.lease.withLock { $0 }
        let task = Task {
            let (status, result) = await self.run(lease)
            held.lease.withLock { lease in
                lease.state = .completed
                lease.status = status
                if let result { lease.result = result }
            }
            leases.signal.yield()
        }
        held.task.withLock { $0 = task }
    }

    func waitForFinish(_ leases: Leases, atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var iterator = leases.finished.makeAsyncIterator()
                _ = await iterator.next()
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Runs one lease: the status for the service and, on a verdict, the ActionResult packed.
    func run(_ lease: Lease) async -> (Google_Rpc_Status, Google_Protobuf_Any?) {
        func status(_ code: Int32, _ message: String) -> Google_Rpc_Status { .with { $0.code = code; $0.message = message } }
        let input: ActionInput
        do {
            input = try await ActionInput.fetch(payload: lease.payload, from: client)
        } catch {
            logger.warning("leased action unreadable", metadata: ["lease": "\(lease.id)", "error": "\(error)"])
            return (status(error.kind == .protocolViolation ? 9 : 14, "\(botID): \(error)"), nil)
        }
        switch await executor.execute(input, client: client) {
        case let .refused(reason):
            return (status(9, "\(botID): \(reason)"), nil)
        case let .failed(reason):
            return (status(14, "\(botID): \(reason)"), nil)
        case let .finished(result):
            // A service that is away (restarting) would run the action again on a failed lease: the upload waits
            // for it, about two minutes at most.
            var attempts = 0
            while true {
                do {
                    let actionResult = try await upload(result, of: input)
                    return (status(0, ""), try Google_Protobuf_Any(message: actionResult))
                } catch let error as REAPIError where error.kind == .unavailable && attempts < Self.updateAttempts && !Task.isCancelled {
                    attempts += 1
                    logger.notice("outputs not uploaded yet", metadata: ["lease": "\(lease.id)", "error": "\(error)", "attempts": "\(attempts)"])
                    try? await Task.sleep(for: .seconds(min(attempts, 5)))
                } catch {
                    return (status(14, "\(botID): uploading the outputs: \(error)"), nil)
                }
            }
        }
    }

    /// Uploads a verdict's outputs (and long stdout or stderr) and describes them in an ActionResult.
    func upload(_ result: JobResult, of input: ActionInput) async throws -> REActionResult {
        var blobs: [BlobDigest: [UInt8]] = [:]
        var actionResult = REActionResult()
        actionResult.exitCode = result.exitStatus
        for output in result.outputs.sorted(by: { $0.path < $1.path }) {
            guard let name = input.outputNames[output.path] else { continue }
            let digest = BlobDigest(of: output.contents)
            blobs[digest] = output.contents
            actionResult.outputFiles.append(.with { $0.path = name; $0.digest = digest.proto })
        }
        for (bytes, isStdout) in [(result.stdout, true), (result.stderr, false)] where !bytes.isEmpty {
            if bytes.count <= 64 << 10 {
                if isStdout { actionResult.stdoutRaw = Data(bytes) } else { actionResult.stderrRaw = Data(bytes) }
            } else {
                let digest = BlobDigest(of: bytes)
                blobs[digest] = bytes
                if isStdout { actionResult.stdoutDigest = digest.proto } else { actionResult.stderrDigest = digest.proto }
            }
        }
        actionResult.executionMetadata.worker = botID
        let missing = try await client.findMissing(Array(blobs.keys))
        try await client.upload(Array(missing)) { blobs[$0] }
        return actionResult
    }
}
