import Foundation
import SystemSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Jobs to a helper share a kept connection (no TCP connection and TLS handshake per job), and a kept connection
/// the helper has dropped is replaced without a failure: the job still compiles there.
@Suite(.serialized) struct HelperConnectionTests {
    @Test func jobsToOneHelperShareAConnectionAndARestartedHelperGetsANewOne() throws {
        let cluster = try TestCluster(helpers: 1)
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        func compile(_ n: Int) throws {
            let argv = ["gcc", "-Iinclude", "-O\(n % 3)", "-c", "src/hello.c", "-o", "build/hello\(n).o"]
            let plain = try runCompile(argv, in: project, outputs: ["build/hello\(n).o"])
            let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/hello\(n).o"],
                                          environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
            #expect(launched == plain && plain.status == 0, "\(argv): \(launched.stderr)")
        }
        /// The client's stats once the connection count has settled (it is counted just after the connection opens).
        func settledStats(connections: Int) throws -> [String: Any] {
            var stats: [String: Any] = [:]
            for _ in 0..<40 {
                stats = try cluster.stats()
                if stats["helper_connections"] as? Int == connections { break }
                usleep(50_000)
            }
            return stats
        }
        for n in 0..<4 { try compile(n) }
        var stats = try settledStats(connections: 1)
        #expect(stats["remote"] as? Int == 4, "\(stats)")
        #expect(stats["helper_connections"] as? Int == 1, "four jobs one after another: \(stats)")

        // The helper killed and started again: the kept connection is gone; the next job opens a new one.
        try cluster.restartHelper("helper1", signal: SIGKILL)
        try compile(4)
        stats = try settledStats(connections: 2)
        #expect(stats["remote"] as? Int == 5, "\(stats)")
        #expect(stats["helper_failures"] as? Int == 0, "\(stats)")
        #expect(stats["fallback"] as? Int == 0, "\(stats)")
        #expect(stats["helper_connections"] as? Int == 2, "\(stats)")
    }
}
