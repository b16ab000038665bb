import Foundation
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
        let processors = LocalCores.current()
        let slots = 2 * processors
        let cluster = try TestCluster(helpers: 1, helperArguments: ["--max-jobs", "\(slots)"])
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        try slowSource.write(toFile: project + "/src/slow.cpp", atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["SWLAUNCH_SOCKET"] = cluster.clientSocket
        var launchers: [pid_t] = []
        for index in 0..<slots {
            let argv = [cluster.binaries + "/swlaunch", "g++", "-O1", "-c", "src/slow.cpp", "-o", "build/slow\(index).o"]
            guard let pid = Spawn.start(argv[0], argv, stdoutPath: project + "/slow\(index).out", stderrPath: project + "/slow\(index).err",
                                        environment: env.map { "\($0.key)=\($0.value)" }, workingDirectory: project) else {
                throw TestClusterError("cannot start a launcher")
            }
            launchers.append(pid)
        }
        // The most compilers seen running under the helper at once, until every launcher has ended.
        var most = 0, statuses: [pid_t: Int32] = [:]
        let helper = try #require(cluster.pids["helper1"])
        for _ in 0..<2400 where statuses.count < launchers.count {
            most = max(most, descendants(of: helper, named: "cc1plus").count)
            for pid in launchers where statuses[pid] == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { statuses[pid] = (status >> 8) & 0xff }
            }
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
}
