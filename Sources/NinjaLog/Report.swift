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
    /// Lane (job slot) for each step, the lowest free one when it started.
    public var lanes: [Int]

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

        // Sweep over start and end events: share each slice among the steps running in it.
        var events: [(time: Int, isStart: Bool, index: Int)] = []
        events.reserveCapacity(steps.count * 2)
        for (i, step) in steps.enumerated() {
            events.append((step.start, true, i))
            events.append((step.end, false, i))
        }
        events.sort { ($0.time, $0.isStart ? 1 : 0) < ($1.time, $1.isStart ? 1 : 0) }
        var weighted = [Double](repeating: 0, count: steps.count)
        var running = Set<Int>()
        var idle: [(Int, Int)] = []
        var lanes = [Int](repeating: 0, count: steps.count)
        var freeLanes: [Int] = []
        var nextLane = 0
        var previous = start
        for event in events {
            if event.time > previous {
                if running.isEmpty {
                    idle.append((previous, event.time))
                } else {
                    let share = Double(event.time - previous) / Double(running.count)
                    for i in running { weighted[i] += share }
                }
                previous = event.time
            }
            if event.isStart {
                running.insert(event.index)
                if let lane = freeLanes.min() {
                    freeLanes.removeAll { $0 == lane }
                    lanes[event.index] = lane
                } else {
                    lanes[event.index] = nextLane
                    nextLane += 1
                }
            } else {
                running.remove(event.index)
                freeLanes.append(lanes[event.index])
            }
        }
        self.weightedMs = weighted
        self.idle = idle
        self.lanes = lanes
    }

    /// The slowest steps, longest first.
    public func slowest(_ count: Int) -> [Step] {
        Array(steps.sorted { $0.duration > $1.duration }.prefix(count))
    }
}
