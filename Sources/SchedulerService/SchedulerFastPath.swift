import NIOCore
import Synchronization
import Wire

/// The messages a registered connection sends with every job, and what the scheduler does with each: host
/// requests (answered with a grant or `noHost`), job starts and reports, heartbeats. The one place they are
/// handled, on the event loop (``SchedulerFastPath``) or, before the connection is registered, in its task.
enum JobTraffic {
    enum Outcome {
        /// Not one of these messages: the connection's task handles it.
        case other
        /// Handled; the answer to send, if any.
        case handled(Message?)
    }

    /// `client` is who sends the connection's jobs; `host` the name the connection registered, if it did. A host
    /// request that waits for a free slot is answered later through `answerLater` (without one, it is queued on the
    /// best host at once).
    static func handle(_ message: Message, client: String, host: String?, state: ClusterState,
                       answerLater: (@Sendable (Message) -> Void)? = nil) -> Outcome {
        switch message {
        case let .hostRequest(request):
            return .handled(state.request(request, client: client, answerLater: answerLater))
        case let .heartbeat(running, load, toolchains):
            if let host { state.heartbeat(host, running: Int(running), load: load, toolchains: toolchains) }
            return .handled(nil)
        case let .jobDone(report):
            state.record(report, client: client)
            return .handled(nil)
        case let .jobStarted(id, host, source):
            state.started(id: id, host: host, source: source, client: client)
            return .handled(nil)
        default:
            return .other
        }
    }
}

/// Which host a scheduler connection registered as, once it has: from then on its job traffic is answered on the
/// event loop. Set by the connection's task, read by its ``SchedulerFastPath``.
final class RegisteredName: Sendable {
    private let name = Mutex<String?>(nil)
    var value: String? { name.withLock { $0 } }
    func set(_ registered: String) { name.withLock { $0 = registered } }
}

/// Answers a registered connection's ``JobTraffic`` on the event loop that decoded it, replies flushed once per read
/// burst; everything else, and everything before registration, goes on to the connection's task. A grant costs a
/// lock and a table pass instead of two hops between the loop, a task and back.
final class SchedulerFastPath: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Message
    typealias InboundOut = Message
    typealias OutboundOut = Message

    let registered = RegisteredName()
    private let state: ClusterState
    private var unflushed = false
    /// Sends the answer to a host request that waited for a slot, or a message the peer did not ask for (a
    /// `giveBack`), from whichever thread has it.
    private(set) var answerLater: (@Sendable (Message) -> Void)?

    init(state: ClusterState) { self.state = state }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        answerLater = { message in
            bound.eventLoop.execute { bound.value.writeAndFlush(NIOAny(message), promise: nil) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let name = registered.value else { return context.fireChannelRead(data) }
        let message = unwrapInboundIn(data)
        if case .keepAlive = message { return }
        switch JobTraffic.handle(message, client: name, host: name, state: state, answerLater: answerLater) {
        case .other:
            context.fireChannelRead(data)
        case let .handled(reply?):
            context.write(wrapOutboundOut(reply), promise: nil)
            unflushed = true
        case .handled(nil):
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }
}
