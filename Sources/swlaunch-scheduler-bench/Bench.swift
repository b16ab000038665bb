import ArgumentParser
import NIOCore
import NIOPosix
import Synchronization
import SystemSupport
import Wire
import WireNIO

/// Drives a running `swlaunch-scheduler` the way a large cluster does: `--hosts` simulated daemons register and
/// send heartbeats every 2 s (the real rate), and `--clients` client connections each keep `--window` host
/// requests in flight; every grant is followed by the client's `jobStarted` and `jobDone`, as a real job's are.
/// Prints grants per second, the scheduler's CPU seconds (from /proc, with `--scheduler-pid`) and so grants per
/// scheduler CPU second, and grant latency percentiles (request sent to grant read, on this side).
@main
struct SchedulerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "swlaunch-scheduler-bench",
                                                    abstract: "Load a swlaunch scheduler with simulated daemons and clients.")

    @Option(help: "The scheduler's address.") var scheduler = "127.0.0.1:8775"
    @Option(help: "Simulated daemons that take jobs.") var hosts = 1000
    @Option(help: "Slots each simulated daemon announces.") var slots = 8
    @Option(help: "Client connections asking for hosts.") var clients = 32
    @Option(help: "Host requests each client keeps in flight (closed loop).") var window = 4
    @Option(help: "Grants per second asked for in all, spread evenly over the clients (open loop: latency below saturation); 0 for the closed loop.")
    var rate = 0.0
    @Option(help: "Seconds of load before measuring.") var warmup = 3.0
    @Option(help: "Seconds measured.") var seconds = 10.0
    @Option(help: "The scheduler's pid, to read its CPU time from /proc.") var schedulerPid: Int32?

    func run() async throws {
        let (host, port) = try parseHostPort(scheduler, option: "--scheduler")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        let daemons = Mutex<[MessageChannel]>([])
        // The daemons: connect and register all, then heartbeat until the end.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for i in 0..<hosts {
                // Each simulated daemon from an address of its own (127.0.x.y), as hosts of a real cluster are.
                let source = try SocketAddress(ipAddress: "127.0.\(1 + i / 200).\(1 + i % 200)", port: 0)
                let channel = try await connectPeer(host: host, port: port, security: .none, idleTimeout: nil, group: group, from: source)
                daemons.withLock { $0.append(channel) }
                tasks.addTask {
                    try await channel.executeThenClose { inbound, outbound in
                        var iterator = inbound.makeAsyncIterator()
                        try await offerHandshake(&iterator, outbound, hello: Hello(role: .daemon, name: "sim\(i)"))
                        try await outbound.write(.register(HostInfo(name: "sim\(i)", address: "10.\(i / 65536).\(i / 256 % 256).\(i % 256)",
                                                                    port: 8776, maxJobs: UInt32(slots), platform: "x86_64-linux",
                                                                    acceptsRemote: true, toolchains: i % 3 == 0 ? ["native"] : [],
                                                                    note: "", id: hexString((0..<16).map { _ in UInt8(i % 251) }))))
                        let beat = Task {
                            // Heartbeats at the real rate, spread over the 2 s.
                            try await Task.sleep(for: .milliseconds(Int64(i * 2000 / max(1, hosts))))
                            while !Task.isCancelled {
                                try await outbound.write(.heartbeat(running: UInt32(i % (slots + 1)), load: Double(i % 5), toolchains: []))
                                try await Task.sleep(for: .seconds(2))
                            }
                        }
                        defer { beat.cancel() }
                        while try await iterator.next() != nil {}
                    }
                }
            }
            print("\(hosts) simulated daemons registered; \(clients) clients, " + (rate > 0 ? "\(Int(rate)) requests/s in all" : "\(window) requests in flight each"))
            // The clients run on the event loop itself (no task per message), so that the bench's own cost per grant
            // stays well under the scheduler's and the latencies measured are the scheduler's.
            let stop = ManagedAtomic(false)
            var clientChannels: [Channel] = []
            for c in 0..<clients {
                let source = try SocketAddress(ipAddress: "127.1.\(c / 200).\(1 + c % 200)", port: 0)
                let pace = rate > 0 ? rate / Double(clients) : 0, window = window
                let channel = try await ClientBootstrap(group: group)
                    .bind(to: source)
                    .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let ops = channel.pipeline.syncOperations
                            try ops.addHandler(ByteToMessageHandler(FrameDecoder(policy: .client)))
                            try ops.addHandler(MessageToByteHandler(FrameEncoder(compress: true)))
                            try ops.addHandler(SimulatedClient(name: "client\(c)", perSecond: pace, window: window, recorder: recorder, stop: stop))
                        }
                    }
                    .connect(host: host, port: port).get()
                clientChannels.append(channel)
            }
            try await Task.sleep(for: .milliseconds(Int64(warmup * 1000)))
            recorder.reset()
            let cpuBefore = schedulerPid.flatMap(Self.cpuSeconds)
            let begin = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            let elapsed = ContinuousClock.now - begin
            let cpuAfter = schedulerPid.flatMap(Self.cpuSeconds)
            let latencies = recorder.take()
            stop.store(true)
            let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rate = Double(latencies.count) / wall
            var line = "grants: \(latencies.count) in \(String(format2(wall))) s = \(Int(rate))/s"
            if let before = cpuBefore, let after = cpuAfter {
                let cpu = after - before
                line += "; scheduler CPU \(format2(cpu)) s (\(format2(cpu / wall)) cores) = \(Int(Double(latencies.count) / max(cpu, 1e-9))) grants per CPU second"
            }
            print(line)
            let sorted = latencies.sorted()
            func percentile(_ p: Double) -> String {
                guard !sorted.isEmpty else { return "-" }
                let d = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
                return format2(Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000) + " ms"
            }
            print("latency: p50 \(percentile(0.5)), p90 \(percentile(0.9)), p99 \(percentile(0.99)), p99.9 \(percentile(0.999)), max \(percentile(1))")
            for channel in daemons.withLock({ $0 }) { channel.channel.close(promise: nil) }
            for channel in clientChannels { channel.close(promise: nil) }
            tasks.cancelAll()
        }
        try? await group.shutdownGracefully()
    }

    /// A process's user+system CPU seconds, from /proc/PID/stat.
    static func cpuSeconds(_ pid: Int32) -> Double? {
        guard let bytes = Posix.readFile("/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

func format2(_ value: Double) -> String {
    let scaled = (value * 100).rounded()
    let whole = Int(scaled / 100), fraction = Int(abs(scaled).truncatingRemainder(dividingBy: 100))
    return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
}

/// Grant latencies, collected from every client task.
final class Recorder: Sendable {
    private let samples = Mutex<[Duration]>([])
    func record(_ latency: Duration) { samples.withLock { $0.append(latency) } }
    func reset() { samples.withLock { $0.removeAll(keepingCapacity: true) } }
    func take() -> [Duration] { samples.withLock { $0 } }
}

/// A flag set once.
final class ManagedAtomic: Sendable {
    private let value: Mutex<Bool>
    init(_ initial: Bool) { value = Mutex(initial) }
    func load() -> Bool { value.withLock { $0 } }
    func store(_ new: Bool) { value.withLock { $0 = new } }
}

/// One simulated client, on its event loop: after the handshake and its registration it sends host requests
/// (`perSecond` of them at a steady pace whatever the answers do, or else `window` kept in flight), and for every
/// grant records the latency (request written to grant read) and sends the `jobStarted` and `jobDone` a real
/// client sends.
final class SimulatedClient: ChannelInboundHandler {
    typealias InboundIn = Message
    typealias OutboundOut = Message
    static let choices = [ToolchainChoice(platform: "x86_64-linux", toolchain: "native")]

    let name: String
    let perSecond: Double
    let window: Int
    let recorder: Recorder
    let stop: ManagedAtomic
    private var next: UInt64 = 1
    private var sent: [UInt64: ContinuousClock.Instant] = [:]
    private var paceStart = ContinuousClock.now
    private var paced = 0
    private var ticker: RepeatedTask?

    init(name: String, perSecond: Double, window: Int, recorder: Recorder, stop: ManagedAtomic) {
        self.name = name
        self.perSecond = perSecond
        self.window = window
        self.recorder = recorder
        self.stop = stop
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.hello(Hello(role: .daemon, name: name))), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        ticker?.cancel()
    }

    private func ask(_ context: ChannelHandlerContext) {
        sent[next] = .now
        context.write(wrapOutboundOut(.hostRequest(HostRequest(id: next, choices: Self.choices, exclude: []))), promise: nil)
        next += 1
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .helloAck:
            context.write(wrapOutboundOut(.register(HostInfo(name: name, address: "", port: 0, maxJobs: 0, platform: "x86_64-linux",
                                                             acceptsRemote: false, toolchains: [], note: "", id: ""))), promise: nil)
            if perSecond > 0 {
                // Every millisecond, the requests due by then.
                paceStart = .now
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(1), delay: .milliseconds(1)) { _ in
                    self.sendDue(loopBound.value)
                }
            } else {
                for _ in 0..<window { ask(context) }
            }
            context.flush()
        case let .hostGrant(grant):
            guard let start = sent.removeValue(forKey: grant.id) else { return }
            recorder.record(ContinuousClock.now - start)
            let source = "src/file\(grant.id % 997).cpp"
            context.write(wrapOutboundOut(.jobStarted(id: grant.id, host: grant.name, source: source)), promise: nil)
            context.write(wrapOutboundOut(.jobDone(JobReport(id: grant.id, outcome: .remote, host: grant.name, compileMicros: 900_000,
                                                             inputBytes: 2_000_000, source: source,
                                                             timings: JobTimings(queue: 100, preprocess: 0, transfer: 3000, compile: 900_000),
                                                             bytesOut: 40_000, bytesIn: 20_000))), promise: nil)
            if perSecond == 0, !stop.load() { ask(context) }
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    private func sendDue(_ context: ChannelHandlerContext) {
        guard !stop.load() else { return }
        let elapsed = ContinuousClock.now - paceStart
        let due = Int(perSecond * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
        guard due > paced else { return }
        while paced < due {
            ask(context)
            paced += 1
        }
        context.flush()
    }
}
