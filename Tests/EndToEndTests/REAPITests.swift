import Foundation
import Launch
import SystemSupport
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A real BuildGrid (scripts/buildgrid.sh: BuildGrid 0.9.1 on PostgreSQL) with swlaunchd workers serving its
/// Remote Workers API, and swlaunchd clients sending jobs to it (`--reapi`).
final class BuildGridLab: @unchecked Sendable {
    let directory: String
    let port: Int
    let binaries = TestCluster.builtBinaries()
    var pids: [String: pid_t] = [:]
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/buildgrid.sh").path

    init(workers: Int) throws {
        let directory = NSTemporaryDirectory() + "swlaunch-reapi-" + UUID().uuidString.prefix(8)
        self.directory = directory
        port = TestCluster.freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        scratchDirectories.withLock { $0.append(directory) }
        try Self.buildGrid(["up", directory + "/buildgrid", String(port)])
        for i in 1...workers { try startWorker(i) }
    }

    static func buildGrid(_ arguments: [String]) throws {
        let log = NSTemporaryDirectory() + "buildgrid-sh-" + UUID().uuidString.prefix(8)
        defer { unlink(log) }
        guard Spawn.run("/bin/bash", ["bash", script] + arguments, stdoutPath: log, stderrPath: log) == 0 else {
            throw TestClusterError("scripts/buildgrid.sh \(arguments.joined(separator: " ")) failed:\n"
                                   + String(decoding: Posix.readFile(log) ?? [], as: UTF8.self))
        }
    }

    func startWorker(_ i: Int) throws {
        try start("worker\(i)", ["--name", "worker\(i)", "--no-remote", "--socket", directory + "/worker\(i).sock",
                                 "--state-dir", directory + "/state-worker\(i)", "--max-jobs", "2",
                                 "--reapi-worker", "127.0.0.1:\(port)", "--log-level", "debug"])
    }

    /// A client daemon sending its jobs to BuildGrid, with its own state (a clean machine).
    func startClient(_ name: String, cache: String = "read-write") throws -> String {
        let socket = directory + "/\(name).sock"
        try start(name, ["--name", name, "--no-remote", "--socket", socket, "--state-dir", directory + "/state-\(name)",
                         "--reapi", "127.0.0.1:\(port)", "--cache", cache, "--log-level", "debug"])
        for _ in 0..<100 where !Posix.fileExists(socket) { usleep(50_000) }
        return socket
    }

    func start(_ name: String, _ arguments: [String]) throws {
        guard let pid = Spawn.start(binaries + "/swlaunchd", [binaries + "/swlaunchd"] + arguments, stdoutPath: directory + "/\(name).out",
                                    stderrPath: directory + "/\(name).log") else { throw TestClusterError("cannot start swlaunchd") }
        pids[name] = pid
        startedProcesses.withLock { $0.append(pid) }
        registerCleanupOnce
    }

    func stop(_ name: String, signal: Int32 = SIGTERM) {
        guard let pid = pids.removeValue(forKey: name) else { return }
        kill(pid, signal)
        _ = Spawn.wait(pid)
        startedProcesses.withLock { $0.removeAll { $0 == pid } }
    }

    func log(_ name: String) -> String { (try? String(contentsOfFile: directory + "/\(name).log", encoding: .utf8)) ?? "" }

    /// The number of compiles the workers ran (their "action compiled" lines).
    func actionsCompiled() -> Int {
        pids.keys.filter { $0.hasPrefix("worker") }.reduce(0) { $0 + log($1).components(separatedBy: "action compiled").count - 1 }
    }

    /// A client daemon's stats (`swlaunch stats --json`).
    func stats(_ socket: String) throws -> [String: Any] {
        let connection = try DaemonConnection(path: socket, role: .tool, timeoutSeconds: 10)
        try connection.send(.statsRequest(reset: false))
        guard case let .stats(json) = try connection.receive() else { throw TestClusterError("no stats from \(socket)") }
        return try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
    }

    deinit {
        for name in Array(pids.keys) { stop(name) }
        try? Self.buildGrid(["down", directory + "/buildgrid"])
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Jobs sent to a REAPI service (issue 14): identical objects and diagnostics, the action cache shared by a
/// second clean client, and local compiles while the service is down.
@Suite(.serialized) struct REAPITests {
    static let argvs: [[String]] = [
        ["gcc", "-Iinclude", "-g", "-O1", "-c", "src/hello.c", "-o", "build/hello.o"],
        ["g++", "-Iinclude", "-g", "-O2", "-std=c++17", "-include", "include/pre.h", "-c", "src/app.cpp", "-o", "build/app.o"],
        ["gcc", "-Wall", "-c", "src/warn.c", "-o", "build/warn.o"],
    ]

    static func compileAll(_ project: String, socket: String?, binaries: String) throws -> [CompileOutcome] {
        try argvs.map { argv in
            try runCompile(socket == nil ? argv : [binaries + "/swlaunch"] + argv, in: project, outputs: [argv.last!],
                           environment: socket.map { ["SWLAUNCH_SOCKET": $0] } ?? [:])
        }
    }

    @Test func remoteObjectsMatchAndASecondCleanClientIsServedFromTheCache() throws {
        let lab = try BuildGridLab(workers: 2)
        let project = lab.directory + "/project"
        try makeProject(in: project)
        let plain = try Self.compileAll(project, socket: nil, binaries: lab.binaries)
        #expect(plain.allSatisfy { $0.status == 0 && $0.files.count == 1 })
        #expect(plain[2].stderr.contains("warning"), "the warning case must warn: \(plain[2].stderr)")

        // The first client: every job executes on a worker, nothing from the cache.
        let first = try lab.startClient("client1")
        // Its native toolchain is packed on first use (those first compiles run locally): wait until it is.
        var remote = 0
        for _ in 0..<60 where remote == 0 {
            _ = try runCompile([lab.binaries + "/swlaunch", "gcc", "-c", "src/hello.c", "-Iinclude", "-o", "build/warm.o"], in: project,
                               outputs: ["build/warm.o"], environment: ["SWLAUNCH_SOCKET": first])
            remote = try lab.stats(first)["remote"] as? Int ?? 0
            if remote == 0 { usleep(500_000) }
        }
        #expect(remote == 1, "no job reached BuildGrid: \(String(lab.log("client1").suffix(2000)))")
        let compiledBefore = lab.actionsCompiled()
        let remoteRun = try Self.compileAll(project, socket: first, binaries: lab.binaries)
        #expect(remoteRun == plain)
        let stats = try lab.stats(first)
        #expect(stats["remote"] as? Int == 1 + Self.argvs.count, "\(stats)")
        #expect(stats["cache_hits"] as? Int == 0)
        #expect(lab.actionsCompiled() == compiledBefore + Self.argvs.count)

        // A compile error: the same diagnostics and exit status, run once remotely, never again locally.
        let broken = project + "/src/broken.c"
        try "int broken(void) { return undefined_name; }\n".write(toFile: broken, atomically: true, encoding: .utf8)
        let errorArgv = ["gcc", "-c", "src/broken.c", "-o", "build/broken.o"]
        let localError = try runCompile(errorArgv, in: project, outputs: ["build/broken.o"])
        let remoteError = try runCompile([lab.binaries + "/swlaunch"] + errorArgv, in: project, outputs: ["build/broken.o"],
                                         environment: ["SWLAUNCH_SOCKET": first])
        #expect(localError.status == 1 && remoteError == localError)
        #expect(try lab.stats(first)["fallback"] as? Int == 0)

        // A second machine with nothing of its own: the same sources come from the action cache.
        let second = try lab.startClient("client2")
        let compiledBeforeSecond = lab.actionsCompiled()
        var cached: [CompileOutcome] = []
        for _ in 0..<60 {
            cached = try Self.compileAll(project, socket: second, binaries: lab.binaries)
            if try lab.stats(second)["remote"] as? Int ?? 0 > 0 { break }
            usleep(500_000)
        }
        #expect(cached == plain)
        let again = try Self.compileAll(project, socket: second, binaries: lab.binaries)
        #expect(again == plain)
        let secondStats = try lab.stats(second)
        #expect(secondStats["cache_hits"] as? Int ?? 0 >= Self.argvs.count, "\(secondStats)")
        #expect(lab.actionsCompiled() == compiledBeforeSecond, "the second client's jobs ran again instead of coming from the cache")

        // A read-only client (`--cache read`) that compiles something new: it runs, and is not cached.
        let reader = try lab.startClient("reader", cache: "read")
        try "int fresh(void) { return 7; }\n".write(toFile: project + "/src/fresh.c", atomically: true, encoding: .utf8)
        let freshArgv = ["gcc", "-O2", "-c", "src/fresh.c", "-o", "build/fresh.o"]
        let freshPlain = try runCompile(freshArgv, in: project, outputs: ["build/fresh.o"])
        var freshRemote: CompileOutcome?
        for _ in 0..<60 {
            freshRemote = try runCompile([lab.binaries + "/swlaunch"] + freshArgv, in: project, outputs: ["build/fresh.o"],
                                         environment: ["SWLAUNCH_SOCKET": reader])
            if try lab.stats(reader)["remote"] as? Int ?? 0 > 0 { break }
            usleep(500_000)
        }
        #expect(freshRemote == freshPlain)
        let compiledBeforeThird = lab.actionsCompiled()
        _ = try runCompile([lab.binaries + "/swlaunch"] + freshArgv, in: project, outputs: ["build/fresh.o"], environment: ["SWLAUNCH_SOCKET": second])
        #expect(lab.actionsCompiled() == compiledBeforeThird + 1, "a read-only client's execution was cached")
    }

    @Test func aStoppedServiceMeansLocalCompilesAndARestartedOneIsUsedAgain() throws {
        let lab = try BuildGridLab(workers: 1)
        let project = lab.directory + "/project"
        try makeProject(in: project)
        let plain = try Self.compileAll(project, socket: nil, binaries: lab.binaries)
        let client = try lab.startClient("client", cache: "off")
        for _ in 0..<60 where try lab.stats(client)["remote"] as? Int ?? 0 == 0 {
            _ = try Self.compileAll(project, socket: client, binaries: lab.binaries)
            usleep(300_000)
        }
        try BuildGridLab.buildGrid(["stop-server", lab.directory + "/buildgrid"])
        let before = try lab.stats(client)
        let down = try Self.compileAll(project, socket: client, binaries: lab.binaries)
        #expect(down == plain)
        let during = try lab.stats(client)
        #expect(during["fallback"] as? Int == (before["fallback"] as? Int ?? 0) + Self.argvs.count, "\(during)")

        try BuildGridLab.buildGrid(["start-server", lab.directory + "/buildgrid"])
        var up: [CompileOutcome] = []
        var after: [String: Any] = [:]
        for _ in 0..<40 {
            up = try Self.compileAll(project, socket: client, binaries: lab.binaries)
            after = try lab.stats(client)
            if after["remote"] as? Int ?? 0 >= (during["remote"] as? Int ?? 0) + Self.argvs.count { break }
            usleep(500_000)
        }
        #expect(up == plain)
        #expect(after["remote"] as? Int ?? 0 >= (during["remote"] as? Int ?? 0) + Self.argvs.count,
                "jobs did not reach the restarted BuildGrid: \(after)\n\(String(lab.log("client").suffix(2000)))")
    }
}
