import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` until it returns or SIGTERM/SIGINT arrives. With `drain`, the first signal runs it (a daemon
/// stops taking work and lets what runs finish) and then cancels `body`; a second signal cancels at once.
public func runUntilTerminated(drain: (@Sendable () async -> Void)? = nil, _ body: @escaping @Sendable () async throws -> Void) async throws {
    let task = Task { try await body() }
    let signals = SignalCount()
    var sources: [DispatchSourceSignal] = []
    for sig in [SIGTERM, SIGINT] {
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler {
            if signals.next() == 1, let drain {
                Task {
                    await drain()
                    task.cancel()
                }
            } else {
                task.cancel()
            }
        }
        source.resume()
        sources.append(source)
    }
    defer { sources.forEach { $0.cancel() } }
    do {
        try await task.value
    } catch is CancellationError {
    }
}

/// Counts the termination signals received.
private final class SignalCount: Sendable {
    private let count = Atomic<Int>(0)
    func next() -> Int { count.add(1, ordering: .relaxed).newValue }
}
