import ArgumentParser
import Config
import Foundation
import Records
import Launch
import NinjaLog
import SystemSupport
import Wire

struct NinjaLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ninjalog",
        abstract: "Where a ninja build's time went: wall and summed time, parallelism, slowest steps, idle stretches.",
        discussion: """
            Reads .ninja_log files of versions 5, 6 and 7 (ninja 1.11 to 1.13) and reports the last build (a new \
            build starts where end times go backwards), or the one --build names (1 is the oldest in the log). \
            A command with several outputs counts once; malformed lines are skipped with a warning naming them. \
            From the log alone the critical path is a lower bound (the longest step). Weighted time divides each \
            step's duration by the number of steps running beside it.
            """)

    @Argument(help: "A build directory or a .ninja_log file.") var path: String = "."
    @Option(help: "Which build of the log to report (1 is the oldest; default: the last).") var build: Int?
    @Flag(help: "Print JSON (steps, wall_ms, total_ms, parallelism, critical_path_ms, recommended_jobs, ...).") var json = false
    @Option(help: "Write a Chrome trace-event JSON file (opens in Perfetto and chrome://tracing).") var trace: String?
    @Option(help: "Write an SVG timeline with one lane per job slot.") var svg: String?
    @Option(help: "How many of the slowest steps to list.") var top: Int = 10
    @Option(help: "Remote slots for compiles (default: the cluster's, from the scheduler; 0 when it cannot be asked).") var slots: Int?
    @Option(help: "Processors of the client for links and the client part of compiles (default: cores; a fraction for a CPU-capped client).")
    var clientCpus: Double?
    @Flag(help: "Store the recommended -j as jobs.count in the project's swlaunch.toml.") var write = false
    @Option(help: ArgumentHelp("swlaunchd's job journal, whose queue times the replay takes out of compile steps.", valueName: "file"))
    var journal: String = SystemSupport.defaultStateDirectory() + "/jobs.jsonl"

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("\(path): no such file or directory")
        }
        if isDirectory.boolValue, !FileManager.default.fileExists(atPath: path + "/.ninja_log"),
           let workspace = try ColconWorkspaceReport.load(path) {
            try runWorkspace(workspace)
            return
        }
        let file = isDirectory.boolValue ? path + "/.ninja_log" : path
        let log = try readLog(file)
        guard !log.builds.isEmpty else { throw ValidationError("\(file): the log has no build steps") }
        let index = (build ?? log.builds.count) - 1
        guard log.builds.indices.contains(index) else {
            throw ValidationError("--build \(build!): the log has \(log.builds.count) build(s)")
        }
        let report = BuildReport(steps: log.builds[index])
        let directory = isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        let absoluteDirectory = Posix.realPath(directory) ?? directory
        var graph = NinjaGraph.load(directory).map { StepGraph(steps: report.steps, graph: $0) }
        let waits = readWaits()
        let journaled = graph?.apply(journal: waits) { name in name.hasPrefix("/") ? name : absoluteDirectory + "/" + name } ?? 0
        // The wrapper's record speaks of the last build only.
        let wrap = index == log.builds.count - 1 ? Self.wrapRecord(in: directory) : nil
        let analysis = analyse(report, graph: graph, journaled: journaled, directory: directory, newFileIn: nil, wrap: wrap,
                               title: "\(file), build \(index + 1) of \(log.builds.count)")
        if json {
            var object = analysis.json
            object.merge(["log": file, "version": log.version, "build": index + 1, "builds": log.builds.count,
                          "recompacted": log.recompacted]) { $1 }
            try printJSON(object)
            return
        }
        print("\(file): ninja log v\(log.version), build \(index + 1) of \(log.builds.count)\(log.recompacted ? " (the log was recompacted by ninja: builds may be mixed)" : "")")
        analysis.printText()
    }

    func readLog(_ file: String) throws -> ParsedLog {
        guard let bytes = Posix.readFile(file) else { throw ValidationError("\(file): cannot read") }
        do { return try Self.parse(bytes, file: file) } catch { throw ValidationError(error.description) }
    }

    /// Parses a log and prints a warning for each line it skipped.
    static func parse(_ bytes: [UInt8], file: String) throws(NinjaLogError) -> ParsedLog {
        let log = try NinjaLogParser.parse(bytes, file: file)
        for warning in log.warnings { printError("warning: " + warning) }
        return log
    }

    /// What `swlaunch ninja`, `cmake --build` or `colcon build` chose for the build in `directory`, if one ran it.
    static func wrapRecord(in directory: String) -> WrapRecord? {
        Posix.readFile(directory + "/" + WrapRecord.fileName).flatMap { try? RecordJSON.decode(WrapRecord.self, from: $0) }
    }

    /// The figures and text shared by one build and a colcon workspace: writes the trace, SVG and jobs.count (in the
    /// closest swlaunch.toml above `directory`, else a new one in `newFileIn`, by default `directory`'s parent).
    func analyse(_ report: BuildReport, graph: StepGraph?, journaled: Int, directory: String, newFileIn: String?, wrap: WrapRecord?,
                 title: String) -> Analysis {
        func save(_ path: String?, _ contents: () -> [UInt8]) {
            if let path, let code = Posix.writeFileAtomically(path, contents()) { printError("error: \(path): cannot write: \(Posix.errorText(code))") }
        }
        save(trace) { TraceEvents.render(report) }
        save(svg) { Array(TimelineSVG(title: title).render(report).utf8) }
        let remote = slots ?? clusterSlots() ?? 0
        let cpus = clientCpus ?? Double(LocalCores.current())
        let recommendation = graph?.recommendJobs(remoteSlots: remote, clientCPUs: cpus, upTo: max(16, 2 * (remote + Int(cpus.rounded(.up)))))
        if write, let recommendation {
            do { try store(jobs: recommendation.recommended, near: directory, newFileIn: newFileIn) } catch {
                printError("error: cannot store jobs.count: \(error)")
            }
        }
        return Analysis(report: report, critical: graph?.criticalPath(), recommendation: recommendation, remote: remote, clientCPUs: cpus,
                        journaled: journaled, journal: journal, top: top, stored: write, wrap: wrap)
    }

    func runWorkspace(_ workspace: ColconWorkspaceReport) throws {
        var graph = StepGraph(steps: workspace.report.steps, graph: workspace.graph)
        let waits = readWaits()
        let journaled = graph.apply(journal: waits) { workspace.absolutePath(of: $0) }
        // jobs.count for a workspace belongs beside it, where `swlaunch colcon build` in the workspace finds it.
        let analysis = analyse(workspace.report, graph: graph, journaled: journaled, directory: path, newFileIn: workspace.root,
                               wrap: Self.wrapRecord(in: workspace.root + "/build"), title: "colcon workspace \(workspace.root)")
        if json {
            var object = analysis.json
            object.merge(workspace.json) { $1 }
            try printJSON(object)
            return
        }
        workspace.printText()
        print("")
        analysis.printText(stepCriticalPathLabel: "longest chain of ninja steps across packages")
    }

    func printJSON(_ object: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Helper wait and compile time by absolute output path, from the journal and its rotated predecessor
    /// (the latest record of an output wins).
    func readWaits() -> [String: StepGraph.JournalRecord] {
        var records: [String: StepGraph.JournalRecord] = [:]
        for file in [journal + ".1", journal] {
            guard let bytes = Posix.readFile(file) else { continue }
            // A line cut short by a crash, or from another version, is skipped.
            for line in bytes.split(separator: UInt8(ascii: "\n")) {
                guard let entry = try? RecordJSON.decode(JournalEntry.self, from: line) else { continue }
                for output in entry.outputs {
                    records[output] = StepGraph.JournalRecord(queueMs: Int(entry.queueUs / 1000), compileMs: Int(entry.compileUs / 1000))
                }
            }
        }
        return records
    }

    /// Remote slots of the hosts that take jobs, as the scheduler sees them.
    func clusterSlots() -> Int? {
        guard let json = try? askDaemon(.statusRequest),
              let status = try? RecordJSON.decode(StatusRecord.self, from: Array(json.utf8)) else { return nil }
        return status.hosts.filter(\.acceptsRemote).reduce(0) { $0 + $1.maxJobs }
    }

    /// Sets `jobs.count` in the closest swlaunch.toml (or a new one in `newFileIn`, by default the build's parent
    /// directory).
    func store(jobs: Int, near directory: String, newFileIn: String?) throws {
        let absolute = (directory as NSString).standardizingPath.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        let file = Configuration.projectFile(from: (absolute as NSString).standardizingPath)
            ?? ((newFileIn ?? (absolute as NSString).deletingLastPathComponent) + "/" + Configuration.projectFileName)
        var lines = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        var table = ""
        var replaced = false
        for (i, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("[") { table = trimmed }
            if (table == "[jobs]" && trimmed.hasPrefix("count ")) || trimmed.hasPrefix("jobs.count ") || trimmed.hasPrefix("count=") {
                if table == "[jobs]" || trimmed.hasPrefix("jobs.count") {
                    lines[i] = (table == "[jobs]" ? "count" : "jobs.count") + " = \(jobs)"
                    replaced = true
                }
            }
        }
        if !replaced {
            if let at = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "[jobs]" }) {
                lines.insert("count = \(jobs)", at: at + 1)
            } else {
                lines += (lines.isEmpty ? [] : [""]) + ["[jobs]", "count = \(jobs)"]
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
    }

}

/// One line on standard error.
func printError(_ line: String) { Posix.writeAll(2, Array((line + "\n").utf8)) }

/// What one report says, as text or JSON.
struct Analysis {
    let report: BuildReport
    let critical: (ms: Int, chain: [Int])?
    let recommendation: (predictions: [(jobs: Int, ms: Int)], recommended: Int)?
    let remote: Int
    let clientCPUs: Double
    let journaled: Int
    let journal: String
    let top: Int
    let stored: Bool
    /// What the wrapper ran the build with.
    let wrap: WrapRecord?

    /// The wrapper's count in words: "-j8 per package, 2 packages at once (swlaunch colcon: ...)".
    var wrapText: String? {
        guard let wrap else { return nil }
        let count = wrap.jobs.map { "-j\($0)" } ?? "-j without a limit"
        return count + (wrap.workers.map { " per package, \($0) package(s) at once" } ?? "") + " (swlaunch \(wrap.tool): \(wrap.reason))"
    }

    var json: [String: Any] {
        [
            "wrapper": wrap.map { w -> Any in
                var object: [String: Any] = ["tool": w.tool, "reason": w.reason, "time": w.time]
                if let jobs = w.jobs { object["jobs"] = jobs }
                if let workers = w.workers { object["workers"] = workers }
                return object
            } ?? NSNull(),
            "steps": report.steps.count, "wall_ms": report.wallMs, "total_ms": report.totalMs,
            "parallelism": (report.parallelism * 1000).rounded() / 1000,
            "critical_path_ms": critical?.ms ?? report.criticalPathMs, "critical_path_is_lower_bound": critical == nil,
            "critical_path": critical.map { $0.chain.map { report.steps.name($0) } } ?? [],
            "recommended_jobs": recommendation.map { $0.recommended as Any } ?? NSNull(),
            "remote_slots": remote, "client_cpus": clientCPUs, "journaled_steps": journaled,
            "predicted_wall_ms": recommendation.map { Dictionary(uniqueKeysWithValues: $0.predictions.map { (String($0.jobs), $0.ms) }) as Any } ?? NSNull(),
            "kinds": Dictionary(uniqueKeysWithValues: report.kinds.map { ($0.key.rawValue, ["count": $0.value.count, "ms": $0.value.ms]) }),
            "idle": report.idle.map { ["start_ms": $0.0, "end_ms": $0.1] },
            "slowest": report.slowestIndices(top).map { ["output": report.steps.name($0), "ms": report.steps.duration($0), "kind": report.steps.kinds[$0].rawValue] },
        ]
    }

    func printText(stepCriticalPathLabel: String = "critical path") {
        print(String(format: "steps %d   wall %.1f s   summed %.1f s   parallelism %.2f",
                     report.steps.count, Double(report.wallMs) / 1000, Double(report.totalMs) / 1000, report.parallelism))
        if let critical {
            print(String(format: "%@ %.1f s (from ninja's graph): ", stepCriticalPathLabel, Double(critical.ms) / 1000)
                  + critical.chain.map { report.steps.name($0) }.joined(separator: " -> "))
        } else {
            print(String(format: "critical path >= %.1f s (the longest step: without the build directory the log alone gives a lower bound)",
                         Double(report.criticalPathMs) / 1000))
        }
        if let recommendation {
            let shown = recommendation.predictions.filter { [1, 2, 4, 8, 16, 24, 32, 48, 64].contains($0.jobs) || $0.jobs == recommendation.recommended }
            print("predicted wall time with \(remote) remote slots and \(String(format: "%g", clientCPUs)) client processors"
                  + (journaled > 0 ? " (\(journaled) compiles split into client part and helper part, without their waits, from \(journal))" : "") + ": "
                  + shown.map { String(format: "-j%d %.1f s", $0.jobs, Double($0.ms) / 1000) }.joined(separator: ", "))
            if let wrapText { print("ran with: " + wrapText) }
            let verdict = wrap?.jobs.map { $0 == recommendation.recommended ? ", the count it ran with" : ", it ran with -j\($0)" } ?? ""
            print("recommended: -j\(recommendation.recommended)" + verdict + (stored ? " (stored as jobs.count)" : ""))
        } else if let wrapText {
            print("ran with: " + wrapText)
        }
        print("\nby kind:")
        for kind in StepKind.allCases {
            guard let k = report.kinds[kind] else { continue }
            print("  " + kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: " %5d steps %9.1f s", k.count, Double(k.ms) / 1000))
        }
        print("\nslowest steps (duration, weighted by parallel steps):")
        for i in report.slowestIndices(top) {
            print(String(format: "  %8.1f s %8.1f s  ", Double(report.steps.duration(i)) / 1000, report.weightedMs[i] / 1000) + report.steps.name(i))
        }
        let idle = report.idle.filter { $0.1 - $0.0 >= 100 }
        if !idle.isEmpty {
            print("\nidle stretches (no ninja step running):")
            for (start, end) in idle { print(String(format: "  %.1f s to %.1f s", Double(start - report.start) / 1000, Double(end - report.start) / 1000)) }
        }
    }
}

enum NinjaGraph {
    /// ninja's graph of the build directory, or nil without one.
    static func load(_ directory: String) -> BuildGraph? {
        guard FileManager.default.fileExists(atPath: directory + "/build.ninja"),
              let ninja = CompilerLocator().locate("ninja") else { return nil }
        let out = NSTemporaryDirectory() + "swlaunch-graph-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        guard Spawn.run(ninja, [ninja, "-C", directory, "-t", "graph"], stdoutPath: out, stderrPath: "/dev/null") == 0,
              let bytes = Posix.readFile(out) else { return nil }
        return BuildGraph(dot: String(decoding: bytes, as: UTF8.self))
    }
}
