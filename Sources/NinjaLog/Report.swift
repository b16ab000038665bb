/// Where one build's time went.
public struct BuildReport: Sendable {
    public var steps: [Step]
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

    public init(steps input: [Step]) {
        let steps = input.sorted { ($0.start, $0.end) < ($1.start, $1.end) }
        self.steps = steps
        start = steps.map(\.start).min() ?? 0
        end = steps.map(\.end).max() ?? 0
        totalMs = steps.reduce(0) { $0 + $1.duration }
        criticalPathMs = steps.map(\.duration).max() ?? 0
        criticalPathIsLowerBound = true
        var kinds: [StepKind: (count: Int, ms: Int)] = [:]
        for step in steps {
            let k = kinds[step.kind] ?? (0, 0)
            kinds[step.kind] = (k.count + 1, k.ms + step.duration)
        }
        self.kinds = kinds

        // Sweep over start and end events, keeping W(t) = the integral of 1 / (steps running) over time;
        // a step's weighted time is W(end) - W(start). Ends sort before starts at the same time.
        var events: [(time: Int, isStart: Bool, index: Int)] = []
        events.reserveCapacity(steps.count * 2)
        for (i, step) in steps.enumerated() {
            events.append((step.start, true, i))
            events.append((step.end, false, i))
        }
        events.sort { ($0.time, $0.isStart ? 1 : 0) < ($1.time, $1.isStart ? 1 : 0) }
        var startW = [Double](repeating: 0, count: steps.count)
        var weighted = [Double](repeating: 0, count: steps.count)
        var running = 0
        var w = 0.0
        var idle: [(Int, Int)] = []
        var previous = start
        for event in events {
            if event.time > previous {
                if running == 0 { idle.append((previous, event.time)) } else { w += Double(event.time - previous) / Double(running) }
                previous = event.time
            }
            if event.isStart {
                running += 1
                startW[event.index] = w
            } else {
                running -= 1
                weighted[event.index] = w - startW[event.index]
            }
        }
        self.weightedMs = weighted
        self.idle = idle
    }

    /// Lane (job slot) for each step: the lowest one free when it started.
    public var lanes: [Int] {
        var order = Array(steps.indices)
        order.sort { (steps[$0].start, steps[$0].end) < (steps[$1].start, steps[$1].end) }
        var lanes = [Int](repeating: 0, count: steps.count)
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
        for i in order {
            while let first = busy.first, first.end <= steps[i].start {
                push(&free, pop(&busy, { $0.end < $1.end }).lane, <)
            }
            let lane: Int
            if free.isEmpty { lane = next; next += 1 } else { lane = pop(&free, <) }
            lanes[i] = lane
            push(&busy, (steps[i].end, lane), { $0.end < $1.end })
        }
        return lanes
    }

    /// The slowest steps, longest first.
    public func slowest(_ count: Int) -> [Step] {
        Array(steps.sorted { $0.duration > $1.duration }.prefix(count))
    }
}
