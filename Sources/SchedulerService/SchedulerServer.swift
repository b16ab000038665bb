import SystemSupport
import ClusterKey
import Synchronization
import History
import SchedulerHTTP
import Logging
import Records
import NIOCore
import NIOPosix
import Scheduling
import Wire
import WireNIO

/// `swlaunch-scheduler`: tracks daemons and grants each job the host expected to finish it first.
public struct SchedulerServer: Sendable {
    public var host: String
    public var port: Int
    public var heartbeatTimeout: Double
    /// Network name answered in UDP discovery; nil turns discovery off.
    public var netname: String?
    public var discoveryPort: Int
    public var logger: Logger
    /// TLS from the cluster key, or none (then only a loopback address, unless `insecure`).
    public var security: TransportSecurity
    /// A scheduler serves every daemon of the cluster on one port: room for a few thousand hosts and their monitors
    /// (64 connections per peer address, as everywhere).
    public var limiter = ConnectionLimiter(total: 8192)
    /// Where the job history and measured speeds are kept (SQLite), and its size bound; nil keeps none.
    public var historyPath: String?
    public var historyMaximumBytes: Int64 = 64 << 20
    /// The read-only dashboard and `/metrics` (`--http`); nil serves none.
    public var http: (host: String, port: Int)?
    /// Learns the dashboard's port once it listens.
    public var httpBound: @Sendable (Int) async -> Void = { _ in }
    /// Reaches the running scheduler from a graceful shutdown.
    public let control = SchedulerControl()

    public init(host: String, port: Int, heartbeatTimeout: Double = 15, netname: String? = nil,
                discoveryPort: Int = Discovery.defaultPort, security: TransportSecurity = .none, logger: Logger) {
        self.security = security
        self.host = host
        self.port = port
        self.heartbeatTimeout = heartbeatTimeout
        self.netname = netname
        self.discoveryPort = discoveryPort
        self.logger = logger
    }

    /// Serves until cancelled.
    public func run() async throws {
        let history = try historyPath.map { path throws(HistoryError) in try JobHistory(path: path, maximumBytes: historyMaximumBytes) }
        let state = ClusterState(heartbeatTimeout: heartbeatTimeout,
                                 security: security.fingerprint.map { "mutual TLS (cluster key \($0))" }
                                     ?? (TransportSecurity.isLoopback(host) ? "no cluster key: loopback only"
                                         : "INSECURE: no cluster key (--insecure): any host that reaches \(host):\(port) can join the cluster"),
                                 history: history, logger: logger)
        // One event loop per CPU the process may use: threads beyond them only take turns (and the lock) on one.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: min(System.coreCount, Posix.usableCPUs() ?? System.coreCount))
        defer { group.shutdownGracefully { _ in } }
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port,
                  childChannelInitializer: limiter.initializer(idleTimeout: .seconds(Int64(heartbeatTimeout * 2)), policy: .schedulerServer,
                                                               tls: security.server,
                                                               inner: { try $0.addHandler(SchedulerFastPath(state: state)) }))
        logger.info("scheduler listening", metadata: ["address": "\(server.channel.localAddress?.description ?? "?")",
                                                      "security": "\(security.fingerprint.map { "mutual TLS, cluster key \($0)" } ?? "none (no cluster key)")"])
        let boundPort = server.channel.localAddress?.port ?? port
        control.attach(state: state, listener: server.channel)
        // The jobs of the last second reach the history however the scheduler stops.
        do {
            try await serve(server, state: state, boundPort: boundPort)
        } catch {
            await state.saveHistory()
            throw error
        }
        await state.saveHistory()
    }

    private func serve(_ server: NIOAsyncChannel<MessageChannel, Never>, state: ClusterState, boundPort: Int) async throws {
        let history = state.history
        try await withThrowingDiscardingTaskGroup { group in
            if let netname {
                group.addTask {
                    try await Discovery.respond(netname: netname, udpPort: discoveryPort, schedulerPort: boundPort,
                                                key: security.discoveryKey, logger: logger)
                }
            }
            // Host requests that waited for a slot long enough are queued on the best host.
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(100))
                    state.servePending()
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(1))
                    for name in state.expire() { logger.warning("host timed out", metadata: ["host": "\(name)"]) }
                    state.tick()
                    if history != nil { await state.saveHistory() }
                }
            }
            if let http {
                let dashboard = DashboardServer(host: http.host, port: http.port, source: SchedulerDashboardSource(state: state), logger: logger)
                group.addTask {
                    try await dashboard.run(bound: { port in
                        logger.info("dashboard listening", metadata: ["address": "http://\(http.host):\(port)/", "metrics": "/metrics"])
                        await httpBound(port)
                    })
                }
            }
            try await server.executeThenClose { inbound in
                var connectionID: UInt64 = 0
                for try await connection in inbound {
                    connectionID += 1
                    let id = connectionID
                    group.addTask { await serve(connection, id: id, state: state) }
                }
            }
        }
    }

    private func serve(_ connection: MessageChannel, id: UInt64, state: ClusterState) async {
        let peer = connection.channel.remoteAddress
        var hostName: String?
        /// Who sends this connection's jobs: the name it registered, else its address.
        func client() -> String { hostName ?? peer?.description ?? "?" }
        do {
            let channel = connection.channel
            let (registered, send) = try await channel.eventLoop.submit {
                let fastPath = try channel.pipeline.syncOperations.handler(type: SchedulerFastPath.self)
                return (fastPath.registered, fastPath.answerLater)
            }.get()
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                guard try await acceptHandshake(&iterator, outbound, name: "scheduler") != nil else { return }
                // Daemons time out a silent scheduler; keep-alives show we are here between grants.
                let ticker = Task { await sendKeepAlives(outbound) }
                defer { ticker.cancel() }
                while let message = try await nextMessage(&iterator) {
                    switch message {
                    case var .register(info):
                        if info.address.isEmpty || info.address == "0.0.0.0" || info.address == "::" {
                            info.address = peer?.ipAddress ?? ""
                        }
                        guard hostName == nil || hostName == info.name else {
                            try await outbound.write(.error("refused: this connection registered \(hostName!) already"))
                            return
                        }
                        switch state.join(info, connection: id, send: send) {
                        case .refusedDuplicateName:
                            logger.warning("duplicate host name refused", metadata: ["host": "\(info.name)", "id": "\(info.id)",
                                                                                     "peer": "\(peer?.description ?? "?")"])
                            try await outbound.write(.error("refused: a live host is registered as \(info.name) already; give this daemon another --name"))
                            return
                        case .replacedItsOldConnection:
                            logger.info("host reconnected; its previous connection is dropped", metadata: ["host": "\(info.name)"])
                        case .joined:
                            break
                        }
                        hostName = info.name
                        registered.set(info.name)
                        logger.info("host joined", metadata: ["host": "\(info.name)", "address": "\(info.address):\(info.port)", "slots": "\(info.maxJobs)"])
                    case .heartbeat, .hostRequest, .jobDone, .jobStarted:
                        // Before this connection registered (after, its event loop answers them: SchedulerFastPath).
                        if case let .handled(reply?) = JobTraffic.handle(message, client: client(), host: hostName, state: state) {
                            try await outbound.write(reply)
                        }
                    case .statusRequest:
                        try await outbound.write(.status(json: state.statusJSON()))
                    case let .historyRequest(seconds):
                        await state.saveHistory()
                        try await outbound.write(.history(json: await historyJSON(state, seconds: Double(seconds))))
                    case .subscribe:
                        // A monitor: its event stream until it goes. Its keep-alives are read meanwhile, so that
                        // the idle timeout sees them.
                        let events = state.subscribe()
                        let writer = Task { for await json in events { try await outbound.write(.event(json: json)) } }
                        defer { writer.cancel() }
                        while try await nextMessage(&iterator) != nil {}
                        return
                    default:
                        logger.warning("unexpected message", metadata: ["kind": "\(message.kind)", "peer": "\(peer?.description ?? "?")"])
                    }
                }
            }
        } catch is CancellationError {
        } catch {
            logger.warning("connection closed on error", metadata: ["peer": "\(peer?.description ?? "?")", "error": "\(error)"])
        }
        if let hostName {
            state.leave(hostName, connection: id)
            logger.info("host left", metadata: ["host": "\(hostName)"])
        }
    }
}

/// The job history of the last `seconds` as JSON (an empty record, with `oldest` 0, when none is kept).
func historyJSON(_ state: ClusterState, seconds: Double) async -> String {
    let now = Posix.wallSeconds()
    guard let history = state.history else { return RecordJSON.encode(HistoryRecord(since: now - seconds, seconds: seconds)) }
    do {
        return RecordJSON.encode(try history.summary(since: now - seconds, now: now))
    } catch {
        state.logger.warning("cannot read the job history", metadata: ["error": "\(error)"])
        return RecordJSON.encode(HistoryRecord(since: now - seconds, seconds: seconds))
    }
}

/// The dashboard's view of the scheduler.
struct SchedulerDashboardSource: DashboardSource {
    let state: ClusterState
    func statusJSON() async -> String { state.statusJSON() }
    func events() async -> AsyncStream<String> { state.subscribe() }
    func historyJSON(seconds: Double) async -> String { await SchedulerService.historyJSON(state, seconds: seconds) }
    func metricsText() async -> String { state.metrics.exposition() }
}

/// The first step of a graceful shutdown (SIGTERM), before the scheduler's tasks are cancelled: stop accepting
/// connections and write the job history, so that nothing of the last second is lost to the teardown.
public final class SchedulerControl: Sendable {
    private let running = Mutex<(state: ClusterState, listener: any Channel)?>(nil)

    init() {}

    func attach(state: ClusterState, listener: any Channel) { running.withLock { $0 = (state, listener) } }

    public func drain() async {
        guard let (state, listener) = running.withLock({ $0 }) else { return }
        try? await listener.close()
        await state.saveHistory()
    }
}
