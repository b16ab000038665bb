import Foundation
import SystemSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A compile that takes a few seconds, so that a test can do something to the helper while it runs.
let slowSource = """
    #include <map>
    #include <regex>
    #include <string>
    #include <vector>
    template <int N> struct F {
        static int f() {
            std::map<std::string, std::vector<int>> m;
            m["k" + std::to_string(N)].push_back(N);
            std::regex r("a+b*" + std::to_string(N));
            return F<N - 1>::f() + int(m.size()) + int(std::regex_match("aab", r));
        }
    };
    template <> struct F<0> { static int f() { return 0; } };
    int g() { return F<70>::f(); }

    """

/// The pids below `root` in the process tree whose command name is `name`.
func descendants(of root: pid_t, named name: String) -> [pid_t] {
    var parents: [pid_t: pid_t] = [:], names: [pid_t: String] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(entry), let stat = Posix.readFile("/proc/\(entry)/stat") else { continue }
        let text = String(decoding: stat, as: UTF8.self)
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { continue }
        names[pid] = String(text[text.index(after: open)..<close])
        let rest = text[text.index(close, offsetBy: 2)...].split(separator: " ")
        if rest.count > 1, let parent = pid_t(rest[1]) { parents[pid] = parent }
    }
    return names.filter { pid, command in
        guard command == name else { return false }
        var current = pid
        for _ in 0..<64 {
            guard let parent = parents[current], parent > 1 else { return false }
            if parent == root { return true }
            current = parent
        }
        return false
    }.map(\.key)
}

/// Faults injected into real daemons while they compile: each compile still succeeds with output identical to a
/// local compile, the reason is counted, and nothing waits past its deadline (3 to 8 s here).
@Suite(.serialized, .enabled(if: getuid() == 0, "kills and freezes daemons, mounts a small tmpfs"))
struct FaultTests {
    static let deadlines = ["--deadline-floor", "3", "--deadline-ceiling", "8"]

    func project(_ cluster: TestCluster) throws -> String {
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        try slowSource.write(toFile: project + "/src/slow.cpp", atomically: true, encoding: .utf8)
        return project
    }

    /// Starts a launched compile of src/slow.cpp in the background; returns its pid.
    func startSlowCompile(_ cluster: TestCluster, in project: String, output: String) throws -> pid_t {
        var env = ProcessInfo.processInfo.environment
        env["SWLAUNCH_SOCKET"] = cluster.clientSocket
        let argv = [cluster.binaries + "/swlaunch", "g++", "-O1", "-c", "src/slow.cpp", "-o", output]
        guard let pid = Spawn.start(argv[0], argv, stdoutPath: project + "/slow.out", stderrPath: project + "/slow.err",
                                    environment: env.map { "\($0.key)=\($0.value)" }, workingDirectory: project) else {
            throw TestClusterError("cannot start the launcher")
        }
        return pid
    }

    /// The helper whose sandbox is running a compiler program named `program`, waiting up to 60 s.
    func helperRunning(_ cluster: TestCluster, _ program: String = "cc1plus") -> (String, [pid_t])? {
        for _ in 0..<600 {
            for (name, pid) in cluster.pids where name.hasPrefix("helper") {
                let found = descendants(of: pid, named: program)
                if !found.isEmpty { return (name, found) }
            }
            usleep(100_000)
        }
        return nil
    }

    func expectIdenticalToLocal(_ project: String, object: String) throws {
        let plain = try runCompile(["g++", "-O1", "-c", "src/slow.cpp", "-o", "build/plain-slow.o"], in: project, outputs: ["build/plain-slow.o"])
        #expect(plain.status == 0)
        let same = Posix.readFile(project + "/" + object) == plain.files["build/plain-slow.o"]
        #expect(same, "\(object) differs from a local compile")
    }

    func statsText(_ cluster: TestCluster) -> String { "\((try? cluster.stats()) ?? [:])" }

    func failureReasons(_ cluster: TestCluster) throws -> [String: Int] {
        try cluster.stats()["helper_failure_reasons"] as? [String: Int] ?? [:]
    }

    @Test func aHelperKilledMidJob() throws {
        let cluster = try TestCluster(helpers: 2, clientArguments: Self.deadlines)
        let project = try project(cluster)
        let compile = try startSlowCompile(cluster, in: project, output: "build/killed.o")
        guard let (helper, _) = helperRunning(cluster) else { Issue.record("no helper ran the job"); return }
        cluster.stop(helper, signal: SIGKILL)
        #expect(Spawn.wait(compile) == 0, "\(String(decoding: Posix.readFile(project + "/slow.err") ?? [], as: UTF8.self))")
        try expectIdenticalToLocal(project, object: "build/killed.o")
        #expect(try failureReasons(cluster)["connection", default: 0] >= 1, "\(statsText(cluster))")
    }

    @Test func aHelperFrozenWithSIGSTOP() throws {
        let cluster = try TestCluster(helpers: 1, clientArguments: Self.deadlines)
        let project = try project(cluster)
        guard let helper = cluster.pids["helper1"] else { return }
        kill(helper, SIGSTOP)
        defer { kill(helper, SIGCONT) }
        let start = Posix.nowMicros()
        let compile = try startSlowCompile(cluster, in: project, output: "build/frozen.o")
        #expect(Spawn.wait(compile) == 0)
        let elapsed = Double(Posix.nowMicros() - start) / 1e6
        try expectIdenticalToLocal(project, object: "build/frozen.o")
        #expect(try failureReasons(cluster)["deadline"] == 1, "\(statsText(cluster))")
        #expect((try cluster.stats()["fallback_reasons"] as? [String: Int])?["helper-deadline"] == 1)
        // The attempt's deadline (3 to 8 s) plus the local compile: never the minutes of a keep-alive-fed wait.
        #expect(elapsed < 60, "took \(elapsed) s")
    }

    @Test func aHelperThatOnlySendsKeepAlives() throws {
        let cluster = try TestCluster(helpers: 1, helperArguments: ["--no-remote"], clientArguments: Self.deadlines)
        let stalling = try StallingHelper(name: "stalling", schedulerPort: cluster.schedulerPort)
        try cluster.waitForHosts(3)
        let project = try project(cluster)
        let argv = ["gcc", "-Iinclude", "-c", "src/hello.c", "-o", "build/stalled.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/stalled.o"])
        let start = Posix.nowMicros()
        let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/stalled.o"],
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        let elapsed = Double(Posix.nowMicros() - start) / 1e6
        #expect(launched == plain)
        #expect(stalling.jobsTaken == 1)
        #expect(try failureReasons(cluster)["deadline"] == 1, "\(statsText(cluster))")
        #expect(elapsed >= 2.5 && elapsed < 20, "took \(elapsed) s against a deadline of 3 to 8 s")
    }

    /// An attempt past its deadline is abandoned by the client, and the helper stops the compile it was running:
    /// it never finishes beside the retry.
    @Test func anAbandonedAttemptIsStoppedOnTheHelper() throws {
        let cluster = try TestCluster(helpers: 1, clientArguments: ["--deadline-floor", "2", "--deadline-ceiling", "2"])
        let project = try project(cluster)
        // A first job brings the environment to the helper (its transfer extends that attempt's deadline).
        let warm = try runCompile([cluster.binaries + "/swlaunch", "g++", "-Iinclude", "-c", "src/app.cpp", "-o", "build/warm.o"],
                                  in: project, outputs: ["build/warm.o"], environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        let remoteAfterWarmUp = try cluster.stats()["remote"] as? Int
        #expect(warm.status == 0 && remoteAfterWarmUp == 1)
        let compile = try startSlowCompile(cluster, in: project, output: "build/abandoned.o")
        guard let (_, compilers) = helperRunning(cluster) else { Issue.record("no helper ran the job"); return }
        #expect(Spawn.wait(compile) == 0)
        try expectIdenticalToLocal(project, object: "build/abandoned.o")
        #expect(try failureReasons(cluster)["deadline"] == 1, "\(statsText(cluster))")
        // The helper's compiler is gone within a second or so of the client hanging up, without finishing.
        var running = compilers
        for _ in 0..<50 where !running.isEmpty {
            running = compilers.filter { kill($0, 0) == 0 && !(Posix.readFile("/proc/\($0)/stat").map { String(decoding: $0, as: UTF8.self).contains(") Z ") } ?? true) }
            usleep(100_000)
        }
        #expect(running.isEmpty, "the abandoned compile still runs on the helper")
        let log = cluster.log("helper1")
        #expect(log.contains("the client went away"), "\(log.suffix(1500))")
        #expect(!log.contains("output=\(project)/build/abandoned.o"), "the abandoned compile ran to its end")
    }

    @Test func aHelperWhoseCompilerIsKilledBySignal() throws {
        let cluster = try TestCluster(helpers: 2, clientArguments: Self.deadlines)
        let project = try project(cluster)
        let compile = try startSlowCompile(cluster, in: project, output: "build/signalled.o")
        guard let (_, compilers) = helperRunning(cluster) else { Issue.record("no helper ran the job"); return }
        for pid in compilers { kill(pid, SIGKILL) }
        #expect(Spawn.wait(compile) == 0, "\(String(decoding: Posix.readFile(project + "/slow.err") ?? [], as: UTF8.self))")
        try expectIdenticalToLocal(project, object: "build/signalled.o")
        #expect(try failureReasons(cluster)["signal"] == 1, "\(statsText(cluster))")
        // The killed compile was not the compiler's verdict: the job ran again, on the other helper or here.
        let stats = try cluster.stats()
        #expect((stats["remote"] as? Int ?? 0) + (stats["fallback"] as? Int ?? 0) == 1)
    }

    @Test func aHelperWithAFullDisk() throws {
        // The helper's state directory is a 32 MiB tmpfs: below its free-space floor, it takes no job.
        let full = ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                    "for a; do [ \"$p\" = --state-dir ] && d=$a; p=$a; done; mkdir -p \"$d\" && mount -t tmpfs -o size=32m swlaunch-full \"$d\" && exec \"$@\"",
                    "sh"]
        let cluster = try TestCluster(helpers: 1, helperPrefix: full, clientArguments: Self.deadlines)
        let project = try project(cluster)
        let argv = ["g++", "-Iinclude", "-c", "src/app.cpp", "-o", "build/full.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/full.o"])
        let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/full.o"],
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(launched == plain)
        #expect(try failureReasons(cluster)["no-space"] == 1, "\(statsText(cluster))\n\(cluster.log("helper1").suffix(1500))")
    }

    /// SIGTERM drains: the client daemon lets its job in flight finish, the helper finishes the job it runs
    /// (no failure, nothing compiled twice), and both exit afterwards.
    @Test func sigtermDuringABuildLosesNoJob() throws {
        let cluster = try TestCluster(helpers: 1, clientArguments: Self.deadlines)
        let project = try project(cluster)
        let compile = try startSlowCompile(cluster, in: project, output: "build/drained.o")
        guard helperRunning(cluster) != nil, let client = cluster.pids["client"], let helper = cluster.pids["helper1"] else {
            Issue.record("no helper ran the job"); return
        }
        kill(helper, SIGTERM)
        kill(client, SIGTERM)
        #expect(Spawn.wait(compile) == 0, "\(String(decoding: Posix.readFile(project + "/slow.err") ?? [], as: UTF8.self))")
        try expectIdenticalToLocal(project, object: "build/drained.o")
        #expect(cluster.log("helper1").contains("draining") && cluster.log("client").contains("draining"))
        #expect(!cluster.log("client").contains("remote attempt failed"), "\(cluster.log("client").suffix(1500))")
        #expect(!cluster.log("helper1").contains("job not compiled"))
        for name in ["helper1", "client"] {
            var exited = false
            for _ in 0..<100 where !exited { exited = !cluster.isAlive(name); if !exited { usleep(100_000) } }
            #expect(exited, "\(name) did not exit after draining")
        }
    }

    @Test func theSchedulerRestartedDuringABuild() throws {
        let cluster = try TestCluster(helpers: 2, clientArguments: Self.deadlines)
        let project = try project(cluster)
        var remoteAfterRestart = false
        for i in 0..<8 {
            if i == 3 { try cluster.restartScheduler() }
            let argv = ["gcc", "-Iinclude", "-DN=\(i)", "-c", "src/hello.c", "-o", "build/r\(i).o"]
            let plain = try runCompile(argv, in: project, outputs: ["build/r\(i).o"])
            let before = try cluster.stats()["remote"] as? Int ?? 0
            let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/r\(i).o"],
                                          environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
            #expect(launched == plain, "compile \(i)")
            if i >= 3, try cluster.stats()["remote"] as? Int ?? 0 > before { remoteAfterRestart = true }
            if i == 3 { try cluster.waitForHosts(3) }
        }
        let stats = try cluster.stats()
        #expect((stats["remote"] as? Int ?? 0) + (stats["fallback"] as? Int ?? 0) == 8)
        #expect(remoteAfterRestart, "the daemons did not come back to the restarted scheduler: \(stats)")
    }

    @Test func aGenuineCompileErrorRunsOnceRemotelyAndIsNotRetried() throws {
        let cluster = try TestCluster(helpers: 2, clientArguments: Self.deadlines)
        let project = try project(cluster)
        for (file, text, flags) in [("syntax.c", "int f( { return 1; }\n", [String]()), ("hash.c", "#error no\n", []),
                                    ("werror.c", "int f(void) { int unused; return 0; }\n", ["-Wall", "-Werror"])] {
            try text.write(toFile: project + "/src/" + file, atomically: true, encoding: .utf8)
            let argv = ["gcc"] + flags + ["-c", "src/" + file, "-o", "build/e.o"]
            let plain = try runCompile(argv, in: project, outputs: ["build/e.o"])
            let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/e.o"],
                                          environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
            #expect(plain.status != 0)
            #expect(launched == plain, "\(file)")
        }
        let stats = try cluster.stats()
        #expect(stats["remote"] as? Int == 3 && stats["fallback"] as? Int == 0 && stats["helper_failures"] as? Int == 0, "\(stats)")
        // Each ran once, on one helper.
        var served = 0
        for helper in ["helper1", "helper2"] {
            served += try cluster.stats(socket: cluster.directory + "/\(helper).sock")["served"] as? Int ?? 0
        }
        #expect(served == 3)
    }
}
