import NIOPosix
import SystemSupport

/// Threads of their own for the client's background work (preparing jobs: include scans, warm checks, hashing;
/// writing warm entries), one per processor, run nicer than the rest of the daemon. On a client short of processor
/// time (a Pi, or a share of one) the event loops that send prepared jobs and hand back results go first, so a
/// helper is not kept waiting while the next job is scanned.
final class PreparationPool: Sendable {
    /// The nice value of the pool's threads.
    static let niceness: Int32 = 10
    private let pool: NIOThreadPool

    init(threads: Int) {
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    /// Runs `body` on one of the pool's threads, after the work queued before it.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive {
            Posix.lowerThreadPriority(to: Self.niceness)
            return try body()
        }
    }

    deinit {
        pool.shutdownGracefully { _ in }
    }
}
