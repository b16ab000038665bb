import Foundation
import SystemSupport
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A TCP socket listening on 127.0.0.1:`port`.
func listenOnLoopback(port: Int, backlog: Int32 = 16) throws -> Int32 {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var on: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    guard withUnsafePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }) == 0,
          listen(listener, backlog) == 0 else {
        close(listener)
        throw TestClusterError("cannot listen on 127.0.0.1:\(port): \(Posix.errorText(errno))")
    }
    return listener
}

/// A hand-driven TCP peer for tests that send what a real daemon never would: frames written byte for byte,
/// replies read frame by frame, with a timeout.
final class RawPeer: @unchecked Sendable {
    let fd: Int32

    init(port: Int, host: String = "127.0.0.1", timeoutSeconds: Int = 15) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { close(fd); throw TestClusterError("cannot connect to \(host):\(port): \(Posix.errorText(errno))") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A peer on an accepted connection.
    init(accepted: Int32, timeoutSeconds: Int = 15) {
        fd = accepted
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Writes all of `bytes` unless the peer has closed (no SIGPIPE).
    func send(bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }

    func send(_ message: Message) { send(bytes: Frame.encode(message)) }

    /// The next message, or nil when the peer closed the connection (or went silent past the timeout).
    func receive() -> Message? {
        guard let header = read(exactly: 4), let length = try? Frame.length(header: header),
              let body = read(exactly: length) else { return nil }
        return try? Frame.decode(body: body)
    }

    /// Whether nothing (no frame, no close) arrives within `milliseconds`.
    func isSilent(forMilliseconds milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) == 0
    }

    /// Whether the peer has closed the connection already (without waiting).
    func isClosedNow() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// Whether the peer closed the connection within the timeout without sending anything more.
    func isClosed() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    private func read(exactly count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + done, count - done, 0) }
            guard n > 0 else { return nil }
            done += n
        }
        return bytes
    }

    /// Sends a job as a client daemon does, answering the helper's requests for an environment and for
    /// contents, and returns the helper's last word: a result, an error, or nil when it closed.
    func run(_ job: RemoteJob, environment: [UInt8]? = nil, blobs: [String: [UInt8]] = [:]) -> Message? {
        send(.hello(Hello(role: .daemon, name: "raw-peer")))
        guard case .helloAck? = receive() else { return nil }
        send(.compile(job))
        while let message = receive() {
            switch message {
            case .keepAlive: continue
            case .needEnvironment:
                guard let environment else { return message }
                send(.environment(id: job.toolchain, archive: environment))
            case let .needBlobs(hashes):
                send(.blobs(hashes.compactMap { hash in blobs[hash].map { Blob(hash: hash, contents: $0) } }))
            default:
                return message
            }
        }
        return nil
    }
}
