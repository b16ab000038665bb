/// Where one build's time went.
public struct BuildReport: Sendable {
    /// The build's steps ordered by start time (then by the order ninja logged them).
    public var steps: StepTable
    public var start: Int
    public var end: Int
    public var wallMs: Int { end - start }
    /// The sum of all steps' durations.
    public var totalMs: Int
    public var parallelism: Double { wallMs > 0 ? Double(totalMs) / Double(wallMs) : 0 }
    /// From the log alone: the longest step, a lower bound of the critical path.
    public var criticalPathMs: Int
    public var criticalPathIsLowerBound: Bool
    /// Each step's duration divided by the number of steps running beside it, summed over its lifetime.
    public var weightedMs: [Double]
    /// Count and summed duration per kind.
    public var kinds: [StepKind: (count: Int, ms: Int)]
    /// Stretches (start, end) inside the build when no step ran.
    public var idle: [(Int, Int)]

    public init(steps: [Step]) { self.init(steps: StepTable(steps)) }

    public init(steps input: StepTable) {
        let steps = input.reordered(Self.order(by: input.starts))
        self.steps = steps
        let starts = steps.starts, ends = steps.ends
        start = starts.min() ?? 0
        end = ends.max() ?? 0
        var total = 0, longest = 0
        var counts = [Int](repeating: 0, count: 4), sums = [Int](repeating: 0, count: 4)
        for i in 0..<starts.count {
            let d = ends[i] - starts[i]
            total += d
            longest = max(longest, d)
            let k = steps.kinds[i].index
            counts[k] += 1
            sums[k] += d
        }
        totalMs = total
        criticalPathMs = longest
        criticalPathIsLowerBound = true
        var kinds: [StepKind: (count: Int, ms: Int)] = [:]
        for kind in StepKind.allCases where counts[kind.index] > 0 { kinds[kind] = (counts[kind.index], sums[kind.index]) }
        self.kinds = kinds

        // Sweep over start and end events, keeping W(t) = the integral of 1 / (steps running) over time;
        // a step's weighted time is W(end) - W(start). Ends sort before starts at the same time.
        // Steps are sorted by start; merge them with the steps sorted by end (ends first on ties).
        let byEnd = Self.order(by: ends)
        var startW = [Double](repeating: 0, count: starts.count)
        var weighted = [Double](repeating: 0, count: starts.count)
        var running = 0
        var w = 0.0
        var idle: [(Int, Int)] = []
        var previous = start
        var nextStart = 0, nextEnd = 0
        while nextEnd < starts.count {
            // A start goes first when it is earlier, or when the end due is of a step not started yet
            // (a step that took 0 ms).
            let isStart = nextStart < starts.count
                && (starts[nextStart] < ends[byEnd[nextEnd]] || byEnd[nextEnd] >= nextStart)
            let index = isStart ? nextStart : byEnd[nextEnd]
            let time = isStart ? starts[index] : ends[index]
            if time > previous {
                if running == 0 { idle.append((previous, time)) } else { w += Double(time - previous) / Double(running) }
                previous = time
            }
            if isStart {
                running += 1
                startW[index] = w
                nextStart += 1
            } else {
                running -= 1
                weighted[index] = w - startW[index]
                nextEnd += 1
            }
        }
        self.weightedMs = weighted
        self.idle = idle
    }

    /// Indices ordered by `keys`, ties kept in index order (a stable sort of packed integers: no closure calls).
    static func order(by keys: [Int]) -> [Int] {
        let count = keys.count
        let low = keys.min() ?? 0, high = keys.max() ?? 0
        guard count < 1 << 24, low >= 0, high < 1 << 39 else {
            return keys.indices.sorted { keys[$0] != keys[$1] ? keys[$0] < keys[$1] : $0 < $1 }
        }
        var packed = [UInt64](repeating: 0, count: count)
        for i in 0..<count { packed[i] = UInt64(keys[i]) << 24 | UInt64(i) }
        packed.sort()
        return packed.map { Int($0 & 0xFF_FFFF) }
    }

    /// Lane (job slot) for each step: the lowest one free when it started.
    public var lanes: [Int] {
        // Steps are in start order already.
        let starts = steps.starts, ends = steps.ends
        var lanes = [Int](repeating: 0, count: starts.count)
        var busy: [(end: Int, lane: Int)] = []   // min-heap by end
        var free: [Int] = []                       // min-heap of lane numbers
        var next = 0
        func push<T>(_ heap: inout [T], _ item: T, _ less: (T, T) -> Bool) {
            heap.append(item)
            var i = heap.count - 1
            while i > 0, less(heap[i], heap[(i - 1) / 2]) { heap.swapAt(i, (i - 1) / 2); i = (i - 1) / 2 }
        }
        func pop<T>(_ heap: inout [T], _ less: (T, T) -> Bool) -> T {
            let top = heap[0]
            heap[0] = heap[heap.count - 1]
            heap.removeLast()
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count, less(heap[l], heap[m]) { m = l }
                if r < heap.count, less(heap[r], heap[m]) { m = r }
                if m == i { return top }
                heap.swapAt(i, m)
                i = m
            }
        }
        for i in 0..<starts.count {
            while let first = busy.first, first.end <= starts[i] {
                push(&free, pop(&busy, { $0.end < $1.end }).lane, <)
            }
            let lane: Int
            if free.isEmpty { lane = next; next += 1 } else { lane = pop(&free, <) }
            lanes[i] = lane
            push(&busy, (ends[i], lane), { $0.end < $1.end })
        }
        return lanes
    }

    /// The slowest steps, longest first.
    public func slowest(_ count: Int) -> [Step] { slowestIndices(count).map { steps[$0] } }

    /// Indices (into ``steps``) of the slowest steps, longest first.
    public func slowestIndices(_ count: Int) -> [Int] {
        var top: [Int] = []
        for i in steps.indices {
            let d = steps.duration(i)
            if top.count == count, let last = top.last, steps.duration(last) >= d { continue }
            let at = top.firstIndex { steps.duration($0) < d } ?? top.count
            top.insert(i, at: at)
            if top.count > count { top.removeLast() }
        }
        return top
    }
}

extension StepKind {
    var index: Int {
        switch self {
        case .compile: 0
        case .link: 1
        case .archive: 2
        case .other: 3
        }
    }
}
