import Foundation
import Records
import SystemSupport
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A C++ source whose compile takes seconds (a long constant evaluation), to watch a job run.
let spinningSource = """
    constexpr unsigned long spin(unsigned long n) {
        unsigned long s = 0;
        for (unsigned long i = 0; i < n; ++i) s += i * i % 7;
        return s;
    }
    constexpr unsigned long value = spin(SPIN);
    int main() { return value == 1 ? 1 : 0; }
    """
let spinningFlags = ["-std=c++17", "-fconstexpr-loop-limit=2000000000", "-fconstexpr-ops-limit=100000000000"]

/// Waits until `condition` holds, checking every 100 ms for at most `seconds`.
func eventually(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if try condition() { return true }
        usleep(100_000)
    }
    return try condition()
}

/// Runs a program to completion; its status and standard output.
func output(_ argv: [String], environment: [String: String] = [:]) -> (status: Int32, stdout: String) {
    let scratch = NSTemporaryDirectory() + "swlaunch-out-" + UUID().uuidString.prefix(8)
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    let status = Spawn.run(argv[0], argv, stdoutPath: scratch + ".out", stderrPath: scratch + ".err",
                           environment: env.map { "\($0.key)=\($0.value)" }) ?? 127
    let text = String(decoding: Posix.readFile(scratch + ".out") ?? [], as: UTF8.self)
    unlink(scratch + ".out"); unlink(scratch + ".err")
    return (status, text)
}

@Suite(.serialized) struct MonitorTests {
    @Test func aBuildIsSeenWholeInTheEventStreamTheMetricsAndTheDashboard() throws {
        let cluster = try TestCluster(helpers: 2, http: true)
        let env = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        let project = cluster.directory + "/project"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        try spinningSource.write(toFile: project + "/slow.cpp", atomically: true, encoding: .utf8)

        // A monitor subscribed before the build: `swlaunch monitor --json` through the client daemon.
        let events = cluster.directory + "/events.jsonl"
        try cluster.start("monitor", cluster.binaries + "/swlaunch-ctl", ["monitor", "--json"], stdoutPath: events, environment: env)
        #expect(eventually(10) { (Posix.readFile(events)?.count ?? 0) > 0 }, "no snapshot from the monitor: \(cluster.log("monitor"))")

        // A real build: the example project with CMake and ninja, the launcher on both compilers.
        let build = cluster.directory + "/build"
        let launcher = cluster.binaries + "/swlaunch"
        let configure = try runCompile(["cmake", "-S", packageRoot + "/examples/hello", "-B", build, "-G", "Ninja",
                                        "-DCMAKE_C_COMPILER_LAUNCHER=" + launcher, "-DCMAKE_CXX_COMPILER_LAUNCHER=" + launcher],
                                       in: cluster.directory, outputs: [], environment: env)
        #expect(configure.status == 0, "\(configure.stderr)")
        let ninja = try runCompile(["ninja", "-C", build], in: cluster.directory, outputs: [], environment: env)
        #expect(ninja.status == 0, "\(ninja.stdout)\(ninja.stderr)")
        let built = try cluster.stats()["remote"] as? Int ?? 0
        #expect(built == 4, "the example's 4 compiles ran remote")

        // A job that runs for seconds, watched in the dashboard while it runs.
        try cluster.start("slow", cluster.binaries + "/swlaunch", ["g++", "-DSPIN=3000000"] + spinningFlags + ["-c", project + "/slow.cpp", "-o", project + "/slow.o"],
                          environment: env)
        #expect(eventually(20) { String(decoding: Posix.readFile(events) ?? [], as: UTF8.self).contains("\"kind\":\"job_started\"") &&
                                  String(decoding: Posix.readFile(events) ?? [], as: UTF8.self).contains("slow.cpp") })
        let screenshot = cluster.directory + "/dashboard.png"
        let page = output(["/usr/bin/python3", packageRoot + "/scripts/dashboard-check.py", "http://127.0.0.1:\(cluster.httpPort!)/",
                           "--want-hosts", "3", "--want-running", "1", "--screenshot", screenshot])
        #expect(page.status == 0, "\(page.stdout)")
        let seen = try JSONSerialization.jsonObject(with: Data(page.stdout.utf8)) as? [String: Any] ?? [:]
        #expect((seen["errors"] as? [String]) == [], "console errors: \(seen)")
        #expect(Set(seen["hosts"] as? [String] ?? []) == ["client", "helper1", "helper2"])
        #expect((seen["running"] as? [String] ?? []).contains { $0.contains("slow.cpp") && $0.contains("client → helper") }, "\(seen)")
        #expect((Posix.readFile(screenshot)?.prefix(4)).map(Array.init) == [0x89, 0x50, 0x4E, 0x47], "no PNG screenshot")
        if let keep = ProcessInfo.processInfo.environment["SWLAUNCH_KEEP_SCREENSHOT"] { _ = try? FileManager.default.copyItem(atPath: screenshot, toPath: keep) }
        #expect(cluster.wait("slow") == 0, "\(cluster.log("slow"))")

        // Every job granted was seen finished, with its timings; as many remote as the client counted.
        let remote = try cluster.stats()["remote"] as? Int ?? 0
        #expect(remote == built + 1)
        var granted = Set<String>(), finished: [String: JobEvent] = [:]
        #expect(eventually(10) {
            granted = []; finished = [:]
            for line in String(decoding: Posix.readFile(events) ?? [], as: UTF8.self).split(separator: "\n") {
                guard let event = try? RecordJSON.decode(ClusterEvent.self, from: Array(line.utf8)) else { continue }
                for job in event.jobs ?? [] {
                    if event.kind == .jobGranted { granted.insert(job.key) }
                    if event.kind == .jobFinished { finished[job.key] = job }
                }
            }
            return granted.count == remote && Set(finished.keys) == granted
        }, "granted \(granted.sorted()), finished \(finished.keys.sorted())")
        #expect(finished.values.allSatisfy { $0.outcome == "remote" && $0.compileUs > 0 && $0.bytesOut > 0 && $0.bytesIn > 0 && $0.client == "client" })
        #expect(Set(finished.values.map { String($0.source.split(separator: "/").last ?? "") })
                    == ["area.c", "circle.cpp", "main.cpp", "square.cpp", "slow.cpp"])
        cluster.stop("monitor")

        // /metrics, read with the Prometheus project's own text parser: the counts are the jobs run.
        let parse = """
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            text = urllib.request.urlopen(sys.argv[1]).read().decode()
            samples = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    samples[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
            print(json.dumps(samples))
            """
        let metrics = output(["/usr/bin/python3", "-c", parse, "http://127.0.0.1:\(cluster.httpPort!)/metrics"])
        #expect(metrics.status == 0, "\(metrics.stdout)")
        let samples = try JSONSerialization.jsonObject(with: Data(metrics.stdout.utf8)) as? [String: Double] ?? [:]
        #expect(samples["swlaunch_jobs_total{\"outcome\": \"remote\"}"] == Double(remote), "\(samples)")
        #expect(samples["swlaunch_grants_total{}"] == Double(remote))
        #expect(samples["swlaunch_job_compile_seconds_count{}"] == Double(remote))
        #expect(samples["swlaunch_job_transfer_seconds_count{}"] == Double(remote))
        #expect(samples["swlaunch_host_slots{\"host\": \"helper1\"}"] == 2 && samples["swlaunch_hosts{}"] == 3)
        #expect((samples["swlaunch_job_compile_seconds_sum{}"] ?? 0) > 2, "the slow compile alone took seconds")
    }

    @Test func theHistoryOutlivesASchedulerRestart() throws {
        let cluster = try TestCluster(helpers: 2)
        let env = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        let project = cluster.directory + "/project"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        for i in 1...4 {
            try "int g\(i)(int x) { return x + \(i); }\n".write(toFile: project + "/g\(i).c", atomically: true, encoding: .utf8)
            #expect(try runCompile([cluster.binaries + "/swlaunch", "gcc", "-c", "g\(i).c", "-o", "g\(i).o"], in: project,
                                   outputs: ["g\(i).o"], environment: env).status == 0)
        }
        func hosts() throws -> [StatusRecord.Host] {
            try RecordJSON.decode(StatusRecord.self, from: Array(try cluster.ask(.statusRequest).utf8)).hosts
        }
        let measured = try hosts().filter { $0.speed != nil }
        #expect(!measured.isEmpty && measured.reduce(0) { $0 + $1.jobsDone } == 4)

        // "The morning's jobs" after a restart: the history answers for them, and the speeds are back.
        try cluster.restartScheduler()
        try cluster.waitForHosts(3)
        let after = try hosts()
        for host in measured {
            let again = after.first { $0.name == host.name }
            #expect(again?.speed == host.speed && again?.jobsDone == host.jobsDone,
                    "\(host.name): \(String(describing: host.speed)) \(host.jobsDone) before, \(String(describing: again)) after\n\(String(decoding: Posix.readFile(cluster.directory + "/scheduler.log.1") ?? [], as: UTF8.self).suffix(5000))")
        }
        let history = try RecordJSON.decode(HistoryRecord.self, from: Array(try cluster.ask(.historyRequest(seconds: 3600)).utf8))
        #expect(history.jobs == 4 && history.outcomes == ["remote": 4] && history.clients == ["client": 4])
        #expect(history.hosts.reduce(0) { $0 + $1.jobs } == 4 && history.hosts.allSatisfy { $0.speed != nil })
        let table = output([cluster.binaries + "/swlaunch-ctl", "stats", "--since", "1h"], environment: env)
        #expect(table.status == 0 && table.stdout.contains("cluster jobs in the last 3600 s (scheduler history): 4"), "\(table.stdout)")
        #expect(output([cluster.binaries + "/swlaunch-ctl", "stats", "--since", "soon"], environment: env).status != 0)
    }

    @Test func theMonitorRedrawsFollowsAResizeAndLeavesTheTerminalCleanUnderTmux() throws {
        let cluster = try TestCluster(helpers: 2)
        let server = ["/usr/bin/tmux", "-L", "swlaunch-test-" + UUID().uuidString.prefix(8), "-f", "/dev/null"]
        func tmux(_ arguments: String...) -> String { output(server + arguments).stdout }
        defer { _ = tmux("kill-server") }
        // A long folder name: cut to fit 80 columns, shown whole once the terminal is wide enough.
        let project = cluster.directory + "/a-project-folder-with-a-rather-long-name-to-show-the-width"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        try spinningSource.write(toFile: project + "/slow.cpp", atomically: true, encoding: .utf8)
        _ = tmux("new-session", "-d", "-s", "mon", "-x", "80", "-y", "24", "/bin/sh")
        _ = tmux("send-keys", "-t", "mon", "SWLAUNCH_SOCKET=\(cluster.clientSocket) \(cluster.binaries)/swlaunch-ctl monitor; echo MONITOR-EXIT=$?", "Enter")
        func screen() -> [String] { tmux("capture-pane", "-p", "-t", "mon").split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        #expect(eventually(15) { screen().first?.hasPrefix("swlaunch monitor") == true && screen().contains { $0.hasPrefix("helper2 ") } },
                "\(screen().joined(separator: "\n"))")
        #expect(tmux("display", "-p", "-t", "mon", "#{alternate_on}").hasPrefix("1"), "the view runs on the alternate screen")

        try cluster.start("slow", cluster.binaries + "/swlaunch", ["g++", "-DSPIN=4000000"] + spinningFlags + ["-c", project + "/slow.cpp", "-o", project + "/slow.o"],
                          environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(eventually(20) { screen().contains { $0.contains("slow.cpp") && $0.contains("client → helper") } }, "\(screen().joined(separator: "\n"))")
        let narrow = screen()
        #expect(narrow.allSatisfy { $0.count <= 80 })
        #expect(narrow.contains { $0.contains("…") && $0.contains("slow.cpp") }, "the long path is cut at 80 columns: \(narrow.joined(separator: "\n"))")

        _ = tmux("resize-window", "-t", "mon", "-x", "160", "-y", "40")
        #expect(eventually(10) { screen().contains { $0.contains(project + "/slow.cpp") } }, "after the resize: \(screen().joined(separator: "\n"))")
        #expect(screen().first?.hasPrefix("swlaunch monitor") == true, "the view redraws from the top")

        #expect(cluster.wait("slow") == 0)
        #expect(eventually(10) { screen().contains { $0.hasPrefix("helper") && $0.hasSuffix("#") } }, "the finished job joins its helper's strip")
        _ = tmux("send-keys", "-t", "mon", "C-c")
        #expect(eventually(10) { screen().contains { $0.contains("MONITOR-EXIT=0") } }, "\(screen().joined(separator: "\n"))")
        #expect(tmux("display", "-p", "-t", "mon", "#{alternate_on} #{cursor_flag}").hasPrefix("0 1"), "normal screen, cursor shown")
        let after = screen()
        #expect(!after.contains { $0.hasPrefix("swlaunch monitor") || $0.hasPrefix("RUNNING") }, "nothing of the view is left behind: \(after.joined(separator: "\n"))")
    }
}
