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

    public init(steps: StepTable, graph: BuildGraph) {
        self.steps = steps
        durations = steps.indices.map { steps.duration($0) }
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

    /// Replays the build with ``durations``: at most `jobs` steps at once, compiles on `remoteSlots`
    /// helper slots (on local slots when there are none), everything else on `localSlots`. Ready steps start
    /// in the order the measured build started them. Returns the predicted wall time in milliseconds.
    public func replay(jobs: Int, remoteSlots: Int, localSlots: Int) -> Int {
        let starts = steps.starts
        var remaining = predecessors.map(\.count)
        var dependents = [[Int]](repeating: [], count: steps.count)
        for (i, preds) in predecessors.enumerated() { for p in preds { dependents[p].append(i) } }
        var ready = steps.indices.filter { remaining[$0] == 0 }.sorted { starts[$0] < starts[$1] }
        var running: [(end: Int, index: Int, remote: Bool)] = []
        var now = 0, usedRemote = 0, usedLocal = 0, done = 0
        while done < steps.count {
            var started = true
            while started {
                started = false
                for (position, i) in ready.enumerated() where running.count < jobs {
                    let remote = steps.kinds[i] == .compile && remoteSlots > 0
                    if remote ? usedRemote < remoteSlots : usedLocal < localSlots {
                        if remote { usedRemote += 1 } else { usedLocal += 1 }
                        running.append((now + durations[i], i, remote))
                        ready.remove(at: position)
                        started = true
                        break
                    }
                }
            }
            guard let next = running.indices.min(by: { running[$0].end < running[$1].end }) else { break }
            let finished = running.remove(at: next)
            now = finished.end
            if finished.remote { usedRemote -= 1 } else { usedLocal -= 1 }
            done += 1
            for d in dependents[finished.index] {
                remaining[d] -= 1
                if remaining[d] == 0 { ready.append(d) }
            }
            ready.sort { starts[$0] < starts[$1] }
        }
        return now
    }

    /// Predicted wall time for each -j, and the smallest -j within 2% of the best prediction.
    public func recommendJobs(remoteSlots: Int, localSlots: Int, upTo maximum: Int) -> (predictions: [(jobs: Int, ms: Int)], recommended: Int) {
        let predictions = (1...max(1, maximum)).map { j in (jobs: j, ms: replay(jobs: j, remoteSlots: remoteSlots, localSlots: localSlots)) }
        let best = predictions.map(\.ms).min() ?? 0
        let recommended = predictions.first { Double($0.ms) <= Double(best) * 1.02 }?.jobs ?? 1
        return (predictions, recommended)
    }
}

extension StepGraph {
    /// Takes out of each step's model duration the time swlaunch recorded it waiting for a helper (queue time,
    /// keyed by the output's absolute path, which `absolutePath` gives for a step's name).
    /// Returns how many steps had a record.
    @discardableResult
    public mutating func subtractWaits(_ waitsMs: [String: Int], absolutePath: (String) -> String) -> Int {
        var matched = 0
        for i in steps.indices {
            guard let wait = waitsMs[absolutePath(steps.name(i))] else { continue }
            matched += 1
            durations[i] = max(0, durations[i] - wait)
        }
        return matched
    }
}
