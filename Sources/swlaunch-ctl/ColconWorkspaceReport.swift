import ArgumentParser
import Foundation
import NinjaLog
import SystemSupport

/// `swlaunch ninjalog WORKSPACE`: a colcon workspace's packages (from `log/latest_build/events.log`) with their
/// ninja builds (`build/<package>/.ninja_log`) as one report.
struct ColconWorkspaceReport {
    let root: String
    let workspace: ColconWorkspace
    let hasEvents: Bool
    /// Each package's build directory, resolved, for the absolute paths swlaunchd's journal records.
    let buildDirectories: [String: String]
    var report: BuildReport { workspace.report }
    var graph: BuildGraph { workspace.graph }

    /// The workspace at `root`, or nil when it does not look like one (no events log and no package build logs).
    static func load(_ root: String) throws -> ColconWorkspaceReport? {
        let fm = FileManager.default
        let events = root + "/log/latest_build/events.log"
        let buildBase = root + "/build"
        var colcon: [ColconPackage] = []
        let hasEvents = fm.fileExists(atPath: events)
        if hasEvents {
            guard let bytes = Posix.readFile(events) else { throw ValidationError("\(events): cannot read") }
            colcon = ColconEventLog.parse(String(decoding: bytes, as: UTF8.self))
        }
        let logged = ((try? fm.contentsOfDirectory(atPath: buildBase)) ?? []).sorted()
            .filter { fm.fileExists(atPath: buildBase + "/" + $0 + "/.ninja_log") }
        for name in logged where !colcon.contains(where: { $0.name == name }) { colcon.append(ColconPackage(name: name)) }
        guard hasEvents || !logged.isEmpty else { return nil }
        var builds: [(colcon: ColconPackage, steps: StepTable?, graph: BuildGraph?)] = []
        var directories: [String: String] = [:]
        for package in colcon {
            let directory = buildBase + "/" + package.name
            directories[package.name] = Posix.realPath(directory) ?? directory
            var steps: StepTable?
            if let bytes = Posix.readFile(directory + "/.ninja_log") {
                do { steps = try NinjaLogCommand.parse(bytes, file: directory + "/.ninja_log").builds.last } catch {
                    printError("warning: \(error)")
                }
            }
            builds.append((package, steps, steps == nil ? nil : NinjaGraph.load(directory)))
        }
        return ColconWorkspaceReport(root: Posix.realPath(root) ?? root, workspace: ColconWorkspace(builds), hasEvents: hasEvents,
                                     buildDirectories: directories)
    }

    /// The absolute path of a combined step name (`package/output`).
    func absolutePath(of name: String) -> String {
        guard let slash = name.firstIndex(of: "/") else { return name }
        let package = String(name[..<slash]), output = name[name.index(after: slash)...]
        if output.hasPrefix("/") { return String(output) }
        return (buildDirectories[package] ?? root + "/build/" + package) + "/" + output
    }

    var wallMs: Int {
        let starts = workspace.packages.compactMap(\.colcon.startMs), ends = workspace.packages.compactMap(\.colcon.endMs)
        guard let first = starts.min(), let last = ends.max() else { return report.wallMs }
        return last - first
    }

    var json: [String: Any] {
        let chain = workspace.packageCriticalPath()
        return [
            "workspace": root, "wall_ms": wallMs, "ninja_wall_ms": report.wallMs,
            "parallelism": wallMs > 0 ? (Double(report.totalMs) / Double(wallMs) * 1000).rounded() / 1000 : 0,
            "critical_path_ms": hasEvents ? chain.ms : (report.criticalPathMs as Any),
            "critical_path": hasEvents ? chain.chain : [],
            "critical_path_is_lower_bound": !hasEvents,
            "packages": workspace.packages.map { package -> [String: Any] in
                var object: [String: Any] = ["name": package.colcon.name, "dependencies": package.colcon.dependencies]
                if let start = package.colcon.startMs { object["start_ms"] = start }
                if let end = package.colcon.endMs { object["end_ms"] = end }
                if let start = package.colcon.startMs, let end = package.colcon.endMs { object["wall_ms"] = end - start }
                if let rc = package.colcon.returnCode { object["rc"] = rc }
                if let report = package.report {
                    object["steps"] = report.steps.count
                    object["ninja_wall_ms"] = report.wallMs
                    object["total_ms"] = report.totalMs
                    object["parallelism"] = (report.parallelism * 1000).rounded() / 1000
                }
                if let critical = package.criticalPath {
                    object["critical_path_ms"] = critical.ms
                    object["critical_path"] = critical.chain
                }
                return object
            },
        ]
    }

    func printText() {
        let sources = hasEvents ? "log/latest_build/events.log and build/*/.ninja_log" : "build/*/.ninja_log (no colcon events log: packages are not placed in time)"
        print("\(root): colcon workspace, \(workspace.packages.count) packages, from \(sources)")
        print(String(format: "wall %.1f s   ninja steps %d   summed %.1f s   parallelism %.2f",
                     Double(wallMs) / 1000, report.steps.count, Double(report.totalMs) / 1000,
                     wallMs > 0 ? Double(report.totalMs) / Double(wallMs) : 0))
        if hasEvents {
            let chain = workspace.packageCriticalPath()
            print(String(format: "critical path %.1f s through packages: ", Double(chain.ms) / 1000) + chain.chain.joined(separator: " -> "))
        }
        print("")
        let rows = workspace.packages.map { p -> [String] in
            let c = p.colcon
            func s(_ ms: Int?) -> String { ms.map { String(format: "%.1f", Double($0) / 1000) } ?? "-" }
            return [c.name, s(c.startMs), s(c.endMs), s(c.startMs.flatMap { start in c.endMs.map { $0 - start } }),
                    c.returnCode.map(String.init) ?? "-", p.report.map { String($0.steps.count) } ?? "-",
                    s(p.report?.totalMs), p.report.map { String(format: "%.2f", $0.parallelism) } ?? "-",
                    s(p.criticalPath?.ms), c.dependencies.joined(separator: ",")]
        }
        print(Table(header: ["PACKAGE", "START", "END", "WALL", "RC", "STEPS", "SUMMED", "PARALLEL", "CRITICAL", "DEPENDS ON"], rows: rows).render())
    }
}
