import NIOCore
import NIOEmbedded
import Testing
@testable import Wire
@testable import WireNIO

/// The frame decoder on an in-memory channel: what a peer can make a process decode and allocate before
/// and after its handshake.
@Suite struct FramePolicyTests {
    func channel(_ policy: FramePolicy) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(policy: policy)))
        return channel
    }

    func header(length: UInt32, kind: MessageKind) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(length, endianness: .little)
        buffer.writeInteger(kind.rawValue)
        return buffer
    }

    @Test func aFirstFrameOfAnotherKindIsRefusedFromItsHeader() throws {
        let channel = try channel(.helperServer)
        // A 200 MB frame of blobs announced before any hello: refused from its first five bytes, nothing buffered.
        #expect(throws: FrameError.self) { try channel.writeInbound(header(length: 200 << 20, kind: .blobs)) }
    }

    @Test func aLargeFirstFrameIsRefusedEvenOfTheRightKind() throws {
        let channel = try channel(.helperServer)
        #expect(throws: FrameError.self) { try channel.writeInbound(header(length: UInt32(Frame.handshakeMaximumSize + 1), kind: .hello)) }
    }

    @Test func aHelloSplitAcrossReadsIsDecodedThenTheRolesKindsApply() throws {
        let channel = try channel(.launcherServer)
        let bytes = Frame.encode(.hello(Hello(role: .launcher, name: "x")))
        for byte in bytes { try channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(try channel.readInbound(as: Message.self) == .hello(Hello(role: .launcher, name: "x")))
        try channel.writeInbound(ByteBuffer(bytes: Frame.encode(.statsRequest(reset: false))))
        #expect(try channel.readInbound(as: Message.self) == .statsRequest(reset: false))
        // A launcher cannot send what only peers send.
        #expect(throws: FrameError.self) { try channel.writeInbound(ByteBuffer(bytes: Frame.encode(.blobs([])))) }
    }

    @Test func bytesLeftAtTheEndAreAnError() throws {
        let channel = try channel(.launcherServer)
        let bytes = Frame.encode(.hello(Hello(role: .launcher, name: "x")))
        try channel.writeInbound(ByteBuffer(bytes: bytes.dropLast()))
        #expect(throws: FrameError.self) { try channel.finish() }
    }

    /// A frame of many small zstd fields that each claim a large size: one budget for the whole message.
    @Test func compressedFieldsShareOneBudget() throws {
        let field = Zstd.compress([UInt8](repeating: 0, count: 4 << 20))  // 4 MiB of zeros in a few hundred bytes
        var writer = ByteWriter()
        writer.write(UInt32(0)); writer.write(MessageKind.blobs.rawValue)
        writer.write(UInt32(64))
        for i in 0..<64 {
            writer.write(String(repeating: "0", count: 63) + String(i % 10))
            writer.write(UInt8(1)); writer.write(field)
        }
        var bytes = writer.bytes
        let length = UInt32(bytes.count - 4)
        for i in 0..<4 { bytes[i] = UInt8((length >> (8 * UInt32(i))) & 0xff) }
        #expect(bytes.count < 64 << 10)
        var policy = FramePolicy.helperServer
        policy.decompressionBudget = 32 << 20
        let channel = try channel(policy)
        try channel.writeInbound(ByteBuffer(bytes: Frame.encode(.hello(Hello(role: .daemon, name: "peer")))))
        _ = try channel.readInbound(as: Message.self)
        // 64 fields x 4 MiB = 256 MiB against a budget of 32 MiB: refused at the ninth field.
        #expect(throws: FrameError.self) { try channel.writeInbound(ByteBuffer(bytes: bytes)) }
    }
}
