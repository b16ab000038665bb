/// Coalesces fetches of the same environment: when several jobs need one that is missing, one
/// connection fetches it and the others wait for the outcome instead of transferring it again.
/// A waiter waits at most its own deadline, so a stalled fetch holds no other job past it (that job's client
/// then tries another helper); jobs that need other environments never wait here.
actor EnvironmentFetches {
    /// What a job does about a missing environment.
    enum Claim: Equatable {
        /// Fetch it: no other fetch of it is under way.
        case fetch
        /// Another fetch of it ended, installing it or not.
        case finished(installed: Bool)
        /// Another fetch of it is still under way past the waiter's deadline.
        case gaveUp
    }

    private struct Waiter {
        let number: Int
        let continuation: CheckedContinuation<Claim, Never>
    }
    private var waiting: [String: [Waiter]] = [:]
    private var nextNumber = 0

    func claim(_ id: String, waitAtMost limit: Duration) async -> Claim {
        if waiting[id] == nil {
            waiting[id] = []
            return .fetch
        }
        nextNumber += 1
        let number = nextNumber
        let timer = Task { [weak self] in
            try await Task.sleep(for: limit)
            await self?.giveUp(id, number)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { waiting[id, default: []].append(Waiter(number: number, continuation: $0)) }
    }

    /// Jobs waiting for a fetch of `id` (for tests).
    func waiters(for id: String) -> Int { waiting[id]?.count ?? 0 }

    private func giveUp(_ id: String, _ number: Int) {
        guard let index = waiting[id]?.firstIndex(where: { $0.number == number }) else { return }
        waiting[id]?.remove(at: index).continuation.resume(returning: .gaveUp)
    }

    func finish(_ id: String, installed: Bool) {
        for waiter in waiting.removeValue(forKey: id) ?? [] { waiter.continuation.resume(returning: .finished(installed: installed)) }
    }
}
