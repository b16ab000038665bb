import ArgumentParser
import Foundation
import NinjaLog

struct NinjaLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ninjalog",
        abstract: "Where a ninja build's time went: wall and summed time, parallelism, slowest steps, idle stretches.",
        discussion: """
            Reads .ninja_log files of versions 5, 6 and 7 (ninja 1.11 to 1.13) and reports the last build (a new \\
            build starts where end times go backwards), or the one --build names (1 is the oldest in the log). \\
            A command with several outputs counts once; malformed lines are skipped with a warning naming them. \\
            From the log alone the critical path is a lower bound (the longest step). Weighted time divides each \\
            step's duration by the number of steps running beside it.
            """)

    @Argument(help: "A build directory or a .ninja_log file.") var path: String = "."
    @Option(help: "Which build of the log to report (1 is the oldest; default: the last).") var build: Int?
    @Flag(help: "Print JSON (steps, wall_ms, total_ms, parallelism, critical_path_ms, recommended_jobs, ...).") var json = false
    @Option(help: "Write a Chrome trace-event JSON file (opens in Perfetto and chrome://tracing).") var trace: String?
    @Option(help: "How many of the slowest steps to list.") var top: Int = 10

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("\(path): no such file or directory")
        }
        let file = isDirectory.boolValue ? path + "/.ninja_log" : path
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("\(file): cannot read") }
        let log: ParsedLog
        do { log = try NinjaLogParser.parse(Array(data), file: file) } catch { throw ValidationError(error.description) }
        for warning in log.warnings { FileHandle.standardError.write(Data(("warning: " + warning + "\n").utf8)) }
        guard !log.builds.isEmpty else { throw ValidationError("\(file): the log has no build steps") }
        let index = (build ?? log.builds.count) - 1
        guard log.builds.indices.contains(index) else {
            throw ValidationError("--build \(build!): the log has \(log.builds.count) build(s)")
        }
        let report = BuildReport(steps: log.builds[index])
        if let trace { try writeTrace(report, to: trace) }
        if json {
            let object: [String: Any] = [
                "log": file, "version": log.version, "build": index + 1, "builds": log.builds.count, "recompacted": log.recompacted,
                "steps": report.steps.count, "wall_ms": report.wallMs, "total_ms": report.totalMs,
                "parallelism": (report.parallelism * 1000).rounded() / 1000,
                "critical_path_ms": report.criticalPathMs, "critical_path_is_lower_bound": report.criticalPathIsLowerBound,
                "recommended_jobs": NSNull(),
                "kinds": Dictionary(uniqueKeysWithValues: report.kinds.map { ($0.key.rawValue, ["count": $0.value.count, "ms": $0.value.ms]) }),
                "idle": report.idle.map { ["start_ms": $0.0, "end_ms": $0.1] },
                "slowest": report.slowest(top).map { ["output": $0.outputs[0], "ms": $0.duration, "kind": $0.kind.rawValue] },
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(file): ninja log v\(log.version), build \(index + 1) of \(log.builds.count)\(log.recompacted ? " (the log was recompacted by ninja: builds may be mixed)" : "")")
        print(String(format: "steps %d   wall %.1f s   summed %.1f s   parallelism %.2f   critical path >= %.1f s (longest step; the log alone gives a lower bound)",
                     report.steps.count, Double(report.wallMs) / 1000, Double(report.totalMs) / 1000, report.parallelism, Double(report.criticalPathMs) / 1000))
        print("\nby kind:")
        for kind in StepKind.allCases {
            guard let k = report.kinds[kind] else { continue }
            print("  " + kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: " %5d steps %9.1f s", k.count, Double(k.ms) / 1000))
        }
        print("\nslowest steps (duration, weighted by parallel steps):")
        let weights = Dictionary(uniqueKeysWithValues: zip(report.steps.map { $0.outputs[0] }, report.weightedMs))
        for step in report.slowest(top) {
            print(String(format: "  %8.1f s %8.1f s  %@", Double(step.duration) / 1000, (weights[step.outputs[0]] ?? 0) / 1000, step.outputs[0] as NSString))
        }
        let idle = report.idle.filter { $0.1 - $0.0 >= 100 }
        if !idle.isEmpty {
            print("\nidle stretches (nothing running):")
            for (start, end) in idle { print(String(format: "  %.1f s to %.1f s", Double(start - report.start) / 1000, Double(end - report.start) / 1000)) }
        }
    }

    func writeTrace(_ report: BuildReport, to path: String) throws {
        let events: [[String: Any]] = zip(report.steps, report.lanes).map { step, lane in
            ["name": step.outputs[0], "cat": step.kind.rawValue, "ph": "X", "ts": (step.start - report.start) * 1000,
             "dur": step.duration * 1000, "pid": 1, "tid": lane, "args": ["outputs": step.outputs]]
        }
        let data = try JSONSerialization.data(withJSONObject: ["traceEvents": events, "displayTimeUnit": "ms"], options: [.sortedKeys])
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
