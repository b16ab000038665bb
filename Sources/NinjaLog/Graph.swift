/// The build graph as `ninja -t graph` prints it: which files each file is built from.
public struct BuildGraph: Sendable {
    /// For each file, the files its build edge reads (explicit, implicit and order-only inputs).
    public var inputs: [String: [String]] = [:]

    public init(inputs: [String: [String]] = [:]) { self.inputs = inputs }

    /// Parses `ninja -t graph` (Graphviz dot): file nodes carry their path as label, build edges with
    /// several inputs or outputs are ellipse nodes, simple edges are labelled arrows.
    public init(dot: String) {
        var labels: [String: String] = [:]
        var edgeNodes = Set<String>()
        var arrows: [(String, String)] = []
        for raw in dot.split(separator: "\n") {
            let line = raw.trimmingCharacters()
            guard line.hasPrefix("\"") else { continue }
            let parts = line.split(separator: "\"", omittingEmptySubsequences: false)
            // "a" [label="x"...]   or   "a" -> "b" [...]
            guard parts.count >= 3 else { continue }
            let first = String(parts[1])
            let rest = parts[2...].joined(separator: "\"")
            if rest.hasPrefix(" -> "), parts.count >= 4 {
                arrows.append((first, String(parts[3])))
            } else if let range = rest.firstRange(of: "label=\"") {
                let after = rest[range.upperBound...]
                let label = after.prefix { $0 != "\"" }
                labels[first] = String(label)
                if rest.contains("shape=ellipse") { edgeNodes.insert(first) }
            }
        }
        var edgeInputs: [String: [String]] = [:]
        var edgeOutputs: [String: [String]] = [:]
        var direct: [(String, String)] = []
        for (from, to) in arrows {
            if edgeNodes.contains(to) { edgeInputs[to, default: []].append(from) }
            else if edgeNodes.contains(from) { edgeOutputs[from, default: []].append(to) }
            else { direct.append((from, to)) }
        }
        for (edge, outputs) in edgeOutputs {
            let ins = (edgeInputs[edge] ?? []).compactMap { labels[$0] }
            for out in outputs { if let path = labels[out] { inputs[path, default: []] += ins } }
        }
        for (from, to) in direct {
            if let a = labels[from], let b = labels[to] { inputs[b, default: []].append(a) }
        }
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        return s
    }
}

/// Steps of one build with the dependencies between them, from the graph.
public struct StepGraph: Sendable {
    public let steps: StepTable
    /// For each step, the steps it waits for.
    public let predecessors: [[Int]]
    /// How long each step takes in the model: the measured duration, less any time swlaunch recorded the job
    /// waiting for a helper (see ``JobJournal``), which the replay works out again for each -j.
    public var durations: [Int]
    /// For compiles swlaunch recorded: the part of ``durations`` a helper slot was held (the compile on the
    /// helper); the rest (launcher, preprocessing scan, transfer) runs before it without one.
    public var helperMs: [Int?]

    public init(steps: StepTable, graph: BuildGraph) {
        self.steps = steps
        durations = steps.indices.map { steps.duration($0) }
        helperMs = Array(repeating: nil, count: steps.count)
        var producer: [String: Int] = [:]
        for i in steps.indices { for output in steps.outputs(i) { producer[output] = i } }
        var memo: [String: Set<Int>] = [:]
        var visiting = Set<String>()
        // Steps that produce `file` or, through files not in the log (phony targets), what it depends on.
        func producers(of file: String) -> Set<Int> {
            if let i = producer[file] { return [i] }
            if let known = memo[file] { return known }
            guard visiting.insert(file).inserted else { return [] }
            var result = Set<Int>()
            for input in graph.inputs[file] ?? [] { result.formUnion(producers(of: input)) }
            visiting.remove(file)
            memo[file] = result
            return result
        }
        predecessors = steps.indices.map { i in
            var preds = Set<Int>()
            for output in steps.outputs(i) {
                for input in graph.inputs[output] ?? [] { preds.formUnion(producers(of: input)) }
            }
            preds.remove(i)
            return preds.sorted()
        }
    }

    /// The longest chain of steps by measured durations, and its length in milliseconds.
    public func criticalPath() -> (ms: Int, chain: [Int]) {
        var finish = [Int?](repeating: nil, count: steps.count)
        var via = [Int?](repeating: nil, count: steps.count)
        func length(_ i: Int, _ depth: Int) -> Int {
            if let known = finish[i] { return known }
            var best = 0
            if depth < 10_000 {
                for p in predecessors[i] {
                    let l = length(p, depth + 1)
                    if l > best { best = l; via[i] = p }
                }
            }
            finish[i] = best + steps.duration(i)
            return finish[i]!
        }
        var end = 0, last: Int?
        for i in steps.indices {
            let l = length(i, 0)
            if l > end { end = l; last = i }
        }
        var chain: [Int] = []
        var cursor = last
        while let c = cursor { chain.append(c); cursor = via[c] }
        return (end, chain.reversed())
    }

    /// Replays the build with ``durations``: at most `jobs` steps at once (ninja's -j); compiles on `remoteSlots`
    /// helper slots (there are none for a local build); everything that runs on the client (links, archives,
    /// local compiles, and the client part of a compile with a ``helperMs`` part: launcher, preprocessing scan,
    /// transfer) shares `clientCPUs` processors: n such steps at once each progress at min(1, clientCPUs / n).
    /// Their work is the measured time deflated the same way over the measured build, so a client that was
    /// saturated stays saturated. A journaled compile waits for a helper slot after its client part, holding its
    /// job slot. Ready steps start in the order the measured build started them. Returns the wall time in ms.
    public func replay(jobs: Int, remoteSlots: Int, clientCPUs: Double) -> Int {
        let cpus = max(clientCPUs, 0.01)
        let starts = steps.starts
        // What runs on the client, and for how long it ran in the measured build.
        func clientPart(_ i: Int) -> Int? {
            guard steps.kinds[i] == .compile, remoteSlots > 0 else { return durations[i] }
            if let helper = helperMs[i] { return durations[i] - helper }
            return nil
        }
        let work = Self.deflatedWork(intervals: steps.indices.map { i in clientPart(i).map { (starts[i], starts[i] + $0) } }, cpus: cpus)
        var remaining = predecessors.map(\.count)
        var dependents = [[Int]](repeating: [], count: steps.count)
        for (i, preds) in predecessors.enumerated() { for p in preds { dependents[p].append(i) } }
        var ready = steps.indices.filter { remaining[$0] == 0 }.sorted { starts[$0] < starts[$1] }
        var onHelper: [(end: Double, index: Int)] = []
        var onClient: [(left: Double, index: Int)] = []
        var waitingForHelper: [Int] = []
        var now = 0.0, done = 0
        func finish(_ i: Int) {
            done += 1
            for d in dependents[i] {
                remaining[d] -= 1
                if remaining[d] == 0 { ready.append(d) }
            }
        }
        while done < steps.count {
            while onHelper.count < remoteSlots, !waitingForHelper.isEmpty {
                let i = waitingForHelper.removeFirst()
                onHelper.append((now + Double(helperMs[i] ?? durations[i]), i))
            }
            ready.sort { starts[$0] < starts[$1] }
            var position = 0
            while position < ready.count, onHelper.count + onClient.count + waitingForHelper.count < jobs {
                let i = ready[position]
                if let w = work[i] {
                    onClient.append((w, i))
                } else if onHelper.count < remoteSlots {
                    onHelper.append((now + Double(durations[i]), i))
                } else {
                    position += 1
                    continue
                }
                ready.remove(at: position)
            }
            let rate = onClient.isEmpty ? 1 : min(1, cpus / Double(onClient.count))
            let clientNext = onClient.indices.min { onClient[$0].left < onClient[$1].left }
            let helperNext = onHelper.indices.min { onHelper[$0].end < onHelper[$1].end }
            let clientTime = clientNext.map { now + onClient[$0].left / rate } ?? .infinity
            let helperTime = helperNext.map { onHelper[$0].end } ?? .infinity
            guard clientTime.isFinite || helperTime.isFinite else { break }
            let next = min(clientTime, helperTime)
            for k in onClient.indices { onClient[k].left -= (next - now) * rate }
            now = next
            if let h = helperNext, helperTime <= clientTime {
                finish(onHelper.remove(at: h).index)
            } else if let c = clientNext {
                let i = onClient.remove(at: c).index
                if steps.kinds[i] == .compile, remoteSlots > 0, helperMs[i] != nil { waitingForHelper.append(i) } else { finish(i) }
            }
        }
        return Int(now.rounded())
    }

    /// The processor time of each interval when those running at once shared `cpus` processors:
    /// the integral of min(1, cpus / running) over it. Nil intervals stay nil.
    static func deflatedWork(intervals: [(Int, Int)?], cpus: Double) -> [Double?] {
        var events: [(time: Int, start: Bool, index: Int)] = []
        for (i, interval) in intervals.enumerated() {
            guard let (s, e) = interval else { continue }
            events.append((s, true, i))
            events.append((e, false, i))
        }
        // Ends before starts at the same time.
        events.sort { $0.time != $1.time ? $0.time < $1.time : (!$0.start && $1.start) }
        var cumulative = 0.0, previous = events.first?.time ?? 0, running = 0
        var atStart = [Double](repeating: 0, count: intervals.count)
        var work = [Double?](repeating: nil, count: intervals.count)
        for event in events {
            if running > 0 { cumulative += Double(event.time - previous) * min(1, cpus / Double(running)) }
            previous = event.time
            if event.start {
                running += 1
                atStart[event.index] = cumulative
            } else {
                running -= 1
                work[event.index] = cumulative - atStart[event.index]
            }
        }
        return work
    }

    /// Predicted wall time for each -j, and the smallest -j within 2% of the best prediction.
    public func recommendJobs(remoteSlots: Int, clientCPUs: Double, upTo maximum: Int) -> (predictions: [(jobs: Int, ms: Int)], recommended: Int) {
        let predictions = (1...max(1, maximum)).map { j in (jobs: j, ms: replay(jobs: j, remoteSlots: remoteSlots, clientCPUs: clientCPUs)) }
        let best = predictions.map(\.ms).min() ?? 0
        let recommended = predictions.first { Double($0.ms) <= Double(best) * 1.02 }?.jobs ?? 1
        return (predictions, recommended)
    }
}

extension StepGraph {
    /// What swlaunch recorded about one compile, in milliseconds.
    public struct JournalRecord: Sendable, Equatable {
        /// Waiting for a helper slot (on the scheduler and on the helper).
        public var queueMs: Int
        /// Compiling on the helper.
        public var compileMs: Int
        public init(queueMs: Int, compileMs: Int) {
            self.queueMs = queueMs
            self.compileMs = compileMs
        }
    }

    /// Takes each recorded compile's wait for a helper out of its model duration (the replay works the waits
    /// out again for each -j) and notes the part it held a helper slot. Records are keyed by the output's
    /// absolute path, which `absolutePath` gives for a step's name. Returns how many steps had a record.
    @discardableResult
    public mutating func apply(journal: [String: JournalRecord], absolutePath: (String) -> String) -> Int {
        var matched = 0
        for i in steps.indices where steps.kinds[i] == .compile {
            guard let record = journal[absolutePath(steps.name(i))] else { continue }
            matched += 1
            durations[i] = max(0, durations[i] - record.queueMs)
            helperMs[i] = min(durations[i], record.compileMs)
        }
        return matched
    }
}
