import Records
import Testing
@testable import MonitorView

func host(_ name: String, slots: Int = 2, running: Int = 0, remote: Bool = true, speed: Double? = nil) -> StatusRecord.Host {
    StatusRecord.Host(name: name, id: "", address: "10.0.0.1", port: 1, maxJobs: slots, running: running, load: 0.5, speed: speed,
                      jobsDone: 0, acceptsRemote: remote, platform: "x86_64-linux", note: "", avoidedForS: 0)
}

func job(_ key: String, client: String = "pi", host: String = "h1", outcome: String = "running", source: String = "src/a.cpp",
         reason: String = "", granted: Double = 100, finished: Double = 0) -> JobEvent {
    JobEvent(key: key, client: client, host: host, source: source, outcome: outcome, reason: reason, granted: granted, finished: finished)
}

@Suite struct MonitorViewTests {
    @Test func theModelFollowsJobsFromGrantToFinish() {
        var model = MonitorModel()
        model.apply(ClusterEvent(kind: .snapshot, time: 100, hosts: [host("h1"), host("pi", remote: false)],
                                 jobs: [job("pi#0", outcome: "remote", finished: 99), job("pi#1")]))
        #expect(model.live && model.hosts.count == 2 && model.running.keys.sorted() == ["pi#1"])
        #expect(model.recent["h1"]?.map(\.key) == ["pi#0"], "finished jobs of the snapshot fill the strip")
        model.apply(ClusterEvent(kind: .jobGranted, time: 101, jobs: [job("pi#2", host: "h2")]))
        model.apply(ClusterEvent(kind: .jobFinished, time: 102, jobs: [job("pi#1", outcome: "remote", finished: 102)]))
        model.apply(ClusterEvent(kind: .jobFinished, time: 103, jobs: [job("pi#2", host: "h2", outcome: "failed", reason: "deadline", finished: 103)]))
        model.apply(ClusterEvent(kind: .jobFinished, time: 104, jobs: [job("pi!1", host: "", outcome: "local", reason: "no-helper", finished: 104)]))
        #expect(model.running.isEmpty)
        #expect(model.outcomes == ["remote": 2, "failed": 1, "local": 1])
        #expect(model.recent["h1"]?.map(\.outcome) == ["remote", "remote"] && model.recent["h2"]?.map(\.outcome) == ["failed"])
        #expect(model.fallbacks.map(\.reason) == ["no-helper"])
        model.apply(ClusterEvent(kind: .hostLeft, time: 105, hosts: [host("h1")]))
        #expect(model.hosts.map(\.name) == ["pi"])
        model.apply(ClusterEvent(kind: .hostJoined, time: 106, hosts: [host("a0")]))
        #expect(model.hosts.map(\.name) == ["a0", "pi"])
    }

    @Test(arguments: [(80, 24), (100, 30), (40, 10), (200, 60)])
    func theScreenFitsTheTerminal(_ size: (Int, Int)) {
        var model = MonitorModel()
        let hosts = (1...30).map { host("helper\($0)", running: 1, speed: Double($0) / 3) } + [host("raspberrypi", remote: false)]
        var jobs = (1...40).map { job("raspberrypi#\($0)", client: "raspberrypi", host: "helper\($0 % 30 + 1)",
                                      source: "/home/pi/ros_ws/src/very/long/path/to/some/package/source_file_\($0).cpp") }
        jobs += (1...200).map { job("raspberrypi#f\($0)", client: "raspberrypi", host: "helper\($0 % 3 + 1)", outcome: $0 % 17 == 0 ? "failed" : "remote", finished: 90) }
        model.apply(ClusterEvent(kind: .snapshot, time: 100, hosts: hosts, jobs: jobs))
        for i in 1...12 {
            model.apply(ClusterEvent(kind: .jobFinished, time: 100, jobs: [job("raspberrypi!\(i)", client: "raspberrypi", host: "", outcome: "local",
                                                                              source: "src/f\(i).c", reason: "no-helper", finished: 100)]))
        }
        let screen = MonitorScreen(width: size.0, height: size.1, client: "raspberrypi", origin: "via /run/swlaunch/swlaunchd.sock")
        let lines = screen.render(model, now: 103)
        #expect(lines.count <= size.1)
        #expect(lines.allSatisfy { $0.count <= size.0 }, "\(lines.filter { $0.count > size.0 })")
        #expect(lines[0].hasPrefix("swlaunch monitor"))
        #expect(lines.contains { $0.hasPrefix("helper1 ") })
        if size.1 >= 24 {
            #expect(lines.contains { $0.hasPrefix("RUNNING (40)") })
            #expect(lines.contains { $0.hasPrefix("FALLBACKS on raspberrypi (12)") })
            #expect(lines.contains { $0.contains("no-helper") })
            #expect(lines.contains { $0.contains("more hosts") }, "30 hosts do not fit in \(size.1) lines: the view says how many it left out")
        }
    }

    @Test func theStripShowsEachHelpersRecentJobsNewestRight() {
        var model = MonitorModel()
        model.apply(ClusterEvent(kind: .snapshot, time: 100, hosts: [host("h1")],
                                 jobs: [job("c#1", outcome: "remote", finished: 1), job("c#2", outcome: "failed", finished: 2),
                                        job("c#3", outcome: "refused", finished: 3), job("c#4")]))
        let line = MonitorScreen(width: 80, height: 24, client: nil, origin: "test").render(model, now: 100).first { $0.hasPrefix("h1 ") }
        #expect(line?.hasSuffix("#!x>") == true, "\(line ?? "no line")")
    }

    @Test func fallbacksOfOtherClientsAreLeftOutUnlessAllAreAsked() {
        var model = MonitorModel()
        model.apply(ClusterEvent(kind: .snapshot, time: 100, hosts: [host("h1")], jobs: [
            job("a!1", client: "a", host: "", outcome: "local", source: "x.c", reason: "no-helper", finished: 100),
            job("b!1", client: "b", host: "", outcome: "local", source: "y.c", reason: "untrusted-compiler", finished: 100),
        ]))
        let mine = MonitorScreen(width: 80, height: 24, client: "a", origin: "t").render(model, now: 100)
        #expect(mine.contains { $0.contains("x.c") } && !mine.contains { $0.contains("y.c") })
        let all = MonitorScreen(width: 80, height: 24, client: nil, origin: "t").render(model, now: 100)
        #expect(all.contains { $0.contains("b: y.c") && $0.contains("untrusted-compiler") })
    }
}
