/// The wire protocol version spoken by this build. Peers with another version are refused in the handshake.
public let protocolVersion: UInt32 = 3

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
    public static func encode(_ message: Message) -> [UInt8] {
        var writer = ByteWriter()
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
