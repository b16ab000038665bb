import ClusterKey
import NIOCore
import NIOPosix
import NIOSSL
import Wire

/// Splits a byte stream into protocol messages with a ``FrameReader``; an oversized, malformed or unexpected
/// frame is an error that closes the channel.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Message
    private var reader: FrameReader

    public init(policy: FramePolicy) {
        reader = FrameReader(policy: policy)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: FrameReader.headerBytes) else { return .needMoreData }
        let length = try reader.check(header: header)
        guard buffer.readableBytes >= Frame.headerSize + length else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: Frame.headerSize)
        let body = buffer.readBytes(length: length)!
        context.fireChannelRead(wrapInboundOut(try reader.decode(body: body)))
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
    let compress: Bool
    public init(compress: Bool = true) { self.compress = compress }
    public func encode(data: Message, out: inout ByteBuffer) throws {
        out.writeBytes(Frame.encode(data, compress: compress))
    }
}

/// Closes the channel when no message arrived for the idle timeout (peers send keep-alives while busy).
/// It sits behind the frame decoder, so it counts whole messages: a peer that trickles the bytes of one
/// frame is closed like a silent one.
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

/// Closes the channel unless its first message (the handshake) arrives within `deadline`.
final class HandshakeDeadline: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Message
    typealias InboundOut = Message
    private let deadline: TimeAmount
    private var timer: Scheduled<Void>?

    init(deadline: TimeAmount) { self.deadline = deadline }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: deadline) { loopBound.value.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        timer?.cancel()
        timer = nil
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }
}

/// TLS on a connection: the accepting or the connecting side, with the cluster key's context.
public enum TLSSide: Sendable {
    case accepting(NIOSSLContext)
    case connecting(NIOSSLContext)
}

/// A framed protocol connection.
public typealias MessageChannel = NIOAsyncChannel<Message, Message>

/// How long a new connection has to complete TLS and its hello.
public let handshakeDeadline: TimeAmount = .seconds(10)

/// Installs TLS (when given), the frame codec with its policy and the idle timeout (when given), then what
/// `inner` adds (handlers that see decoded messages before the async side does), and wraps the channel for async use.
public func makeMessageChannel(_ channel: Channel, idleTimeout: TimeAmount?, policy: FramePolicy,
                               tls: TLSSide? = nil,
                               inner: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)? = nil) -> EventLoopFuture<MessageChannel> {
    channel.eventLoop.makeCompletedFuture {
        let ops = channel.pipeline.syncOperations
        switch tls {
        case let .accepting(context)?: try ops.addHandler(NIOSSLServerHandler(context: context))
        case let .connecting(context)?: try ops.addHandler(try NIOSSLClientHandler(context: context, serverHostname: nil))
        case nil: break
        }
        try ops.addHandler(ByteToMessageHandler(FrameDecoder(policy: policy)))
        try ops.addHandler(MessageToByteHandler(FrameEncoder(compress: policy.compressesOutgoing)))
        try ops.addHandler(HandshakeDeadline(deadline: handshakeDeadline))
        if let idleTimeout {
            try ops.addHandler(IdleStateHandler(readTimeout: idleTimeout))
            try ops.addHandler(IdleCloser())
        }
        try inner?(ops)
        return try MessageChannel(wrappingChannelSynchronously: channel)
    }
}

/// Connects to a TCP peer and performs the client side of the handshake.
public func connectPeer(host: String, port: Int, security: TransportSecurity, connectTimeout: TimeAmount = .seconds(5),
                        idleTimeout: TimeAmount? = .seconds(60),
                        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                        from source: SocketAddress? = nil) async throws -> MessageChannel {
    let tls = security.client.map(TLSSide.connecting)
    var bootstrap = ClientBootstrap(group: group)
    if let source { bootstrap = bootstrap.bind(to: source) }
    let channel = try await bootstrap
        .connectTimeout(connectTimeout)
        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
        .connect(host: host, port: port) { makeMessageChannel($0, idleTimeout: idleTimeout, policy: .client, tls: tls) }
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
