import NIOCore
import NIOSSL
import Synchronization
import Wire

/// Caps the connections a server holds at once, in total and per peer address, so that one host opening
/// connections in a loop cannot exhaust the process's descriptors or memory.
public final class ConnectionLimiter: Sendable {
    public let total: Int
    public let perPeer: Int
    private let counts = Mutex<(total: Int, byPeer: [String: Int])>((0, [:]))

    public init(total: Int = 512, perPeer: Int = 64) {
        self.total = total
        self.perPeer = perPeer
    }

    /// Counts a new connection; false when it is over a cap, and the caller closes it. An admitted
    /// connection is uncounted when it closes.
    public func admit(_ channel: Channel) -> Bool {
        let peer = channel.remoteAddress?.ipAddress ?? "local"
        let admitted = counts.withLock { counts in
            guard counts.total < total, counts.byPeer[peer, default: 0] < perPeer else { return false }
            counts.total += 1
            counts.byPeer[peer, default: 0] += 1
            return true
        }
        if admitted {
            channel.closeFuture.whenComplete { _ in
                self.counts.withLock { counts in
                    counts.total -= 1
                    let left = counts.byPeer[peer, default: 1] - 1
                    counts.byPeer[peer] = left > 0 ? left : nil
                }
            }
        }
        return admitted
    }

    /// The initializer for a server's accepted channels: admits or closes, then installs the protocol (and what
    /// `inner` adds after it: see ``makeMessageChannel(_:idleTimeout:policy:tls:inner:)``).
    public func initializer(idleTimeout: TimeAmount?, policy: FramePolicy, tls: NIOSSLContext?,
                            inner: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)? = nil)
        -> @Sendable (Channel) -> EventLoopFuture<MessageChannel> {
        { channel in
            let admitted = self.admit(channel)
            return makeMessageChannel(channel, idleTimeout: idleTimeout, policy: policy, tls: tls.map { .accepting($0) }, inner: inner)
                .map { wrapped in
                    if !admitted { channel.close(promise: nil) }
                    return wrapped
                }
        }
    }
}
