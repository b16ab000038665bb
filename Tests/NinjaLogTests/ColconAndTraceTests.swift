import Foundation
import Testing
@testable import NinjaLog

/// A real colcon build (colcon-core 0.x with colcon-cmake, ninja 1.11) of two packages, beta depending on alpha;
/// the environment dumps in events.log are cut out. Figures worked out by hand from the fixture's lines.
@Test func colconEventsLog() throws {
    let text = String(decoding: try Fixture.bytes("colcon-ws/log/latest_build/events.log"), as: UTF8.self)
    let packages = ColconEventLog.parse(text)
    #expect(packages.map(\.name) == ["alpha", "beta"])
    #expect(packages[0].dependencies == [])
    #expect(packages[1].dependencies == ["alpha"])
    // [0.000418] JobStarted, [0.400410] the `cmake --build` command, [1.230950] JobEnded rc 0.
    #expect(packages[0].startMs == 0 && packages[0].buildStartMs == 400 && packages[0].endMs == 1231 && packages[0].returnCode == 0)
    #expect(packages[1].startMs == 1232 && packages[1].buildStartMs == 1583 && packages[1].endMs == 1861 && packages[1].returnCode == 0)
    #expect(ColconEventLog.dependencyNames("{'identifier': 'c', 'dependencies': {'a': '/i/a', 'b': '/i/b'}}") == ["a", "b"])
}

@Test func colconWorkspaceAsOneReport() throws {
    let packages = ColconEventLog.parse(String(decoding: try Fixture.bytes("colcon-ws/log/latest_build/events.log"), as: UTF8.self))
    let alpha = try NinjaLogParser.parse(try Fixture.bytes("colcon-ws/build/alpha/.ninja_log"), file: "a").builds[0]
    let beta = try NinjaLogParser.parse(try Fixture.bytes("colcon-ws/build/beta/.ninja_log"), file: "b").builds[0]
    let alphaGraph = BuildGraph(inputs: ["libalpha.a": ["CMakeFiles/alpha.dir/src/a1.cpp.o", "CMakeFiles/alpha.dir/src/a2.cpp.o"]])
    let betaGraph = BuildGraph(inputs: ["beta": ["CMakeFiles/beta.dir/src/main.cpp.o", "CMakeFiles/beta.dir/src/b.cpp.o"]])
    let workspace = ColconWorkspace([(packages[0], alpha, alphaGraph), (packages[1], beta, betaGraph)])
    let report = workspace.report
    // alpha's ninja started at 400 ms on colcon's clock (its log starts at 1), beta's at 1583 (its log at 0).
    let names = report.steps.indices.map { report.steps.name($0) }
    #expect(names.first == "alpha/CMakeFiles/alpha.dir/src/a2.cpp.o")
    #expect(report.start == 400 && report.end == 1583 + 212)
    #expect(report.totalMs == 560 + 615 + 121 + 35 + 48 + 164)
    #expect(report.idle.map { [$0.0, $0.1] } == [[1136, 1583]])
    #expect(workspace.packageCriticalPath().ms == 1231 + (1861 - 1232))
    #expect(workspace.packageCriticalPath().chain == ["alpha", "beta"])
    #expect(workspace.packages[0].criticalPath?.ms == 615 + 121)
    // Across packages: a1 -> libalpha.a -> (beta waits for alpha) main.o -> beta.
    let graph = StepGraph(steps: report.steps, graph: workspace.graph)
    let (ms, chain) = graph.criticalPath()
    #expect(ms == 615 + 121 + 48 + 164)
    #expect(chain.map { report.steps.name($0) } == ["alpha/CMakeFiles/alpha.dir/src/a1.cpp.o", "alpha/libalpha.a",
                                                    "beta/CMakeFiles/beta.dir/src/main.cpp.o", "beta/beta"])
    #expect(graph.replay(jobs: 1, remoteSlots: 0, clientCPUs: 2) == 1543)
    #expect(graph.replay(jobs: 2, remoteSlots: 0, clientCPUs: 2) == 948)
}

/// Checks the trace against the trace-event format: a JSON object with a `traceEvents` array; complete events
/// ("X") carry a string name, a phase, numeric ts and dur in microseconds, pid and tid; metadata events ("M")
/// name the process.
@Test func traceIsTraceEventJSON() throws {
    let report = BuildReport(steps: try Fixture.log("v5-two-builds.ninja_log").builds[1])
    let bytes = TraceEvents.render(report)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    #expect(object["displayTimeUnit"] as? String == "ms")
    let events = try #require(object["traceEvents"] as? [[String: Any]])
    #expect(events.count == 1 + 5)
    let metadata = events.filter { $0["ph"] as? String == "M" }
    #expect(metadata.count == 1 && metadata[0]["name"] as? String == "process_name")
    let complete = events.filter { $0["ph"] as? String == "X" }
    #expect(complete.count == 5)
    for event in complete {
        #expect(event["name"] is String)
        #expect(event["ts"] is Int && event["dur"] is Int && event["pid"] is Int && event["tid"] is Int)
        #expect((event["ts"] as! Int) >= 0 && (event["dur"] as! Int) >= 0)
        #expect(["compile", "link", "archive", "other"].contains(event["cat"] as? String))
    }
    let gen = try #require(complete.first { $0["name"] as? String == "gen.h" })
    #expect(gen["ts"] as? Int == 106_000 && gen["dur"] as? Int == 207_000)
    #expect((gen["args"] as? [String: Any])?["outputs"] as? [String] == ["gen.h", "gen.c"])
    // Two lanes: a.o beside b.o, then beside gen.
    #expect(Set(complete.map { $0["tid"] as! Int }) == [0, 1])
}

/// Names with quotes, backslashes and control characters stay valid JSON; large times are written in full.
@Test func traceEscapesNamesAndWritesLargeTimes() throws {
    let name = "dir/we\"ird\\na\tme.o"
    let report = BuildReport(steps: [Step(start: 0, end: 1, outputs: ["first.o"], hash: 1),
                                     Step(start: 123_456_789, end: 123_456_790, outputs: [name, "second\u{1}"], hash: 2)])
    let object = try #require(try JSONSerialization.jsonObject(with: Data(TraceEvents.render(report))) as? [String: Any])
    let events = try #require(object["traceEvents"] as? [[String: Any]]).filter { $0["ph"] as? String == "X" }
    #expect(events.map { $0["name"] as? String } == ["first.o", name])
    #expect(events[1]["ts"] as? Int == 123_456_789_000)
    #expect((events[1]["args"] as? [String: Any])?["outputs"] as? [String] == [name, "second\u{1}"])
}
