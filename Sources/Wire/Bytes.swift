/// Appends protocol values to a byte buffer.
///
/// Integers are little-endian fixed width; strings and byte blobs carry a
/// 32-bit length prefix. The format is private to swlaunch and versioned by
/// ``ProtocolVersion``.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]
    /// Whether large byte fields are zstd-compressed (false on a local socket, where it costs and saves nothing).
    public var compresses = true

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }
    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }
    public mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    public mutating func write(_ value: Int32) { write(UInt32(bitPattern: value)) }
    public mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
    public mutating func write(_ value: Int64) { write(UInt64(bitPattern: value)) }
    public mutating func write(_ value: Double) { write(value.bitPattern) }
    public mutating func write(_ value: String) { write(Array(value.utf8)) }
    public mutating func write(_ value: [UInt8]) {
        write(UInt32(value.count))
        bytes.append(contentsOf: value)
    }
    public mutating func write(_ values: [String]) {
        write(UInt32(values.count))
        for value in values { write(value) }
    }
}

/// Why a message could not be decoded.
public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(needed: Int, at: Int, of: Int)
    case tooMany(what: String, count: Int)
    case badValue(String)

    public var description: String {
        switch self {
        case let .truncated(needed, at, total):
            return "truncated message: needed \(needed) bytes at offset \(at) of \(total)"
        case let .tooMany(what, count): return "implausible \(what) count \(count)"
        case let .badValue(why): return "bad value: \(why)"
        }
    }
}

/// Reads values written by ``ByteWriter``, checking every length against the input.
public struct ByteReader {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    /// Bytes that compressed fields of this message may still expand to (one budget per message, so a
    /// small frame of many compressed fields cannot expand to gigabytes).
    public var decompressionBudget: Int = Frame.defaultDecompressionBudget

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var isAtEnd: Bool { offset == bytes.count }

    private mutating func take(_ count: Int) throws(DecodeError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.count - offset >= count else {
            throw .truncated(needed: count, at: offset, of: bytes.count)
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    public mutating func readUInt8() throws(DecodeError) -> UInt8 { try take(1).first! }
    public mutating func readBool() throws(DecodeError) -> Bool { try readUInt8() != 0 }
    public mutating func readUInt32() throws(DecodeError) -> UInt32 {
        var value: UInt32 = 0
        for (i, b) in try take(4).enumerated() { value |= UInt32(b) << (8 * UInt32(i)) }
        return value
    }
    public mutating func readInt32() throws(DecodeError) -> Int32 { Int32(bitPattern: try readUInt32()) }
    public mutating func readUInt64() throws(DecodeError) -> UInt64 {
        var value: UInt64 = 0
        for (i, b) in try take(8).enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
        return value
    }
    public mutating func readInt64() throws(DecodeError) -> Int64 { Int64(bitPattern: try readUInt64()) }
    public mutating func readDouble() throws(DecodeError) -> Double { Double(bitPattern: try readUInt64()) }
    public mutating func readBytes() throws(DecodeError) -> [UInt8] {
        let count = Int(try readUInt32())
        return Array(try take(count))
    }
    public mutating func readString() throws(DecodeError) -> String {
        String(decoding: try readBytes(), as: UTF8.self)
    }
    public mutating func readStrings() throws(DecodeError) -> [String] {
        let count = Int(try readUInt32())
        guard count <= bytes.count - offset else { throw .tooMany(what: "string", count: count) }
        var values: [String] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try readString()) }
        return values
    }
    /// Reads a count for a list whose items take at least `minimumItemSize` bytes each.
    public mutating func readCount(_ what: String, minimumItemSize: Int = 1) throws(DecodeError) -> Int {
        let count = Int(try readUInt32())
        guard count * max(minimumItemSize, 1) <= bytes.count - offset else {
            throw .tooMany(what: what, count: count)
        }
        return count
    }
}
