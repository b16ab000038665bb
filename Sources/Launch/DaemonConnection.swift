#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Wire
@_exported import SystemSupport

/// A blocking connection to the local daemon over its Unix socket, with a timeout on every read.
public final class DaemonConnection {
    public let fd: Int32
    /// The hello, until it goes out in one write with the first request.
    private var hello: [UInt8]?
    /// Whether the daemon's answer to the hello is still to be read (it comes before the first reply).
    private var handshakeUnread = true
    /// Why the daemon refused the hello, once its answer was read and it was a refusal.
    public private(set) var refusal: String?

    /// Where the local daemon listens: `SWLAUNCH_SOCKET`, else `/run/swlaunch/swlaunchd.sock` for root,
    /// else `$XDG_RUNTIME_DIR/swlaunch/swlaunchd.sock` (or `/tmp/swlaunch-UID/swlaunchd.sock`).
    public static func defaultSocketPath() -> String { DaemonSocket.defaultPath() }

    /// Connects. The hello goes out with the first request, in one write, without waiting for the daemon's answer
    /// (a round trip less per compile); the first ``receive()`` reads that answer before the reply, throwing when
    /// the daemon refused the hello. `inheritable` leaves the descriptor open across exec,
    /// so a compiler the launcher execs keeps the daemon's local slot until it exits.
    public init(path: String, role: PeerRole = .launcher, name: String = "swlaunch", timeoutSeconds: Int = 120, inheritable: Bool = false) throws(FrameError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | (inheritable ? 0 : Int32(SOCK_CLOEXEC.rawValue)), 0)
        guard fd >= 0 else { throw .refused("socket: \(Posix.errorText(errno))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw .refused("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let code = errno
            close(fd)
            throw .refused("cannot connect to \(path): \(Posix.errorText(code))")
        }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
        hello = Frame.encode(.hello(Hello(role: role, name: name)))
    }

    deinit { close(fd) }

    public func send(_ message: Message) throws(FrameError) {
        let bytes = (hello ?? []) + Frame.encode(message)
        hello = nil
        // A send, not a write: a daemon gone is a fallback, not a SIGPIPE that ends the launcher and fails the compile.
        guard Posix.sendAll(fd, bytes) else {
            let code = errno
            // A daemon that refused the hello may have closed already: its answer is still there to read.
            if handshakeUnread, code == EPIPE || code == ECONNRESET { _ = try? receive() }
            throw code == EAGAIN ? .timeout("writing to the daemon") : .closed
        }
    }

    /// Reads the next message that is not a keep-alive (after the answer to the hello, the first time).
    public func receive() throws(FrameError) -> Message {
        if handshakeUnread {
            handshakeUnread = false
            switch try nextMessage() {
            case .helloAck: break
            case let .error(text):
                refusal = text
                throw .refused(text)
            case let other: throw .unexpected(other.kind, expected: "helloAck")
            }
        }
        return try nextMessage()
    }

    private func nextMessage() throws(FrameError) -> Message {
        while true {
            let header = try readExactly(Frame.headerSize)
            let length = try Frame.length(header: header)
            let message = try Frame.decode(body: try readExactly(length))
            if message != .keepAlive { return message }
        }
    }

    private func readExactly(_ count: Int) throws(FrameError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timeout("waiting for the daemon") }
                throw .closed
            }
            if n == 0 { throw .closed }
            offset += n
        }
        return buffer
    }
}
