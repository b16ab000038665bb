import Wire

/// The frame reader of every connection (what the NIO frame decoder runs): a byte stream for each role's policy,
/// cut into frames as they arrive. It may refuse the stream (an error closes the connection); it must never
/// crash, and never accept more than the policy allows.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let policies: [FramePolicy] = [.launcherServer, .helperServer, .schedulerServer, .client]
    var policy = policies[Int(first) % policies.count]
    policy.decompressionBudget = 16 << 20
    policy.maximumSize = 1 << 20
    var reader = FrameReader(policy: policy)
    var offset = 1
    while bytes.count - offset >= FrameReader.headerBytes {
        let wasHandshake = !reader.handshakeDone
        guard let length = try? reader.check(header: bytes[offset..<(offset + FrameReader.headerBytes)]) else { return 0 }
        precondition(length <= (wasHandshake ? policy.handshakeMaximumSize : policy.maximumSize), "a frame over the policy's size was accepted")
        guard bytes.count - offset - Frame.headerSize >= length else { return 0 }
        let body = Array(bytes[(offset + Frame.headerSize)..<(offset + Frame.headerSize + length)])
        guard let message = try? reader.decode(body: body) else { return 0 }
        precondition((wasHandshake ? policy.handshake : policy.kinds).contains(message.kind), "\(message.kind) was decoded against the policy")
        offset += Frame.headerSize + length
    }
    return 0
}
