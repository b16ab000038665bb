import Hummingbird
import Logging
import NIOCore

/// What the dashboard shows, from the scheduler.
public protocol DashboardSource: Sendable {
    /// `swlaunch status --json`'s record.
    func statusJSON() async -> String
    /// The event stream: a snapshot, then each event (JSON, ``ClusterEvent``), until the subscriber goes.
    func events() async -> AsyncStream<String>
    /// The history of the last `seconds`, as JSON (``HistoryRecord``).
    func historyJSON(seconds: Double) async -> String
    /// The Prometheus text exposition.
    func metricsText() async -> String
}

/// The scheduler's read-only HTTP side (`swlaunch-scheduler --http ADDR:PORT`): the dashboard and its assets,
/// `/api/status`, `/api/history?seconds=N`, `/api/events` (server-sent events) and `/metrics`. Every route is a
/// GET that changes nothing; the cluster is changed only over the authenticated protocol.
public struct DashboardServer: Sendable {
    public let host: String
    public let port: Int
    let source: any DashboardSource
    let logger: Logger

    public init(host: String, port: Int, source: any DashboardSource, logger: Logger) {
        self.host = host
        self.port = port
        self.source = source
        self.logger = logger
    }

    /// Serves until cancelled; `bound` learns the port (useful with port 0).
    public func run(bound: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router()
        let source = source
        router.get("/") { _, _ in Self.asset(DashboardAssets.page, type: "text/html; charset=utf-8") }
        router.get("/dashboard.js") { _, _ in Self.asset(DashboardAssets.script, type: "text/javascript; charset=utf-8") }
        router.get("/dashboard.css") { _, _ in Self.asset(DashboardAssets.style, type: "text/css; charset=utf-8") }
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        router.get("/metrics") { _, _ in
            Self.asset(await source.metricsText(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/api/status") { _, _ in Self.asset(await source.statusJSON(), type: "application/json") }
        router.get("/api/history") { request, _ in
            let seconds = request.uri.queryParameters.get("seconds").flatMap(Double.init) ?? 3600
            return Self.asset(await source.historyJSON(seconds: max(1, seconds)), type: "application/json")
        }
        router.get("/api/events") { _, _ in
            let stream = await source.events()
            return Response(status: .ok,
                            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: ResponseBody { writer in
                                for await json in stream {
                                    try await writer.write(ByteBuffer(string: "data: \(json)\n\n"))
                                }
                                try await writer.finish(nil)
                            })
        }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "swlaunch-scheduler"),
                              onServerRunning: { channel in await bound(channel.localAddress?.port ?? 0) }, logger: logger)
        try await app.run()
    }

    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-store"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
