import Foundation
import SystemSupport
import Testing

/// `swlaunch ninjalog` on a build ninja really ran: graph-based critical path, -j recommendation, --write.
@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ninja"), "ninja is not installed"))
func ninjalogOnARealBuild() throws {
    let root = NSTemporaryDirectory() + "ninjalog-cli-" + UUID().uuidString
    let build = root + "/build"
    try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: root) }
    // a.o (0.4 s) and b.o (0.1 s) feed app (0.2 s): the critical path is a.o -> app.
    try """
    rule slow
      command = sleep $t && touch $out
    build a.o: slow
      t = 0.4
    build b.o: slow
      t = 0.1
    build app: slow a.o b.o
      t = 0.2

    """.write(toFile: build + "/build.ninja", atomically: true, encoding: .utf8)
    #expect(Spawn.run("/usr/bin/ninja", ["ninja", "-j2"], stdoutPath: "/dev/null", stderrPath: "/dev/null", workingDirectory: build) == 0)
    let swlaunch = TestCluster.builtBinaries() + "/swlaunch"
    let out = try runCompile([swlaunch, "ninjalog", "build", "--json", "--slots", "0", "--client-cpus", "2", "--write"], in: root, outputs: [])
    #expect(out.status == 0, "\(out.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    #expect(json["steps"] as? Int == 3)
    #expect(json["critical_path"] as? [String] == ["a.o", "app"])
    #expect(json["critical_path_is_lower_bound"] as? Bool == false)
    let critical = try #require(json["critical_path_ms"] as? Int)
    #expect(critical >= 600 && critical < 900)
    #expect(json["recommended_jobs"] as? Int == 2)
    for key in ["wall_ms", "total_ms", "parallelism"] { #expect(json[key] != nil) }
    let written = try String(contentsOfFile: root + "/swlaunch.toml", encoding: .utf8)
    #expect(written == "[jobs]\ncount = 2\n")
    let config = try runCompile([swlaunch, "config"], in: build, outputs: [])
    #expect(config.stdout.contains("jobs.count = 2  # \(root)/swlaunch.toml:2"))
}

/// `swlaunch ninjalog WORKSPACE` on a colcon workspace (the fixture of a real colcon build), with --svg and --trace.
@Test func ninjalogOnAColconWorkspace() throws {
    let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("NinjaLogTests/Fixtures/colcon-ws").path
    let root = NSTemporaryDirectory() + "ninjalog-ws-" + UUID().uuidString
    try FileManager.default.copyItem(atPath: fixture, toPath: root)
    defer { try? FileManager.default.removeItem(atPath: root) }
    let swlaunch = TestCluster.builtBinaries() + "/swlaunch"
    let out = try runCompile([swlaunch, "ninjalog", root, "--json", "--slots", "0", "--client-cpus", "2",
                              "--svg", root + "/t.svg", "--trace", root + "/t.json"], in: root, outputs: [])
    #expect(out.status == 0, "\(out.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any])
    #expect(json["wall_ms"] as? Int == 1861)
    #expect(json["steps"] as? Int == 6)
    #expect(json["total_ms"] as? Int == 1543)
    #expect(json["critical_path"] as? [String] == ["alpha", "beta"])
    #expect(json["critical_path_ms"] as? Int == 1860)
    let packages = try #require(json["packages"] as? [[String: Any]])
    #expect(packages.map { $0["name"] as? String } == ["alpha", "beta"])
    #expect(packages.map { $0["steps"] as? Int } == [3, 3])
    let svg = try String(contentsOfFile: root + "/t.svg", encoding: .utf8)
    #expect(svg.contains(">libalpha.a</text>"))
    let trace = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/t.json"))) as? [String: Any])
    #expect((trace["traceEvents"] as? [Any])?.count == 7)
    let text = try runCompile([swlaunch, "ninjalog", root, "--slots", "0"], in: root, outputs: [])
    #expect(text.stdout.contains("critical path 1.9 s through packages: alpha -> beta"), "\(text.stdout)")
}
