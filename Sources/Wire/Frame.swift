/// The wire protocol version spoken by this build. Peers with another version are refused in the handshake.
public let protocolVersion: UInt32 = 10

/// Magic bytes at the start of every ``Hello``.
public let protocolMagic: [UInt8] = Array("SWLN".utf8)

/// Frames are `[UInt32 little-endian length][UInt8 kind][payload]`, where length counts kind and payload.
public enum Frame {
    public static let headerSize = 4
    /// Largest frame accepted by default (objects and shipped sources are compressed inside).
    public static let defaultMaximumSize = 256 << 20
    /// Largest frame accepted before the handshake is through (only a hello or its answer is expected).
    public static let handshakeMaximumSize = 16 << 10
    /// What the compressed fields of one message may expand to, all together.
    public static let defaultDecompressionBudget = 1 << 30

    /// Encodes a message as one complete frame.
    /// The frame of `message`; `compress: false` stores large byte fields as they are (tag 0), for a local socket:
    /// compression belongs to a network link, not to the message.
    public static func encode(_ message: Message, compress: Bool = true) -> [UInt8] {
        var writer = ByteWriter()
        writer.compresses = compress
        writer.write(UInt32(0))
        writer.write(message.kind.rawValue)
        message.encodePayload(into: &writer)
        var bytes = writer.bytes
        let length = UInt32(bytes.count - headerSize)
        withUnsafeBytes(of: length.littleEndian) { raw in
            for i in 0..<4 { bytes[i] = raw[i] }
        }
        return bytes
    }

    /// Reads the length from a frame header, or throws if it exceeds `maximumSize`.
    @inlinable
    public static func length(header: some Collection<UInt8>, maximumSize: Int = defaultMaximumSize) throws(FrameError) -> Int {
        var value: UInt32 = 0
        for (i, b) in header.prefix(4).enumerated() { value |= UInt32(b) << (8 * UInt32(i)) }
        guard value >= 1 else { throw .empty }
        guard Int(value) <= maximumSize else { throw .oversized(Int(value), limit: maximumSize) }
        return Int(value)
    }

    /// Decodes a frame body (kind and payload, without the length header).
    /// Only kinds in `accepting` are decoded (nil: any kind); others are refused without reading their payload.
    public static func decode(body: [UInt8], accepting: Set<MessageKind>? = nil,
                              decompressionBudget: Int = defaultDecompressionBudget) throws(FrameError) -> Message {
        guard let first = body.first else { throw .empty }
        guard let kind = MessageKind(rawValue: first) else { throw .unknownKind(first) }
        if let accepting, !accepting.contains(kind) { throw .unexpected(kind, expected: accepting.map { "\($0)" }.sorted().joined(separator: ", ")) }
        do throws(DecodeError) {
            var reader = ByteReader(body, offset: 1)
            reader.decompressionBudget = decompressionBudget
            let message = try Message.decode(kind: kind, from: &reader)
            guard reader.isAtEnd else { throw DecodeError.badValue("trailing bytes after \(kind)") }
            return message
        } catch {
            throw .malformed(kind, error)
        }
    }
}

/// Why a frame was rejected; the connection that sent it is closed.
public enum FrameError: Error, Sendable, CustomStringConvertible {
    case empty
    case oversized(Int, limit: Int)
    case unknownKind(UInt8)
    case malformed(MessageKind, DecodeError)
    case unexpected(MessageKind, expected: String)
    case closed
    case timeout(String)
    case refused(String)

    public var description: String {
        switch self {
        case .empty: return "empty frame"
        case let .oversized(size, limit): return "frame of \(size) bytes exceeds the limit of \(limit)"
        case let .unknownKind(kind): return "unknown message kind \(kind)"
        case let .malformed(kind, error): return "malformed \(kind) message: \(error)"
        case let .unexpected(kind, expected): return "unexpected \(kind) message, expected \(expected)"
        case .closed: return "connection closed by peer"
        case let .timeout(what): return "timed out \(what)"
        case let .refused(why): return "refused: \(why)"
        }
    }
}

/// What one side of a connection decodes: before the handshake only small frames of the handshake's kinds,
/// afterwards the kinds of its role. Anything else closes the connection without its payload being read,
/// so nothing a peer sends before it is known can make the process allocate more than a handshake frame.
public struct FramePolicy: Sendable {
    /// Kinds the first frame may have.
    public var handshake: Set<MessageKind>
    /// Kinds decoded after the first frame.
    public var kinds: Set<MessageKind>
    public var handshakeMaximumSize = Frame.handshakeMaximumSize
    public var maximumSize = Frame.defaultMaximumSize
    public var decompressionBudget = Frame.defaultDecompressionBudget
    /// Whether this side compresses the large byte fields it sends (not on the launchers' Unix socket).
    public var compressesOutgoing = true

    public init(handshake: Set<MessageKind>, kinds: Set<MessageKind>) {
        self.handshake = handshake
        self.kinds = kinds
    }

    /// A daemon's Unix socket for launchers and tools.
    public static let launcherServer: FramePolicy = {
        var policy = FramePolicy(handshake: [.hello], kinds: [.keepAlive, .acquireLocal, .submit, .statsRequest, .statusRequest,
                                                              .subscribe, .historyRequest])
        // Results go to a launcher on the same machine: compressing them would only cost both sides time.
        policy.compressesOutgoing = false
        return policy
    }()
    /// A helper's port for jobs from peers.
    public static let helperServer = FramePolicy(handshake: [.hello], kinds: [.keepAlive, .compile, .blobs, .environment])
    /// The scheduler's port for daemons and tools.
    public static let schedulerServer = FramePolicy(handshake: [.hello], kinds: [.keepAlive, .register, .heartbeat, .hostRequest, .jobDone, .statusRequest,
                                                                                                     .jobStarted, .subscribe, .historyRequest])
    /// The connecting side: the peer's answer to the hello, then whatever the protocol lets that peer send.
    public static let client = FramePolicy(handshake: [.helloAck, .error], kinds: Set(MessageKind.allCases).subtracting([.hello]))
}

/// Applies a ``FramePolicy`` to a stream of frames, independent of any I/O: check each frame's header first
/// (refusing an unexpected kind or size before its body is buffered), then decode its body.
public struct FrameReader: Sendable {
    /// The bytes ``check(header:)`` needs: the length and the kind.
    public static let headerBytes = Frame.headerSize + 1
    public let policy: FramePolicy
    public private(set) var handshakeDone = false

    public init(policy: FramePolicy) { self.policy = policy }

    var accepted: Set<MessageKind> { handshakeDone ? policy.kinds : policy.handshake }

    /// The body length of the frame that starts with `header` (at least ``headerBytes`` bytes), or why it is refused.
    public func check(header: [UInt8]) throws(FrameError) -> Int {
        let length = try Frame.length(header: header, maximumSize: handshakeDone ? policy.maximumSize : policy.handshakeMaximumSize)
        let kindByte = header[Frame.headerSize]
        if let kind = MessageKind(rawValue: kindByte), !accepted.contains(kind) {
            throw .unexpected(kind, expected: accepted.map { "\($0)" }.sorted().joined(separator: ", "))
        }
        return length
    }

    /// Decodes a complete frame body; the first one completes the handshake.
    public mutating func decode(body: [UInt8]) throws(FrameError) -> Message {
        let message = try Frame.decode(body: body, accepting: accepted, decompressionBudget: policy.decompressionBudget)
        handshakeDone = true
        return message
    }
}
