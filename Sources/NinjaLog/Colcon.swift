/// One package of a colcon build, from `log/latest_build/events.log`.
public struct ColconPackage: Sendable, Equatable {
    public var name: String
    /// Packages of the workspace it waited for.
    public var dependencies: [String] = []
    /// Seconds since colcon started, in milliseconds.
    public var startMs: Int?
    /// When its build command (`cmake --build`, which runs ninja) started.
    public var buildStartMs: Int?
    public var endMs: Int?
    public var returnCode: Int?

    public init(name: String) { self.name = name }
}

/// Reads colcon's event log: lines `[seconds] (package) Event: {python repr}`.
public enum ColconEventLog {
    public static func parse(_ text: String) -> [ColconPackage] {
        var packages: [String: ColconPackage] = [:]
        var order: [String] = []
        var building = Set<String>()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard line.first == "[", let close = line.firstIndex(of: "]"),
                  let seconds = Double(line[line.index(after: line.startIndex)..<close]) else { continue }
            let rest = line[line.index(after: close)...].drop { $0 == " " }
            guard rest.first == "(", let paren = rest.firstIndex(of: ")") else { continue }
            let name = String(rest[rest.index(after: rest.startIndex)..<paren])
            guard name != "-" else { continue }
            let body = rest[rest.index(after: paren)...].drop { $0 == " " }
            guard let colon = body.firstIndex(of: ":") else { continue }
            let event = body[..<colon]
            let payload = body[body.index(after: colon)...]
            if packages[name] == nil { packages[name] = ColconPackage(name: name); order.append(name) }
            let ms = Int((seconds * 1000).rounded())
            switch event {
            case "JobQueued": packages[name]!.dependencies = dependencyNames(payload)
            case "JobStarted": packages[name]!.startMs = ms
            case "JobProgress": if payload.contains("'progress': 'build'") { building.insert(name) }
            case "Command":
                if building.remove(name) != nil, packages[name]!.buildStartMs == nil { packages[name]!.buildStartMs = ms }
            case "JobEnded":
                packages[name]!.endMs = ms
                if let range = payload.firstRange(of: "'rc': ") {
                    packages[name]!.returnCode = Int(payload[range.upperBound...].prefix { $0 == "-" || $0.isNumber })
                }
            default: break
            }
        }
        return order.map { packages[$0]! }
    }

    /// The keys of `'dependencies': OrderedDict([('a', '/path'), ...])` or `{'a': '/path', ...}`.
    static func dependencyNames(_ payload: Substring) -> [String] {
        guard let range = payload.firstRange(of: "'dependencies': ") else { return [] }
        var text = payload[range.upperBound...]
        var names: [String] = []
        if text.hasPrefix("OrderedDict([") {
            text = text.dropFirst("OrderedDict([".count)
            // ('name', 'path'), ('name2', 'path2')
            while let open = text.firstRange(of: "('") {
                let after = text[open.upperBound...]
                guard let end = after.firstIndex(of: "'") else { break }
                names.append(String(after[..<end]))
                guard let next = after.firstRange(of: ")") else { break }
                text = after[next.upperBound...]
                if text.hasPrefix("])") { break }
            }
        } else if text.hasPrefix("{") {
            // {'name': 'path', 'name2': 'path2'}
            var inside = text.dropFirst()
            while inside.first == "'" {
                let key = inside.dropFirst()
                guard let end = key.firstIndex(of: "'") else { break }
                names.append(String(key[..<end]))
                guard let comma = key[end...].firstRange(of: "', ") else { break }
                inside = key[comma.upperBound...]
            }
        }
        return names
    }
}

/// A colcon workspace's build as one report: every package's last ninja build laid on colcon's time line (at the
/// moment its `cmake --build` started), step names prefixed with the package, and one graph in which a
/// package's steps wait for all steps of the packages it depends on.
public struct ColconWorkspace: Sendable {
    public struct Package: Sendable {
        public var colcon: ColconPackage
        /// The package's own report (nil without a `.ninja_log`).
        public var report: BuildReport?
        /// Its critical path inside the package, when its build directory gives a graph.
        public var criticalPath: (ms: Int, chain: [String])?
    }

    public let packages: [Package]
    public let report: BuildReport
    public let graph: BuildGraph

    /// - Parameter builds: per package, its colcon events, its last build's steps and its ninja graph.
    public init(_ builds: [(colcon: ColconPackage, steps: StepTable?, graph: BuildGraph?)]) {
        var packages: [Package] = []
        var combined: [Step] = []
        var inputs: [String: [String]] = [:]
        var outputsOf: [String: [String]] = [:]
        for (colcon, steps, graph) in builds {
            var package = Package(colcon: colcon)
            if let steps, !steps.isEmpty {
                let report = BuildReport(steps: steps)
                package.report = report
                let prefix = colcon.name + "/"
                // ninja counts from its own start: put that at the build command's start on colcon's clock.
                let offset = (colcon.buildStartMs ?? colcon.startMs ?? 0) - report.start
                for step in report.steps {
                    let outputs = step.outputs.map { prefix + $0 }
                    combined.append(Step(start: step.start + offset, end: step.end + offset, outputs: outputs, hash: step.hash, kind: step.kind))
                    outputsOf[colcon.name, default: []] += outputs
                }
                if let graph {
                    let stepGraph = StepGraph(steps: report.steps, graph: graph)
                    let (ms, chain) = stepGraph.criticalPath()
                    package.criticalPath = (ms, chain.map { report.steps.name($0) })
                    for (file, reads) in graph.inputs { inputs[prefix + file, default: []] += reads.map { prefix + $0 } }
                }
            }
            packages.append(package)
        }
        // Each package's steps wait for everything its dependencies built.
        for package in packages {
            let mine = outputsOf[package.colcon.name] ?? []
            for dependency in package.colcon.dependencies where outputsOf[dependency] != nil {
                let done = "colcon:" + dependency
                inputs[done] = outputsOf[dependency]
                for output in mine { inputs[output, default: []].append(done) }
            }
        }
        self.packages = packages
        report = BuildReport(steps: combined)
        graph = BuildGraph(inputs: inputs)
    }

    /// The longest chain of packages through their dependencies, by colcon's start-to-end time of each.
    public func packageCriticalPath() -> (ms: Int, chain: [String]) {
        let byName = Dictionary(packages.map { ($0.colcon.name, $0.colcon) }, uniquingKeysWith: { a, _ in a })
        var memo: [String: (Int, String?)] = [:]
        func length(_ name: String, _ depth: Int) -> Int {
            if let known = memo[name] { return known.0 }
            guard let package = byName[name], depth < 10_000 else { return 0 }
            var best = 0, via: String?
            for dependency in package.dependencies where byName[dependency] != nil {
                let l = length(dependency, depth + 1)
                if l > best { best = l; via = dependency }
            }
            let own = (package.endMs ?? 0) - (package.startMs ?? package.endMs ?? 0)
            memo[name] = (best + own, via)
            return best + own
        }
        guard let last = packages.map(\.colcon.name).max(by: { length($0, 0) < length($1, 0) }) else { return (0, []) }
        var chain: [String] = []
        var cursor: String? = last
        while let c = cursor { chain.append(c); cursor = memo[c]?.1 }
        return (length(last, 0), chain.reversed())
    }
}
