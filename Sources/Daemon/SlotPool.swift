import SystemSupport

/// A counting semaphore for job slots, fair to waiters (first come, first served). A waiter that names a tag may be
/// taken out of the line instead (``giveBack(newestTaggedWithAnyOf:)``): a helper's job waiting for a processor that
/// the scheduler moves to an idle helper.
public actor SlotPool {
    public let capacity: Int
    public private(set) var inUse = 0
    private struct Waiter {
        let continuation: CheckedContinuation<Bool, Never>
        /// What ``giveBack(newestTaggedWithAnyOf:)`` matches; nil for a waiter that is never given back.
        let tag: String?
    }
    private var waiters: [Waiter] = []

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public func acquire() async {
        _ = await acquire(unlessGivenBack: nil)
    }

    /// Waits for a slot; false when the wait was given back instead (only a waiter with a `tag` can be).
    public func acquire(unlessGivenBack tag: String?) async -> Bool {
        if inUse < capacity {
            inUse += 1
            return true
        }
        return await withCheckedContinuation { waiters.append(Waiter(continuation: $0, tag: tag)) }
    }

    /// ``acquire()``, answering how long it waited for the slot, in microseconds.
    public func acquireTimed() async -> UInt64 {
        await acquireTimed(unlessGivenBack: nil) ?? 0
    }

    /// ``acquire(unlessGivenBack:)``, answering how long it waited for the slot in microseconds, or nil when given back.
    public func acquireTimed(unlessGivenBack tag: String?) async -> UInt64? {
        let start = Posix.nowMicros()
        guard await acquire(unlessGivenBack: tag) else { return nil }
        return Posix.nowMicros() - start
    }

    public func release() {
        if waiters.isEmpty {
            inUse = max(0, inUse - 1)
        } else {
            waiters.removeFirst().continuation.resume(returning: true)
        }
    }

    /// Takes the newest waiter whose tag is one of `tags` out of the line (its acquire answers false); whether there
    /// was one.
    public func giveBack(newestTaggedWithAnyOf tags: Set<String>) -> Bool {
        guard let index = waiters.lastIndex(where: { $0.tag.map(tags.contains) ?? false }) else { return false }
        waiters.remove(at: index).continuation.resume(returning: false)
        return true
    }

    public var waiting: Int { waiters.count }
}
