import Foundation
import SystemSupport
import Testing
@testable import NinjaLog

let handMade = """
# ninja log v5
0\t50\t0\tb.o\th2
0\t100\t0\ta.o\th1
60\t200\t0\tlib.a\th3
250\t300\t0\tapp\th4
250\t300\t0\tapp.map\th4
0\t10\t0\ta.o\th1
5\t40\t0\tb.o\th2
garbage line

"""

@Test func splitsBuildsMergesOutputsAndSkipsBadLines() throws {
    let log = try NinjaLogParser.parse(Array(handMade.utf8), file: "x")
    #expect(log.version == 5)
    #expect(log.builds.count == 2)
    #expect(log.builds[0].map(\.outputs) == [["b.o"], ["a.o"], ["lib.a"], ["app", "app.map"]])
    #expect(log.builds[1].map(\.outputs) == [["a.o"], ["b.o"]])
    #expect(log.warnings == ["x:9: skipped a malformed line"])
    #expect(!log.recompacted)
}

/// The answers below were worked out by hand from the log above (ninja writes lines as steps finish).
@Test func reportOfTheFirstBuild() throws {
    let report = BuildReport(steps: try NinjaLogParser.parse(Array(handMade.utf8), file: "x").builds[0])
    #expect(report.wallMs == 300)
    #expect(report.totalMs == 340)
    #expect(abs(report.parallelism - 340.0 / 300.0) < 1e-9)
    #expect(report.criticalPathMs == 140)
    #expect(report.idle.map { [$0.0, $0.1] } == [[200, 250]])
    let weighted = Dictionary(uniqueKeysWithValues: zip(report.steps.map { $0.outputs[0] }, report.weightedMs))
    #expect(weighted == ["a.o": 55, "b.o": 25, "lib.a": 120, "app": 50])
    #expect(report.kinds[.compile]! == (2, 150))
    #expect(report.kinds[.archive]! == (1, 140))
    #expect(report.kinds[.link]! == (1, 50))
    #expect(Dictionary(uniqueKeysWithValues: zip(report.steps.map { $0.outputs[0] }, report.lanes)) == ["b.o": 0, "a.o": 1, "lib.a": 0, "app": 0])
    #expect(report.slowest(2).map { $0.outputs[0] } == ["lib.a", "a.o"])
}

@Test(arguments: [6, 7])
func laterVersionsHaveTheSameLines(_ version: Int) throws {
    let text = handMade.replacingOccurrences(of: "# ninja log v5", with: "# ninja log v\(version)")
    let log = try NinjaLogParser.parse(Array(text.utf8), file: "x")
    #expect(log.version == version)
    #expect(log.builds.count == 2)
}

@Test(arguments: [("", "x: not a ninja log (no '# ninja log vN' header)"),
                  ("# ninja log v4\n", "x: ninja log version 4 is not supported (5 to 7 are)")])
func badHeaders(_ text: String, _ message: String) {
    #expect(throws: NinjaLogError(file: "x", message: String(message.dropFirst(3)))) {
        try NinjaLogParser.parse(Array(text.utf8), file: "x")
    }
}

@Test func recompactedLogsAreRecognised() throws {
    // A recompacted log lists each output's latest entry in no time order.
    var text = "# ninja log v5\n"
    for i in 0..<40 { text += "\((i * 7919) % 97)\t\((i * 7919) % 97 + 5)\t0\tf\(i).o\th\(i)\n" }
    #expect(try NinjaLogParser.parse(Array(text.utf8), file: "x").recompacted)
}

@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ninja"), "ninja is not installed"))
func logWrittenByRealNinja() throws {
    let dir = NSTemporaryDirectory() + "ninjalog-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try """
    rule slow
      command = sleep 0.2 && touch $out
    build x.o: slow
    build y.o: slow
    build app: slow x.o y.o

    """.write(toFile: dir + "/build.ninja", atomically: true, encoding: .utf8)
    let status = Spawn.run("/usr/bin/ninja", ["ninja", "-j2"], stdoutPath: dir + "/out", stderrPath: dir + "/err", workingDirectory: dir)
    #expect(status == 0, "\(String(decoding: (Posix.readFile(dir + "/out") ?? []) + (Posix.readFile(dir + "/err") ?? []), as: UTF8.self))")
    let log = try NinjaLogParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/.ninja_log"))), file: "log")
    #expect(log.version == 5)
    #expect(log.builds.count == 1)
    let report = BuildReport(steps: log.builds[0])
    #expect(report.steps.count == 3)
    let app = try #require(report.steps.first { $0.outputs == ["app"] })
    #expect(report.steps.filter { $0.outputs != ["app"] }.allSatisfy { $0.end <= app.start })
    #expect(report.kinds[.compile]?.count == 2)
    #expect(report.kinds[.link]?.count == 1)
    #expect(report.parallelism > 1.2 && report.parallelism < 2.0)
}

let handMadeGraph = """
digraph ninja {
rankdir="LR"
"1" [label="app"]
"2" -> "1" [label=" link"]
"2" [label="lib.a"]
"e" [label="ar", shape=ellipse]
"e" -> "2"
"3" -> "e" [arrowhead=none]
"4" -> "e" [arrowhead=none]
"3" [label="a.o"]
"5" -> "3" [label=" cc"]
"5" [label="a.c"]
"4" [label="b.o"]
"6" -> "4" [label=" cc"]
"6" [label="b.c"]
}
"""

/// Worked by hand: a.o (100) and b.o (50) feed lib.a (140), which feeds app (50).
@Test func criticalPathAndReplayFromTheGraph() throws {
    let steps = try NinjaLogParser.parse(Array(handMade.utf8), file: "x").builds[0]
    let graph = StepGraph(steps: steps, graph: BuildGraph(dot: handMadeGraph))
    let (ms, chain) = graph.criticalPath()
    #expect(ms == 290)
    #expect(chain.map { steps[$0].outputs[0] } == ["a.o", "lib.a", "app"])
    #expect(graph.replay(jobs: 1, remoteSlots: 0, clientCPUs: 2) == 340)
    // Had those steps shared one processor (a.o beside b.o for 50 ms, beside lib.a for 40), their work would be
    // b.o 25, a.o 25 + 10 + 20, lib.a 20 + 100, app 50: 250 ms one after the other.
    #expect(graph.replay(jobs: 1, remoteSlots: 0, clientCPUs: 1) == 250)
    #expect(graph.replay(jobs: 2, remoteSlots: 0, clientCPUs: 2) == 290)
    #expect(graph.replay(jobs: 8, remoteSlots: 2, clientCPUs: 1) == 290)
    // One remote slot: the two compiles run one after the other (b.o first, as in the log), then the rest.
    #expect(graph.replay(jobs: 8, remoteSlots: 1, clientCPUs: 1) == 50 + 100 + 140 + 50)
    let (predictions, recommended) = graph.recommendJobs(remoteSlots: 0, clientCPUs: 2, upTo: 4)
    #expect(predictions.map(\.ms) == [340, 290, 290, 290])
    #expect(recommended == 2)
}

@Test func zeroLengthStepsAndTies() throws {
    let text = "# ninja log v5\n0\t0\t0\tstamp\t1\n0\t10\t0\ta.o\t2\n10\t20\t0\tb.o\t3\n20\t20\t0\tc.stamp\t4\n"
    let report = BuildReport(steps: try NinjaLogParser.parse(Array(text.utf8), file: "x").builds[0])
    #expect(report.wallMs == 20)
    #expect(report.totalMs == 20)
    #expect(report.weightedMs == [0, 10, 10, 0])
    #expect(report.idle.isEmpty)
}

/// Worked by hand: a.o and b.o (100 ms each) feed app (50 ms); one helper slot, -j2, one local slot.
@Test func replaySplitsJournaledCompilesIntoClientAndHelperParts() {
    let steps = StepTable([Step(start: 0, end: 100, outputs: ["a.o"], hash: 1), Step(start: 0, end: 100, outputs: ["b.o"], hash: 2),
                           Step(start: 100, end: 150, outputs: ["app"], hash: 3)])
    var graph = StepGraph(steps: steps, graph: BuildGraph(inputs: ["app": ["a.o", "b.o"]]))
    // Whole compiles hold the helper slot: a 0-100, b 100-200, app 200-250.
    #expect(graph.replay(jobs: 2, remoteSlots: 1, clientCPUs: 2) == 250)
    // b.o waited 20 ms for a helper and each compiled 60 ms there: client parts a 0-40, b 0-20 (80 - 60);
    // b on the helper 20-80, a 80-140; app 140-190.
    let matched = graph.apply(journal: ["/b/a.o": .init(queueMs: 0, compileMs: 60), "/b/b.o": .init(queueMs: 20, compileMs: 60),
                                        "/b/app": .init(queueMs: 5, compileMs: 5)], absolutePath: { "/b/" + $0 })
    #expect(matched == 2)  // app is not a compile
    #expect(graph.durations == [100, 80, 50])
    #expect(graph.replay(jobs: 2, remoteSlots: 1, clientCPUs: 2) == 190)
    // With -j1 nothing overlaps: 100 + 80 + 50.
    #expect(graph.replay(jobs: 1, remoteSlots: 1, clientCPUs: 2) == 230)
    // On one client processor the two client parts (0-40 and 0-20) shared it in the measured build: 20 ms at
    // half speed each, so their work is 30 and 10 ms. -j2 replays the same (b's client part ends at 20, a's at
    // 40: 190 again); -j1 runs a 0-30, on the helper 30-90, b 90-100, 100-160, app 160-210.
    #expect(graph.replay(jobs: 2, remoteSlots: 1, clientCPUs: 1) == 190)
    #expect(graph.replay(jobs: 1, remoteSlots: 1, clientCPUs: 1) == 210)
}
