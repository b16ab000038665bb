import Logging
import ServiceLifecycle

/// A long-running server as a swift-service-lifecycle `Service`: `serve` runs until cancelled; when graceful
/// shutdown begins, `drain` runs (the server stops taking work and lets what runs finish), then `serve` is
/// cancelled and the service returns.
public struct DrainingService: Service {
    let serve: @Sendable () async throws -> Void
    let drain: @Sendable () async -> Void

    public init(serve: @escaping @Sendable () async throws -> Void, drain: @escaping @Sendable () async -> Void = {}) {
        self.serve = serve
        self.drain = drain
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await serve() }
            group.addTask {
                try await gracefulShutdown()
                await drain()
            }
            // Whichever ends first (the server on its own, or the drain) ends the other.
            try await group.next()
            group.cancelAll()
        }
    }
}

/// Runs `serve` in a service group until it returns or a signal stops it: SIGTERM drains first (at most
/// `drainLimit`, then cancels), SIGINT cancels at once, also during a drain.
public func runUntilTerminated(_ name: String, logger: Logger, drainLimit: Duration = .seconds(310), drain: @escaping @Sendable () async -> Void = {},
                               _ serve: @escaping @Sendable () async throws -> Void) async throws {
    var configuration = ServiceGroupConfiguration(
        services: [.init(service: DrainingService(serve: serve, drain: drain), serviceName: name)],
        gracefulShutdownSignals: [.sigterm], cancellationSignals: [.sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = drainLimit
    do {
        try await ServiceGroup(configuration: configuration).run()
    } catch is CancellationError {
        // Stopped by SIGINT (or a drain past its limit): a normal end.
    }
}
