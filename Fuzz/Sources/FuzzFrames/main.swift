import NIOCore
import NIOEmbedded
import Wire
import WireNIO

/// The frame decoder of every connection: a byte stream cut into arbitrary reads, for each role's policy.
/// It may refuse the stream (an error closes the connection); it must never crash or hang.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let policies: [FramePolicy] = [.launcherServer, .helperServer, .schedulerServer, .client]
    var policy = policies[Int(first) % policies.count]
    policy.decompressionBudget = 16 << 20
    policy.maximumSize = 1 << 20
    let channel = EmbeddedChannel()
    try? channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(policy: policy)))
    var offset = 1
    var cut = Int(first >> 2) + 1
    while offset < bytes.count {
        let end = min(bytes.count, offset + cut)
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes[offset..<end]))
        } catch {
            return 0
        }
        while (try? channel.readInbound(as: Message.self)) != nil {}
        offset = end
        cut = cut * 3 % 97 + 1
    }
    _ = try? channel.finish()
    return 0
}
