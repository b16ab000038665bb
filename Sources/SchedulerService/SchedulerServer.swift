import SystemSupport
import ClusterKey
import Logging
import Records
import NIOCore
import NIOPosix
import Scheduling
import Wire
import WireNIO

/// The cluster state behind the scheduler's connections.
actor ClusterState {
    var cluster: Cluster
    private let clock = ContinuousClock()
    private let start = ContinuousClock.now

    /// What protects the scheduler's connections, for `status`.
    let security: String

    init(heartbeatTimeout: Double, security: String) {
        cluster = Cluster(heartbeatTimeout: heartbeatTimeout)
        self.security = security
    }

    var now: Double {
        let elapsed = clock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// The connection that registered each host name.
    private var owners: [String: UInt64] = [:]

    enum JoinOutcome { case joined, replacedItsOldConnection, refusedDuplicateName }

    /// Adds a host for `connection`. A name held by another live connection is refused unless the registration
    /// carries the same host id (the same daemon reconnecting before its old connection was seen to close).
    func join(_ info: HostInfo, connection: UInt64) -> JoinOutcome {
        var outcome = JoinOutcome.joined
        if let owner = owners[info.name], owner != connection, let live = cluster.hosts[info.name] {
            guard !info.id.isEmpty, live.info.id == info.id else { return .refusedDuplicateName }
            outcome = .replacedItsOldConnection
        }
        owners[info.name] = connection
        cluster.join(info, now: now)
        return outcome
    }

    /// Removes a host, only when `connection` is the one that registered it.
    func leave(_ name: String, connection: UInt64) {
        guard owners[name] == connection else { return }
        owners[name] = nil
        cluster.leave(name)
    }
    func heartbeat(_ name: String, running: Int, load: Double, toolchains: [String]) {
        cluster.heartbeat(name, running: running, load: load, toolchains: toolchains, now: now)
    }
    func record(_ report: JobReport) { cluster.record(report, now: now) }
    func grant(_ request: HostRequest) -> (host: HostState, choice: ToolchainChoice)? { cluster.grant(request, now: now) }
    func expire() -> [String] { cluster.expire(now: now) }

    func statusJSON() -> String {
        let t = now
        let hosts = cluster.hosts.values.sorted { $0.info.name < $1.info.name }.map { h in
            StatusRecord.Host(name: h.info.name, id: h.info.id, address: h.info.address, port: Int(h.info.port), maxJobs: Int(h.info.maxJobs),
                              running: h.running, load: h.load, speed: h.speed, jobsDone: h.jobsDone, acceptsRemote: h.info.acceptsRemote,
                              platform: h.info.platform, note: h.info.note, avoidedForS: max(0, h.avoidUntil - t))
        }
        return RecordJSON.encode(StatusRecord(security: security, hosts: hosts))
    }
}

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
    public var limiter = ConnectionLimiter()

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
        let state = ClusterState(heartbeatTimeout: heartbeatTimeout,
                                 security: security.fingerprint.map { "mutual TLS (cluster key \($0))" }
                                     ?? (TransportSecurity.isLoopback(host) ? "no cluster key: loopback only"
                                         : "INSECURE: no cluster key (--insecure): any host that reaches \(host):\(port) can join the cluster"))
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port,
                  childChannelInitializer: limiter.initializer(idleTimeout: .seconds(Int64(heartbeatTimeout * 2)), policy: .schedulerServer,
                                                               tls: security.server))
        logger.info("scheduler listening", metadata: ["address": "\(server.channel.localAddress?.description ?? "?")",
                                                      "security": "\(security.fingerprint.map { "mutual TLS, cluster key \($0)" } ?? "none (no cluster key)")"])
        let boundPort = server.channel.localAddress?.port ?? port
        try await withThrowingDiscardingTaskGroup { group in
            if let netname {
                group.addTask {
                    try await Discovery.respond(netname: netname, udpPort: discoveryPort, schedulerPort: boundPort,
                                                key: security.discoveryKey, logger: logger)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(1))
                    for name in await state.expire() { logger.warning("host timed out", metadata: ["host": "\(name)"]) }
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
        do {
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
                        switch await state.join(info, connection: id) {
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
                        logger.info("host joined", metadata: ["host": "\(info.name)", "address": "\(info.address):\(info.port)", "slots": "\(info.maxJobs)"])
                    case let .heartbeat(running, load, toolchains):
                        if let hostName { await state.heartbeat(hostName, running: Int(running), load: load, toolchains: toolchains) }
                    case let .hostRequest(request):
                        if let (granted, choice) = await state.grant(request) {
                            try await outbound.write(.hostGrant(HostGrant(id: request.id, name: granted.info.name, address: granted.info.address,
                                                                          port: granted.info.port, choice: choice, speed: granted.speed ?? 0)))
                        } else {
                            try await outbound.write(.noHost(id: request.id, reason: "no helper can take the job now"))
                        }
                    case let .jobDone(report):
                        await state.record(report)
                    case .statusRequest:
                        try await outbound.write(.status(json: await state.statusJSON()))
                    default:
                        logger.warning("unexpected message", metadata: ["kind": "\(message.kind)", "peer": "\(peer?.description ?? "?")"])
                    }
                }
            }
        } catch {
            logger.warning("connection closed on error", metadata: ["peer": "\(peer?.description ?? "?")", "error": "\(error)"])
        }
        if let hostName {
            await state.leave(hostName, connection: id)
            logger.info("host left", metadata: ["host": "\(hostName)"])
        }
    }
}
