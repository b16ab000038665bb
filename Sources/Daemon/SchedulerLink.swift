import ClusterKey
import Logging
import NIOCore
import NIOPosix
import Toolchain
import Wire
import SystemSupport
import WireNIO

/// The daemon's connection to the scheduler: registers, sends heartbeats, and asks for hosts.
/// Reconnects with back-off; while disconnected, requests fail fast so jobs compile locally.
///
/// With standbys (`--scheduler A,B`), the link uses the first address in order that answers; while on a
/// standby it probes the preferred ones every ``probeInterval`` (2 s) and moves back as soon as one answers, so
/// that every daemon of a cluster meets on the same scheduler.
public actor SchedulerLink {
    private let addresses: [HostPort]
    private let logger: Logger
    private let security: TransportSecurity
    private var outbound: NIOAsyncChannelOutboundWriter<Message>?
    private var pending: [UInt64: CheckedContinuation<Message?, Never>] = [:]
    private var nextID: UInt64 = 1
    /// Host requests given up (cancelled, or past their time) before the scheduler answered: a grant that comes for
    /// one after all is handed back as unused, so that its slot does not stay taken.
    private var withdrawn: Set<UInt64> = []
    /// Requests the scheduler answers in order without an id (status, history): their pending ids, oldest first.
    private var untagged: [MessageKind: [UInt64]] = [:]
    private var nextUntaggedID = firstUntaggedID
    /// Untagged requests' ids count from here, host requests' below.
    static let firstUntaggedID: UInt64 = 1 << 63
    /// The scheduler in use, while connected.
    public private(set) var current: HostPort?
    let probeInterval: Duration

    public init(addresses: [HostPort], security: TransportSecurity, logger: Logger, probeInterval: Duration = .seconds(2)) {
        precondition(!addresses.isEmpty, "a scheduler link needs an address")
        self.addresses = addresses
        self.security = security
        self.logger = logger
        self.probeInterval = probeInterval
    }

    public var isConnected: Bool { outbound != nil }

    /// What the daemon does with the scheduler's `giveBack` (its host and toolchains): give a job waiting for a
    /// processor back; nothing without.
    private var giveBack: (@Sendable (String, [String]) async -> Void)?

    /// Keeps the connection up until cancelled. `info` and `running` are read on every (re)connect and heartbeat;
    /// `giveBack` answers the scheduler's requests to give a waiting job back.
    public func run(name: String, info: @escaping @Sendable () async -> HostInfo, running: @escaping @Sendable () async -> Int,
                    toolchains: @escaping @Sendable () async -> [String],
                    giveBack: (@Sendable (String, [String]) async -> Void)? = nil) async {
        self.giveBack = giveBack
        var delay: Duration = .milliseconds(200)
        while !Task.isCancelled {
            for (rank, address) in addresses.enumerated() where !Task.isCancelled {
                let channel: MessageChannel
                do {
                    channel = try await connectPeer(host: address.host, port: address.port, security: security, idleTimeout: .seconds(30))
                } catch {
                    logger.debug("scheduler connection failed", metadata: ["scheduler": "\(address)", "error": "\(error)"])
                    continue
                }
                let started = ContinuousClock.now
                let registered = await session(on: channel, address: address, preferred: Array(addresses[..<rank]), name: name,
                                                info: info, running: running, toolchains: toolchains)
                detach()
                // A session that lasted is worth resuming at once; a refused registration backs off.
                if registered, ContinuousClock.now - started > .seconds(2) { delay = .zero }
                break
            }
            // A session that ended (lost, or left for a preferred scheduler) tries again at once; failures back off.
            if delay > .zero { try? await Task.sleep(for: delay) }
            delay = delay == .zero ? .milliseconds(200) : min(delay * 2, .seconds(5))
        }
        detach()
    }

    /// One registered connection; returns when it is lost or a `preferred` scheduler answers, and whether it registered.
    private func session(on channel: MessageChannel, address: HostPort, preferred: [HostPort], name: String,
                         info: @escaping @Sendable () async -> HostInfo, running: @escaping @Sendable () async -> Int,
                         toolchains: @escaping @Sendable () async -> [String]) async -> Bool {
        var registered = false
        do {
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                try await offerHandshake(&iterator, outbound, hello: Hello(role: .daemon, name: name))
                try await outbound.write(.register(await info()))
                // A refused registration (a live host of the same name) comes back as an error, then the
                // scheduler closes: logged in dispatch, and the link tries again with back-off.
                self.attach(outbound, address)
                registered = true
                logger.info("connected to scheduler", metadata: ["scheduler": "\(address)",
                                                                 "role": "\(preferred.isEmpty ? "primary" : "standby")"])
                let beat = Task {
                    while !Task.isCancelled {
                        try await outbound.write(.heartbeat(running: UInt32(await running()), load: Self.loadAverage(),
                                                            toolchains: await toolchains()))
                        try await Task.sleep(for: .seconds(2))
                    }
                }
                defer { beat.cancel() }
                // On a standby, a preferred scheduler that answers again ends this session: closing the channel
                // ends the read loop below, and `run` starts again from the first address.
                let probe = Task { [logger, security, probeInterval, channel = channel.channel] in
                    guard !preferred.isEmpty else { return }
                    while !Task.isCancelled {
                        try await Task.sleep(for: probeInterval)
                        for candidate in preferred where await Self.answers(candidate, security: security, name: name) {
                            logger.info("a preferred scheduler answers again; moving to it", metadata: ["scheduler": "\(candidate)"])
                            try await channel.close()
                            return
                        }
                    }
                }
                defer { probe.cancel() }
                while let message = try await nextMessage(&iterator) { self.dispatch(message) }
            }
        } catch {
            // Before registration this is a failed connection (TLS or handshake refused), after it a lost one.
            logger.debug(registered ? "scheduler connection ended" : "scheduler connection failed",
                         metadata: ["scheduler": "\(address)", "error": "\(error)"])
        }
        return registered
    }

    /// Whether a scheduler completes a connection and the handshake within a few seconds.
    static func answers(_ address: HostPort, security: TransportSecurity, name: String) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    let channel = try await connectPeer(host: address.host, port: address.port, security: security,
                                                        connectTimeout: .seconds(3), idleTimeout: .seconds(5))
                    return try await channel.executeThenClose { inbound, outbound in
                        var iterator = inbound.makeAsyncIterator()
                        try await offerHandshake(&iterator, outbound, hello: Hello(role: .daemon, name: name))
                        return true
                    }
                } catch {
                    return false
                }
            }
            group.addTask { try? await Task.sleep(for: .seconds(5)); return false }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    private func attach(_ writer: NIOAsyncChannelOutboundWriter<Message>, _ address: HostPort) {
        outbound = writer
        current = address
    }

    private func detach() {
        if outbound != nil { lostAt = .now }
        outbound = nil
        current = nil
        for (_, continuation) in pending { continuation.resume(returning: nil) }
        pending = [:]
        untagged = [:]
        withdrawn = []
    }

    private func dispatch(_ message: Message) {
        let id: UInt64
        switch message {
        case let .hostGrant(grant):
            if withdrawn.remove(grant.id) != nil {
                let unused = JobReport(id: grant.id, outcome: .unused, host: grant.name, reason: "withdrawn")
                Task { await self.report(unused) }
                return
            }
            id = grant.id
        case let .noHost(requestID, _):
            if withdrawn.remove(requestID) != nil { return }
            id = requestID
        case .status, .history:
            guard var queue = untagged[message.kind], !queue.isEmpty else { return }
            id = queue.removeFirst()
            untagged[message.kind] = queue
        case let .error(text):
            logger.error("the scheduler refused this daemon", metadata: ["reason": "\(text)"])
            return
        case let .giveBack(host, toolchains):
            if let giveBack { Task { await giveBack(host, toolchains) } }
            return
        default: return
        }
        pending.removeValue(forKey: id)?.resume(returning: message)
    }

    /// When the link last lost a registered connection: a request soon after waits a moment for the reconnect
    /// (a restarted scheduler, a move to a standby or back) instead of compiling locally at once.
    private var lostAt: ContinuousClock.Instant?
    static let reconnectGrace: Duration = .seconds(3)

    private func request(_ message: Message, id: UInt64, timeout: Duration) async -> Message? {
        if outbound == nil, let lostAt, ContinuousClock.now - lostAt < .seconds(15) {
            let end = ContinuousClock.now + Self.reconnectGrace
            while outbound == nil, ContinuousClock.now < end { try? await Task.sleep(for: .milliseconds(25)) }
        }
        guard let outbound else { return nil }
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        defer { timer.cancel() }
        // A cancelled request ends at once (nil); its answer, when it comes, is not waited for.
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                pending[id] = continuation
                Task { do { try await outbound.write(message) } catch { self.expire(id) } }
            }
        } onCancel: {
            Task { await self.expire(id) }
        }
    }

    /// Ends a request that is still waiting with nil; a host request's answer, should it come later, is withdrawn.
    private func expire(_ id: UInt64) {
        guard let continuation = pending.removeValue(forKey: id) else { return }
        if id < Self.firstUntaggedID { withdrawn.insert(id) }
        continuation.resume(returning: nil)
    }

    /// Asks for the best host for a job; nil when no scheduler answers in time.
    public func requestHostMessage(choices: [ToolchainChoice], exclude: [String]) async -> Message? {
        let id = nextID
        nextID += 1
        return await request(.hostRequest(HostRequest(id: id, choices: choices, exclude: exclude)), id: id, timeout: .seconds(10))
    }

    /// Sends a request the scheduler answers with a `reply` kind message, in order.
    private func requestUntagged(_ message: Message, reply: MessageKind, timeout: Duration) async -> Message? {
        let id = nextUntaggedID
        nextUntaggedID += 1
        untagged[reply, default: []].append(id)
        let answer = await request(message, id: id, timeout: timeout)
        untagged[reply]?.removeAll { $0 == id }
        return answer
    }

    public func status() async -> String? {
        if case let .status(json)? = await requestUntagged(.statusRequest, reply: .status, timeout: .seconds(5)) { return json }
        return nil
    }

    /// The scheduler's job history of the last `seconds`, as JSON.
    public func history(seconds: UInt64) async -> String? {
        if case let .history(json)? = await requestUntagged(.historyRequest(seconds: seconds), reply: .history, timeout: .seconds(10)) { return json }
        return nil
    }

    public func started(_ grant: HostGrant, source: String) async {
        try? await outbound?.write(.jobStarted(id: grant.id, host: grant.name, source: source))
    }

    /// Opens a monitor connection to the scheduler in use and passes each event's JSON to `body` until the
    /// scheduler closes it or `body` throws; false when no scheduler is connected or it refuses.
    public nonisolated func relayEvents(name: String, _ body: @Sendable (String) async throws -> Void) async throws -> Bool {
        guard let address = await current else { return false }
        let channel = try await connectPeer(host: address.host, port: address.port, security: security, idleTimeout: .seconds(30))
        return try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            try await offerHandshake(&iterator, outbound, hello: Hello(role: .monitor, name: name))
            try await outbound.write(.subscribe)
            return try await withKeepAlives(outbound) {
                while let message = try await nextMessage(&iterator) {
                    guard case let .event(json) = message else {
                        if case let .error(text) = message { logger.warning("the scheduler refused a monitor", metadata: ["reason": "\(text)"]) }
                        return false
                    }
                    try await body(json)
                }
                return true
            }
        }
    }

    public func report(_ report: JobReport) async {
        try? await outbound?.write(.jobDone(report))
    }

    static func loadAverage() -> Double {
        guard let bytes = Posix.readFile("/proc/loadavg"), let first = String(decoding: bytes, as: UTF8.self).split(separator: " ").first else { return 0 }
        return Double(first) ?? 0
    }
}
