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
public actor SchedulerLink {
    private let host: String
    private let port: Int
    private let logger: Logger
    private let security: TransportSecurity
    private var outbound: NIOAsyncChannelOutboundWriter<Message>?
    private var pending: [UInt64: CheckedContinuation<Message?, Never>] = [:]
    private var nextID: UInt64 = 1

    public init(host: String, port: Int, security: TransportSecurity, logger: Logger) {
        self.security = security
        self.host = host
        self.port = port
        self.logger = logger
    }

    public var isConnected: Bool { outbound != nil }

    /// Keeps the connection up until cancelled. `info` and `running` are read on every (re)connect and heartbeat.
    public func run(name: String, info: @escaping @Sendable () async -> HostInfo, running: @escaping @Sendable () async -> Int,
                    toolchains: @escaping @Sendable () async -> [String]) async {
        var delay: Duration = .milliseconds(200)
        while !Task.isCancelled {
            do {
                let channel = try await connectPeer(host: host, port: port, security: security, idleTimeout: .seconds(30))
                try await channel.executeThenClose { inbound, outbound in
                    var iterator = inbound.makeAsyncIterator()
                    try await offerHandshake(&iterator, outbound, hello: Hello(role: .daemon, name: name))
                    try await outbound.write(.register(await info()))
                    // A refused registration (a live host of the same name) comes back as an error, then the
                    // scheduler closes: logged in dispatch, and the link tries again with back-off.
                    self.attach(outbound)
                    logger.info("connected to scheduler", metadata: ["scheduler": "\(host):\(port)"])
                    delay = .milliseconds(200)
                    let beat = Task {
                        while !Task.isCancelled {
                            try await outbound.write(.heartbeat(running: UInt32(await running()), load: Self.loadAverage(),
                                                                toolchains: await toolchains()))
                            try await Task.sleep(for: .seconds(2))
                        }
                    }
                    defer { beat.cancel() }
                    while let message = try await nextMessage(&iterator) { self.dispatch(message) }
                }
            } catch {
                logger.debug("scheduler connection failed", metadata: ["error": "\(error)"])
            }
            detach()
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
        detach()
    }

    private func attach(_ writer: NIOAsyncChannelOutboundWriter<Message>) { outbound = writer }

    private func detach() {
        outbound = nil
        for (_, continuation) in pending { continuation.resume(returning: nil) }
        pending = [:]
    }

    private func dispatch(_ message: Message) {
        let id: UInt64
        switch message {
        case let .hostGrant(grant): id = grant.id
        case let .noHost(requestID, _): id = requestID
        case .status: id = 0
        case let .error(text):
            logger.error("the scheduler refused this daemon", metadata: ["reason": "\(text)"])
            return
        default: return
        }
        pending.removeValue(forKey: id)?.resume(returning: message)
    }

    private func request(_ message: Message, id: UInt64, timeout: Duration) async -> Message? {
        guard let outbound else { return nil }
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            await self?.expire(id)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            pending[id] = continuation
            Task { do { try await outbound.write(message) } catch { self.expire(id) } }
        }
    }

    private func expire(_ id: UInt64) { pending.removeValue(forKey: id)?.resume(returning: nil) }

    /// Asks for the best host for a job; nil when no scheduler answers in time.
    public func requestHostMessage(choices: [ToolchainChoice], exclude: [String]) async -> Message? {
        let id = nextID
        nextID += 1
        return await request(.hostRequest(HostRequest(id: id, choices: choices, exclude: exclude)), id: id, timeout: .seconds(10))
    }

    public func status() async -> String? {
        if case let .status(json)? = await request(.statusRequest, id: 0, timeout: .seconds(5)) { return json }
        return nil
    }

    public func report(_ report: JobReport) async {
        try? await outbound?.write(.jobDone(report))
    }

    static func loadAverage() -> Double {
        guard let bytes = Posix.readFile("/proc/loadavg"), let first = String(decoding: bytes, as: UTF8.self).split(separator: " ").first else { return 0 }
        return Double(first) ?? 0
    }
}
