import Foundation
import SystemSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// swlaunchd as an unprivileged user, as the systemd unit runs it: it still sandboxes and compiles for peers
/// (bubblewrap with unprivileged user namespaces), and its results are the same.
@Suite(.serialized, .enabled(if: getuid() == 0 && Posix.isExecutableFile("/usr/bin/setpriv"), "needs root to start a daemon as another user"))
struct UnprivilegedHelperTests {
    static let cluster: Result<TestCluster, any Error> = Result {
        try TestCluster(helpers: 1, helperPrefix: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
                        sharedDirectory: true)
    }

    @Test func anUnprivilegedHelperCompilesInItsSandbox() throws {
        let cluster = try Self.cluster.get()
        guard let pid = cluster.pids["helper1"] else { Issue.record("no helper"); return }
        let status = String(decoding: Posix.readFile("/proc/\(pid)/status") ?? [], as: UTF8.self)
        #expect(status.split(separator: "\n").contains { $0.hasPrefix("Uid:") && $0.split(separator: "\t").dropFirst().allSatisfy { $0 == "65534" } },
                "\(status)")
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        let argv = ["g++", "-g", "-O1", "-Iinclude", "-MD", "-c", "src/app.cpp", "-o", "build/app.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/app.o", "build/app.d"])
        let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/app.o", "build/app.d"],
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(launched == plain)
        #expect(try cluster.stats()["remote"] as? Int == 1, "\(cluster.log("helper1").suffix(2000))")
    }
}
