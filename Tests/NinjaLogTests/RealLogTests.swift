import Foundation
import Testing
@testable import NinjaLog

/// Logs written by real ninja runs (scripts/ninjalog-fixtures.sh): Debian's ninja 1.11 (v5) and PyPI's ninja
/// 1.13.2 (v7). A v6 log is a v5 log under a v6 header, as ninja 1.12 wrote it. Each holds two builds of
/// a.o, b.o -> lib.a, gen.h + gen.c (one command), app.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func log(_ name: String, header: String? = nil) throws -> ParsedLog {
        var bytes = try bytes(name)
        if let header {
            let end = bytes.firstIndex(of: UInt8(ascii: "\n"))!
            bytes.replaceSubrange(0..<end, with: Array(header.utf8))
        }
        return try NinjaLogParser.parse(bytes, file: name)
    }
}

/// The expected figures, read off the fixture lines by hand (build 2 of each).
struct Expected {
    let version: Int
    let file: String
    let header: String?
    /// start, end of b.o, gen, a.o, lib.a, app in the last build.
    let b, gen, a, lib, app: (Int, Int)
}

let expectations = [
    Expected(version: 5, file: "v5-two-builds.ninja_log", header: nil, b: (1, 106), gen: (107, 314), a: (1, 411), lib: (411, 719), app: (719, 827)),
    Expected(version: 6, file: "v5-two-builds.ninja_log", header: "# ninja log v6", b: (1, 106), gen: (107, 314), a: (1, 411), lib: (411, 719), app: (719, 827)),
    Expected(version: 7, file: "v7-two-builds.ninja_log", header: nil, b: (7, 116), gen: (116, 327), a: (3, 414), lib: (414, 720), app: (720, 828)),
]

@Test(arguments: expectations.indices)
func realLogOfEachVersion(_ index: Int) throws {
    let e = expectations[index]
    let log = try Fixture.log(e.file, header: e.header)
    #expect(log.version == e.version)
    #expect(log.builds.count == 2)
    #expect(!log.recompacted)
    #expect(log.warnings.isEmpty)
    // Six lines per build, five steps: gen.h and gen.c come from one command.
    #expect(log.builds.map(\.count) == [5, 5])
    let report = BuildReport(steps: log.builds[1])
    let byName = Dictionary(uniqueKeysWithValues: report.steps.indices.map { (report.steps.name($0), $0) })
    #expect(report.steps.outputs(byName["gen.h"]!) == ["gen.h", "gen.c"])
    let d = { (s: (Int, Int)) in s.1 - s.0 }
    #expect(report.wallMs == e.app.1 - min(e.a.0, e.b.0))
    #expect(report.totalMs == d(e.b) + d(e.gen) + d(e.a) + d(e.lib) + d(e.app))
    #expect(report.criticalPathMs == d(e.a))
    #expect(report.kinds[.compile]! == (2, d(e.a) + d(e.b)))
    #expect(report.kinds[.archive]! == (1, d(e.lib)))
    #expect(report.kinds[.link]! == (1, d(e.app)))
    #expect(report.kinds[.other]! == (1, d(e.gen)))
    #expect(report.idle.isEmpty)
    // Weighted: b.o shares its whole life with a.o; gen shares its life with a.o; lib.a and app run alone.
    #expect(report.weightedMs[byName["b.o"]!] == Double(d(e.b)) / 2)
    #expect(report.weightedMs[byName["gen.h"]!] == Double(d(e.gen)) / 2)
    #expect(report.weightedMs[byName["lib.a"]!] == Double(d(e.lib)))
    #expect(report.weightedMs[byName["app"]!] == Double(d(e.app)))
    let aAlone = d(e.a) - d(e.b) - d(e.gen)
    #expect(report.weightedMs[byName["a.o"]!] == Double(d(e.b) + d(e.gen)) / 2 + Double(aAlone))
}

/// v5 by hand: build 1 is b.o 3-108, gen 109-313, a.o 0-409, lib.a 409-713, app 713-820.
@Test func earlierBuildOfARealLog() throws {
    let report = BuildReport(steps: try Fixture.log("v5-two-builds.ninja_log").builds[0])
    #expect(report.wallMs == 820)
    #expect(report.totalMs == 105 + 204 + 409 + 304 + 107)
    // 108 to 109: only a.o runs; nothing is idle.
    #expect(report.idle.isEmpty)
}

@Test func recompactedRealLogs() throws {
    // ninja 1.11 rewrites the latest line of each output in hash order: end times go backwards, no output twice.
    let v5 = try Fixture.log("v5-recompacted.ninja_log")
    #expect(v5.recompacted)
    #expect(v5.builds.count == 1)
    let report = BuildReport(steps: v5.builds[0])
    #expect(report.steps.count == 5)
    #expect(report.wallMs == 826)
    #expect(report.totalMs == 105 + 207 + 410 + 308 + 108)
    // ninja 1.13 keeps the last build's lines in order: it reads as that one build.
    let v7 = try Fixture.log("v7-recompacted.ninja_log")
    #expect(v7.builds.count == 1)
    #expect(BuildReport(steps: v7.builds[0]).wallMs == 825)
}

@Test(arguments: ["v5-damaged.ninja_log", "v7-damaged.ninja_log"])
func damagedRealLogs(_ name: String) throws {
    let log = try Fixture.log(name)
    #expect(log.warnings == ["\(name):14: skipped a malformed line", "\(name):15: skipped a malformed line"])
    #expect(log.builds.count == 2)
    #expect(log.builds[1].count == 5)
}

@Test func svgTimelineHasALanePerSlotAndLabels() throws {
    let report = BuildReport(steps: try Fixture.log("v5-two-builds.ninja_log").builds[1])
    let svg = TimelineSVG(title: "t <1>").render(report)
    // a.o runs beside b.o then gen: two lanes.
    #expect(Set(report.lanes) == [0, 1])
    #expect(svg.contains(">slot 1<") && svg.contains(">slot 2<") && !svg.contains(">slot 3<"))
    #expect(svg.components(separatedBy: "<title>").count - 1 == 5)
    #expect(svg.contains(">lib.a</text>"))
    #expect(svg.contains("t &lt;1&gt;"))
    #expect(svg.hasPrefix("<svg ") && svg.hasSuffix("</svg>\n"))
}
