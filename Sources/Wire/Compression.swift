import CZstd

/// zstd compression of message payloads.
public enum Zstd {
    /// Largest decompressed payload accepted, as a guard against decompression bombs.
    public static let maximumDecompressedSize = 1 << 30

    /// The level used for message payloads (`jobs.compression_level`). Set once at start-up, before any
    /// connection exists, and only read afterwards.
    nonisolated(unsafe) public static var payloadLevel: Int32 = 1

    public static func compress(_ input: [UInt8], level: Int32 = payloadLevel) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var output = [UInt8](repeating: 0, count: bound)
        let written = input.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in
                ZSTD_compress(dst.baseAddress, bound, src.baseAddress, input.count, level)
            }
        }
        precondition(ZSTD_isError(written) == 0, "zstd compression cannot fail with a bound-sized buffer")
        output.removeSubrange(written...)
        return output
    }

    /// Decompresses one zstd frame of known size, at most `limit` bytes.
    public static func decompress(_ input: [UInt8], limit: Int = maximumDecompressedSize) throws(DecodeError) -> [UInt8] {
        let size = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, input.count) }
        guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN else {
            throw .badValue("not a zstd frame with a known size")
        }
        guard size <= UInt64(max(0, min(limit, maximumDecompressedSize))) else {
            throw .badValue("zstd frame would decompress to \(size) bytes, over the message's budget of \(min(limit, maximumDecompressedSize))")
        }
        if size == 0 { return [] }
        var output = [UInt8](repeating: 0, count: Int(size))
        let written = input.withUnsafeBytes { src in
            output.withUnsafeMutableBytes { dst in
                ZSTD_decompress(dst.baseAddress, Int(size), src.baseAddress, input.count)
            }
        }
        guard ZSTD_isError(written) == 0, written == Int(size) else {
            throw .badValue("corrupt zstd frame")
        }
        return output
    }
}
