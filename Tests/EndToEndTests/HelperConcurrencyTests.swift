import Foundation
import SystemSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A helper runs as many compiles at once as its `--max-jobs`, even past the machine's processors (a helper is often
/// given twice as many slots as processors, so that one slot's transfer overlaps the other's compile): each compile
/// holds a thread of the daemon's blocking pool while the compiler runs, and that pool must be large enough.
@Suite(.serialized, .enabled(if: getuid() == 0 && ProcessInfo.processInfo.activeProcessorCount <= 4,
                              "sandboxed compiles; slots past the processors of a small machine"))
struct HelperConcurrencyTests {
    @Test func aHelperRunsAsManyCompilesAsItHasSlots() throws {
        let slots = 2 * ProcessInfo.processInfo.activeProcessorCount
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
        // The most compilers seen running under the helper at once.
        var most = 0
        let helper = try #require(cluster.pids["helper1"])
        for _ in 0..<600 where most < slots {
            most = max(most, descendants(of: helper, named: "cc1plus").count)
            usleep(50_000)
        }
        let statuses = launchers.map { Spawn.wait($0) }
        #expect(most == slots, "at most \(most) of \(slots) compiles ran at once on the helper")
        #expect(statuses.allSatisfy { $0 == 0 }, "launcher exit statuses \(statuses)")
        let stats = try cluster.stats()
        #expect(stats["remote"] as? Int == slots, "\(stats)")
    }
}
