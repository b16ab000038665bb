import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` until it returns or SIGTERM/SIGINT arrives, which cancels it for a graceful shutdown.
public func runUntilTerminated(_ body: @escaping @Sendable () async throws -> Void) async throws {
    let task = Task { try await body() }
    var sources: [DispatchSourceSignal] = []
    for sig in [SIGTERM, SIGINT] {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { task.cancel() }
        source.resume()
        sources.append(source)
    }
    defer { sources.forEach { $0.cancel() } }
    do {
        try await task.value
    } catch is CancellationError {
    }
}
