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
        // Sort indices, not the steps themselves: moving a step retains its outputs array.
        let starts = input.map(\.start), stops = input.map(\.end)
        let order = input.indices.sorted { a, b in starts[a] != starts[b] ? starts[a] < starts[b] : stops[a] < stops[b] }
        let steps = order.map { input[$0] }
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
        // Steps are sorted by start; merge them with the steps sorted by end (ends first on ties).
        let ends = steps.map(\.end)
        let byEnd = steps.indices.sorted { ends[$0] < ends[$1] }
        var startW = [Double](repeating: 0, count: steps.count)
        var weighted = [Double](repeating: 0, count: steps.count)
        var running = 0
        var w = 0.0
        var idle: [(Int, Int)] = []
        var previous = start
        var nextStart = 0, nextEnd = 0
        while nextEnd < steps.count {
            // A start goes first when it is earlier, or when the end due is of a step not started yet
            // (a step that took 0 ms).
            let isStart = nextStart < steps.count
                && (steps[nextStart].start < steps[byEnd[nextEnd]].end || byEnd[nextEnd] >= nextStart)
            let index = isStart ? nextStart : byEnd[nextEnd]
            let time = isStart ? steps[index].start : steps[index].end
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
    public func slowest(_ count: Int) -> [Step] { slowestIndices(count).map { steps[$0] } }

    /// Indices (into ``steps``) of the slowest steps, longest first.
    public func slowestIndices(_ count: Int) -> [Int] {
        var top: [Int] = []
        for i in steps.indices {
            if top.count == count, let last = top.last, steps[last].duration >= steps[i].duration { continue }
            let at = top.firstIndex { steps[$0].duration < steps[i].duration } ?? top.count
            top.insert(i, at: at)
            if top.count > count { top.removeLast() }
        }
        return top
    }
}
