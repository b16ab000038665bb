import SystemSupport

/// A counting semaphore for job slots. A freed slot goes to the waiter of the highest priority, the longest waiting
/// of those (first come, first served when priorities are equal): a helper's processor goes to the waiting job with
/// the most input, the one likely to compile longest, so that a build's long compiles do not start last. A waiter
/// passed over ``maximumOvertakes`` times goes next whatever waits, so that a stream of larger jobs does not starve
/// a small one. A waiter that names a tag may be taken out of the line instead
/// (``giveBack(newestTaggedWithAnyOf:)``): a helper's job waiting for a processor that the scheduler moves to an
/// idle helper.
public actor SlotPool {
    public let capacity: Int
    public private(set) var inUse = 0
    private struct Waiter {
        let continuation: CheckedContinuation<Bool, Never>
        /// What ``giveBack(newestTaggedWithAnyOf:)`` matches; nil for a waiter that is never given back.
        let tag: String?
        /// Higher goes first (a helper's job: its input bytes).
        let priority: UInt64
        /// Times a later waiter of a higher priority took a slot first.
        var overtaken = 0
    }
    /// How many times a waiter may be passed over by later ones of a higher priority.
    public static let maximumOvertakes = 2
    private var waiters: [Waiter] = []

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public func acquire() async {
        _ = await acquire(unlessGivenBack: nil)
    }

    /// Waits for a slot, ahead of waiters of a lower `priority`; false when the wait was given back instead (only a
    /// waiter with a `tag` can be).
    public func acquire(unlessGivenBack tag: String?, priority: UInt64 = 0) async -> Bool {
        if inUse < capacity {
            inUse += 1
            return true
        }
        return await withCheckedContinuation { waiters.append(Waiter(continuation: $0, tag: tag, priority: priority)) }
    }

    /// ``acquire()``, answering how long it waited for the slot, in microseconds.
    public func acquireTimed() async -> UInt64 {
        await acquireTimed(unlessGivenBack: nil) ?? 0
    }

    /// ``acquire(unlessGivenBack:priority:)``, answering how long it waited for the slot in microseconds, or nil when given back.
    public func acquireTimed(unlessGivenBack tag: String?, priority: UInt64 = 0) async -> UInt64? {
        let start = Posix.nowMicros()
        guard await acquire(unlessGivenBack: tag, priority: priority) else { return nil }
        return Posix.nowMicros() - start
    }

    public func release() {
        if waiters.isEmpty {
            inUse = max(0, inUse - 1)
        } else {
            // The line is in arrival order, and every waiter passed over counts it: the first waiter has been passed
            // over the most. It goes if that is too often, else the first of the highest priority.
            var next = waiters.startIndex
            if waiters[next].overtaken < Self.maximumOvertakes {
                for index in waiters.indices.dropFirst() where waiters[index].priority > waiters[next].priority { next = index }
            }
            for index in waiters.startIndex..<next { waiters[index].overtaken += 1 }
            waiters.remove(at: next).continuation.resume(returning: true)
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
