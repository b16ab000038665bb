import Foundation
import SystemSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The helper here cannot use its own compiler: it runs in a mount namespace where gcc's programs
/// (/usr/lib/gcc) are an empty folder. Compiles still work and match, because helpers run the
/// environment shipped by the client, never their own /usr/bin compiler.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root for a mount namespace"))
struct ShippedEnvironmentTests {
    static let hide = ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                       "mount -t tmpfs swlaunch-test-hidden /usr/lib/gcc && exec \"$@\"", "sh"]
    static let cluster: Result<TestCluster, any Error> = Result { try TestCluster(helpers: 1, helperPrefix: hide) }

    @Test func helperCompilesWithTheShippedEnvironmentOnly() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        // The control: in such a namespace the helper's own gcc cannot compile.
        let own = try runCompile(Self.hide + ["/usr/bin/gcc", "-c", "src/hello.c", "-Iinclude", "-o", "build/own.o"], in: project, outputs: ["build/own.o"])
        #expect(own.status != 0)
        #expect(own.stderr.contains("cc1"))

        let argv = ["g++", "-g", "-O1", "-Iinclude", "-MD", "-c", "src/app.cpp", "-o", "build/app.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/app.o", "build/app.d"])
        let before = try cluster.stats()["remote"] as? Int ?? 0
        let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/app.o", "build/app.d"],
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(launched == plain)
        #expect(try cluster.stats()["remote"] as? Int == before + 1, "\(cluster.log("helper1"))")
        #expect(cluster.log("helper1").contains("received toolchain environment"))
    }
}

/// Jobs that need the same missing environment at once fetch it once.
@Suite(.serialized)
struct EnvironmentTransferTests {
    static let cluster: Result<TestCluster, any Error> = Result { try TestCluster(helpers: 1) }

    @Test func concurrentJobsFetchTheEnvironmentOnce() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        var env = ProcessInfo.processInfo.environment
        env["SWLAUNCH_SOCKET"] = cluster.clientSocket
        let pids = try (0..<4).map { i -> pid_t in
            let argv = [cluster.binaries + "/swlaunch", "gcc", "-Iinclude", "-DN=\(i)", "-c", "src/hello.c", "-o", "build/p\(i).o"]
            guard let pid = Spawn.start(argv[0], argv, stdoutPath: "/dev/null", stderrPath: cluster.directory + "/p\(i).err",
                                        environment: env.map { "\($0.key)=\($0.value)" }, workingDirectory: project) else {
                throw TestClusterError("cannot start the launcher")
            }
            return pid
        }
        for pid in pids { #expect(Spawn.wait(pid) == 0) }
        #expect(try cluster.stats()["remote"] as? Int == 4)
        let log = cluster.log("helper1")
        #expect(log.components(separatedBy: "received toolchain environment").count - 1 == 1, "\(log)")
        #expect(cluster.log("client").components(separatedBy: "packing toolchain environment").count - 1 == 1)
    }
}
