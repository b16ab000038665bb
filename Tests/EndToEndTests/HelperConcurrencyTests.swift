import Foundation
import Records
import SystemSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A helper takes as many jobs as its `--max-jobs`, often twice its processors (so that one job's transfer overlaps
/// another's compile), but compiles one per processor at a time: the jobs past its processors have their sandbox set
/// up and wait, first come first served, instead of sharing a processor with a compile already running. A waiting job
/// holds no thread of the daemon's blocking pool (a running compile holds one, and the pool is sized past the slots).
@Suite(.serialized, .enabled(if: getuid() == 0 && ProcessInfo.processInfo.activeProcessorCount <= 4,
                              "sandboxed compiles; slots past the processors of a small machine"))
struct HelperConcurrencyTests {
    @Test func aHelperTakesAJobPerSlotAndCompilesOnePerProcessor() throws {
        let (cluster, project, processors, slots) = try slowProject(helpers: 1)
        let launchers = try startSlowCompiles(slots, cluster: cluster, project: project)
        // The most compilers seen running under the helper at once, until every launcher has ended.
        var most = 0, statuses: [pid_t: Int32] = [:]
        let helper = try #require(cluster.pids["helper1"])
        for _ in 0..<2400 where statuses.count < launchers.count {
            most = max(most, descendants(of: helper, named: "cc1plus").count)
            reap(launchers, into: &statuses)
            usleep(50_000)
        }
        #expect(statuses.count == slots && statuses.values.allSatisfy { $0 == 0 }, "launcher exit statuses \(statuses)")
        #expect(most == processors, "at most \(most) compiles ran at once on a helper of \(processors) processors")
        let stats = try cluster.stats()
        #expect(stats["remote"] as? Int == slots, "\(stats)")
        // The jobs past the processors waited at the helper for a compile to end (the client's journal counts the
        // helper's wait in a job's queue time): each at least half the shortest compile.
        let journal = try String(contentsOfFile: cluster.directory + "/state-client/jobs.jsonl", encoding: .utf8)
        let jobs = try journal.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let queues = jobs.compactMap { $0["queue_us"] as? Int }.sorted(), compiles = jobs.compactMap { $0["compile_us"] as? Int }
        let shortest = try #require(compiles.min())
        #expect(queues.count == slots && queues.suffix(slots - processors).allSatisfy { $0 >= shortest / 2 },
                "queue times \(queues) µs, compiles \(compiles) µs")
    }

    /// A job waiting for a busy helper's processor moves to a helper whose processors are idle: helper1 takes twice
    /// its processors' worth of slow compiles (half of them wait), then helper2, which holds the compiler's
    /// environment, joins; the scheduler asks helper1 to give a waiting job back, and its client compiles it on
    /// helper2. Every object is still a plain compile's.
    @Test func aJobWaitingForAProcessorMovesToAHelperThatIsIdle() throws {
        let (cluster, project, processors, slots) = try slowProject(helpers: 2)
        try "int quick() { return 1; }\n".write(toFile: project + "/src/quick.cpp", atomically: true, encoding: .utf8)
        let socket = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        // helper2 gets g++'s environment from a quick compile while helper1 is away, then leaves in turn.
        cluster.stop("helper1")
        try cluster.waitForHosts(2)
        let quick = try runCompile([cluster.binaries + "/swlaunch", "g++", "-c", "src/quick.cpp", "-o", "build/quick.o"], in: project,
                                   outputs: ["build/quick.o"], environment: socket)
        #expect(quick.status == 0, "\(quick.stderr)")
        #expect((try cluster.stats()["remote_hosts"] as? [String: Int]) == ["helper2": 1])
        cluster.stop("helper2")
        try cluster.restartHelper("helper1")
        try cluster.waitForHosts(2)

        let launchers = try startSlowCompiles(slots, cluster: cluster, project: project)
        // helper1 compiles on each of its processors and holds every job: the rest wait for a processor.
        func statusOfHelper1() -> StatusRecord.Host? {
            guard let json = try? cluster.ask(.statusRequest),
                  let status = try? RecordJSON.decode(StatusRecord.self, from: Array(json.utf8)) else { return nil }
            return status.hosts.first { $0.name == "helper1" }
        }
        #expect(statusOfHelper1()?.cores == processors, "the status names the processors the scheduler places by")
        let helper1 = try #require(cluster.pids["helper1"])
        var ready = false
        for _ in 0..<600 where !ready {
            ready = descendants(of: helper1, named: "cc1plus").count == processors && statusOfHelper1()?.running == slots
            if !ready { usleep(50_000) }
        }
        #expect(ready, "helper1 never compiled on all \(processors) processors with all \(slots) jobs")
        usleep(500_000)
        try cluster.restartHelper("helper2")

        var statuses: [pid_t: Int32] = [:]
        for _ in 0..<2400 where statuses.count < launchers.count {
            reap(launchers, into: &statuses)
            usleep(50_000)
        }
        #expect(statuses.count == slots && statuses.values.allSatisfy { $0 == 0 }, "launcher exit statuses \(statuses)")
        let stats = try cluster.stats()
        let hosts = stats["remote_hosts"] as? [String: Int] ?? [:]
        #expect((stats["moved"] as? Int ?? 0) >= 1 && (hosts["helper2"] ?? 0) >= 2, "\(stats)")
        #expect(stats["remote"] as? Int == slots + 1 && stats["helper_failures"] as? Int == 0, "\(stats)")
        let history = try RecordJSON.decode(HistoryRecord.self, from: Array(try cluster.ask(.historyRequest(seconds: 3600)).utf8))
        #expect((history.outcomes["moved"] ?? 0) >= 1 && history.outcomes["failed"] == nil, "\(history.outcomes)")
        let plain = try runCompile(["g++", "-O1", "-c", "src/slow.cpp", "-o", "build/plain.o"], in: project, outputs: ["build/plain.o"])
        let object = try #require(plain.files["build/plain.o"])
        for index in 0..<slots {
            #expect(Posix.readFile(project + "/build/slow\(index).o") == object, "build/slow\(index).o differs from a plain compile")
        }
    }

    /// A cluster of `helpers` helpers with two slots per processor, and a project with src/slow.cpp.
    private func slowProject(helpers: Int) throws -> (cluster: TestCluster, project: String, processors: Int, slots: Int) {
        let processors = LocalCores.current()
        let cluster = try TestCluster(helpers: helpers, helperArguments: ["--max-jobs", "\(2 * processors)"])
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        try slowSource.write(toFile: project + "/src/slow.cpp", atomically: true, encoding: .utf8)
        return (cluster, project, processors, 2 * processors)
    }

    /// Starts `count` launchers compiling src/slow.cpp into build/slow<i>.o through the cluster's client.
    private func startSlowCompiles(_ count: Int, cluster: TestCluster, project: String) throws -> [pid_t] {
        var env = ProcessInfo.processInfo.environment
        env["SWLAUNCH_SOCKET"] = cluster.clientSocket
        return try (0..<count).map { index in
            let argv = [cluster.binaries + "/swlaunch", "g++", "-O1", "-c", "src/slow.cpp", "-o", "build/slow\(index).o"]
            guard let pid = Spawn.start(argv[0], argv, stdoutPath: project + "/slow\(index).out", stderrPath: project + "/slow\(index).err",
                                        environment: env.map { "\($0.key)=\($0.value)" }, workingDirectory: project) else {
                throw TestClusterError("cannot start a launcher")
            }
            return pid
        }
    }

    /// Records the exit status of each of `launchers` that has ended.
    private func reap(_ launchers: [pid_t], into statuses: inout [pid_t: Int32]) {
        for pid in launchers where statuses[pid] == nil {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { statuses[pid] = (status >> 8) & 0xff }
        }
    }
}
