import SystemSupport

/// A counting semaphore for job slots, fair to waiters (first come, first served).
public actor SlotPool {
    public let capacity: Int
    public private(set) var inUse = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public func acquire() async {
        if inUse < capacity {
            inUse += 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// ``acquire()``, answering how long it waited for the slot, in microseconds.
    public func acquireTimed() async -> UInt64 {
        let start = Posix.nowMicros()
        await acquire()
        return Posix.nowMicros() - start
    }

    public func release() {
        if waiters.isEmpty {
            inUse = max(0, inUse - 1)
        } else {
            waiters.removeFirst().resume()
        }
    }

    public var waiting: Int { waiters.count }
}
