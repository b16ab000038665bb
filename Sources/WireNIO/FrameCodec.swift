import NIOCore
import NIOPosix
import Wire

/// Splits a byte stream into protocol messages; an oversized or malformed frame is an error that closes the channel.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Message
    public let maximumSize: Int

    public init(maximumSize: Int = Frame.defaultMaximumSize) {
        self.maximumSize = maximumSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: Frame.headerSize) else { return .needMoreData }
        let length = try Frame.length(header: header, maximumSize: maximumSize)
        guard buffer.readableBytes >= Frame.headerSize + length else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: Frame.headerSize)
        let body = buffer.readBytes(length: length)!
        context.fireChannelRead(wrapInboundOut(try Frame.decode(body: body)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 { throw FrameError.malformed(.error, .truncated(needed: 0, at: 0, of: buffer.readableBytes)) }
        return .needMoreData
    }
}

public struct FrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Message
    public init() {}
    public func encode(data: Message, out: inout ByteBuffer) throws {
        out.writeBytes(Frame.encode(data))
    }
}

/// Closes the channel when no message arrived for the idle timeout (peers send keep-alives while busy).
final class IdleCloser: ChannelInboundHandler, Sendable {
    typealias InboundIn = Message
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// A framed protocol connection.
public typealias MessageChannel = NIOAsyncChannel<Message, Message>

/// Installs the frame codec (and an idle timeout when given) and wraps the channel for async use.
public func makeMessageChannel(_ channel: Channel, idleTimeout: TimeAmount?) -> EventLoopFuture<MessageChannel> {
    channel.eventLoop.makeCompletedFuture {
        let ops = channel.pipeline.syncOperations
        if let idleTimeout {
            try ops.addHandler(IdleStateHandler(readTimeout: idleTimeout))
        }
        try ops.addHandler(ByteToMessageHandler(FrameDecoder()))
        try ops.addHandler(MessageToByteHandler(FrameEncoder()))
        if idleTimeout != nil {
            try ops.addHandler(IdleCloser())
        }
        return try MessageChannel(wrappingChannelSynchronously: channel)
    }
}

/// Connects to a TCP peer and performs the client side of the handshake.
public func connectPeer(host: String, port: Int, connectTimeout: TimeAmount = .seconds(5),
                        idleTimeout: TimeAmount? = .seconds(60),
                        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> MessageChannel {
    let channel = try await ClientBootstrap(group: group)
        .connectTimeout(connectTimeout)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .connect(host: host, port: port) { makeMessageChannel($0, idleTimeout: idleTimeout) }
    return channel
}

/// Reads the next message that is not a keep-alive; nil when the peer closed or went silent.
public func nextMessage(_ iterator: inout NIOAsyncChannelInboundStream<Message>.AsyncIterator) async throws -> Message? {
    while let message = try await iterator.next() {
        if message != .keepAlive { return message }
    }
    return nil
}

/// Sends a keep-alive every `interval` until cancelled, so the peer's idle timeout only fires on a dead peer.
public func sendKeepAlives(_ outbound: NIOAsyncChannelOutboundWriter<Message>, every interval: Duration = .seconds(10)) async {
    while !Task.isCancelled {
        do {
            try await Task.sleep(for: interval)
            try await outbound.write(.keepAlive)
        } catch {
            return
        }
    }
}

/// Runs `body` with keep-alives flowing on `outbound` meanwhile.
public func withKeepAlives<T: Sendable>(_ outbound: NIOAsyncChannelOutboundWriter<Message>, _ body: () async throws -> T) async throws -> T {
    let ticker = Task { await sendKeepAlives(outbound) }
    defer { ticker.cancel() }
    return try await body()
}

/// The server side of the handshake: reads the peer's hello and answers it. Returns the hello, or nil
/// after telling the peer why it is refused. Authentication will be checked here.
public func acceptHandshake(_ iterator: inout NIOAsyncChannelInboundStream<Message>.AsyncIterator,
                            _ outbound: NIOAsyncChannelOutboundWriter<Message>, name: String) async throws -> Hello? {
    guard case let .hello(hello)? = try await nextMessage(&iterator), hello.version == protocolVersion else {
        try await outbound.write(.error("expected a hello of protocol version \(protocolVersion)"))
        return nil
    }
    try await outbound.write(.helloAck(HelloAck(name: name)))
    return hello
}

/// The client side of the handshake; throws when the peer refuses it.
public func offerHandshake(_ iterator: inout NIOAsyncChannelInboundStream<Message>.AsyncIterator,
                           _ outbound: NIOAsyncChannelOutboundWriter<Message>, hello: Hello) async throws {
    try await outbound.write(.hello(hello))
    switch try await nextMessage(&iterator) {
    case .helloAck?: return
    case let .error(text)?: throw FrameError.refused(text)
    default: throw FrameError.refused("the peer did not answer the handshake")
    }
}
