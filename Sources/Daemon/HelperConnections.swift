import ClusterKey
import NIOCore
import Synchronization
import Wire
import WireNIO

/// One connection to a helper, past its handshake, that carries one job's exchange at a time: a job sent on a kept
/// connection spares the client a TCP connection and a TLS handshake (about a millisecond of its CPU; eight at
/// a Pi's eighth of a core), and the helper the same.
///
/// A task of its own owns the channel (`executeThenClose`) and runs each exchange handed to it; an exchange that
/// throws, or ``close()``, ends the connection. Closing the channel from outside (an attempt's deadline) makes the
/// exchange under way throw.
final class HelperLink: Sendable {
    typealias Inbound = NIOAsyncChannelInboundStream<Message>.AsyncIterator
    typealias Outbound = NIOAsyncChannelOutboundWriter<Message>
    /// One job's messages on the connection, returning when the helper has answered it.
    typealias Exchange = @Sendable (inout Inbound, Outbound) async throws -> AttemptOutcome

    let channel: MessageChannel
    private let requests: AsyncStream<Exchange>.Continuation
    /// The caller of the exchange under way or queued (one at a time): resumed once, by whichever side ends it.
    private let waiting = Mutex<CheckedContinuation<AttemptOutcome, any Error>?>(nil)
    /// When the link was last given back to its pool.
    let idleSince = Mutex(ContinuousClock.now)

    private init(channel: MessageChannel, requests: AsyncStream<Exchange>.Continuation) {
        self.channel = channel
        self.requests = requests
    }

    /// Connects to a helper and completes the handshake; `connected` learns the channel before the handshake (an
    /// attempt's deadline closes it).
    static func open(host: String, port: Int, security: TransportSecurity, hello: Hello,
                     connected: @Sendable (MessageChannel) -> Void = { _ in }) async throws -> HelperLink {
        let channel = try await connectPeer(host: host, port: port, security: security)
        connected(channel)
        let (stream, requests) = AsyncStream.makeStream(of: Exchange.self)
        let link = HelperLink(channel: channel, requests: requests)
        try await withCheckedThrowingContinuation { (ready: CheckedContinuation<Void, any Error>) in
            Task { await link.serve(stream, hello: hello, ready: ready) }
        }
        return link
    }

    private func serve(_ stream: AsyncStream<Exchange>, hello: Hello, ready: CheckedContinuation<Void, any Error>) async {
        var handshakeDone = false
        do {
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                try await offerHandshake(&iterator, outbound, hello: hello)
                handshakeDone = true
                ready.resume()
                for await exchange in stream {
                    do {
                        finish(.success(try await exchange(&iterator, outbound)))
                    } catch {
                        finish(.failure(error))
                        throw error
                    }
                }
            }
        } catch {
            if !handshakeDone { ready.resume(throwing: error) }
        }
        requests.finish()
        finish(.failure(FrameError.refused("the connection to the helper is closed")))
    }

    private func finish(_ outcome: Result<AttemptOutcome, any Error>) {
        waiting.withLock { slot in
            defer { slot = nil }
            return slot
        }?.resume(with: outcome)
    }

    /// Runs `exchange` on the connection; throws what it throws, or when the connection has ended.
    func perform(_ exchange: @escaping Exchange) async throws -> AttemptOutcome {
        try await withCheckedThrowingContinuation { reply in
            waiting.withLock { $0 = reply }
            if case .terminated = requests.yield(exchange) {
                finish(.failure(FrameError.refused("the connection to the helper is closed")))
            }
        }
    }

    var isOpen: Bool { channel.channel.isActive }

    func close() {
        requests.finish()
        channel.channel.close(promise: nil)
    }
}

/// Connections to helpers kept between jobs, by helper address: a job takes an idle one, or opens one, and gives
/// it back once the helper has answered. Idle ones older than ``idleLifetime`` are closed when next looked at, and
/// at most ``maximumIdlePerHelper`` are kept per helper. The lifetime stays 10 s inside the helper's idle timeout
/// (60 s) and spans the pauses of an edit-compile loop: a build that starts after one would otherwise open its
/// connections anew, a TLS handshake each at the client's share of a processor.
final class HelperConnections: Sendable {
    let idleLifetime: Duration
    let maximumIdlePerHelper: Int
    /// Told of each connection opened (for `swlaunch stats`).
    let opened: @Sendable () -> Void
    private let idle = Mutex<[String: [HelperLink]]>([:])

    init(idleLifetime: Duration = .seconds(50), maximumIdlePerHelper: Int = 16, opened: @escaping @Sendable () -> Void = {}) {
        self.idleLifetime = idleLifetime
        self.maximumIdlePerHelper = maximumIdlePerHelper
        self.opened = opened
    }

    /// The most recently used open connection to `helper` ("address:port"), if one is idle.
    func take(_ helper: String) -> HelperLink? {
        let now = ContinuousClock.now
        var stale: [HelperLink] = []
        let link = idle.withLock { idle -> HelperLink? in
            while let link = idle[helper]?.popLast() {
                if link.isOpen, now - link.idleSince.withLock({ $0 }) < idleLifetime { return link }
                stale.append(link)
            }
            return nil
        }
        for link in stale { link.close() }
        return link
    }

    /// Keeps a connection whose job is answered for the next job to `helper`.
    func giveBack(_ link: HelperLink, to helper: String) {
        guard link.isOpen else { return link.close() }
        link.idleSince.withLock { $0 = .now }
        let kept = idle.withLock { idle -> Bool in
            guard idle[helper, default: []].count < maximumIdlePerHelper else { return false }
            idle[helper, default: []].append(link)
            return true
        }
        if !kept { link.close() }
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        let all = idle.withLock { idle in
            defer { idle = [:] }
            return idle.values.flatMap { $0 }
        }
        for link in all { link.close() }
    }
}
