import Foundation
import Records
import SystemSupport
import Testing

/// `swlaunch make` on a real Makefile project through a real cluster: $(CC) reaches the launcher through the
/// masquerade directory, the job count comes from the cluster, and the objects are those of a plain make.
@Suite(.serialized) struct WrapperTests {
    static let makefile = """
        OBJS = one.o two.o three.o
        prog: $(OBJS)
        \t$(CC) -o $@ $(OBJS)
        %.o: %.c
        \t$(CC) -O2 -c $< -o $@

        """

    func project(_ directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Self.makefile.write(toFile: directory + "/Makefile", atomically: true, encoding: .utf8)
        for (i, name) in ["one", "two", "three"].enumerated() {
            let main = name == "one" ? "int two(void); int three(void); int main(void) { return two() + three() - 5; }\n" : ""
            try (main + "int \(name)(void) { return \(i + 1); }\n").write(toFile: directory + "/\(name).c", atomically: true, encoding: .utf8)
        }
    }

    @Test func makeGoesThroughTheClusterWithACountFromIt() throws {
        let cluster = try TestCluster(helpers: 2)
        let plain = cluster.directory + "/plain", wrapped = cluster.directory + "/wrapped"
        try project(plain)
        try project(wrapped)
        #expect(try runCompile(["make"], in: plain, outputs: []).status == 0)
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket, "XDG_CACHE_HOME": cluster.directory + "/cache", "MAKEFLAGS": "-l1"]
        _ = try cluster.ask(.statsRequest(reset: true))
        let run = try runCompile([cluster.binaries + "/swlaunch", "make"], in: wrapped, outputs: [], environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        // Two helpers of two slots each, all free, plus this machine's cores (its cgroup's share); colcon's kind of
        // load limit dropped.
        let line = run.stderr.split(separator: "\n").first { $0.hasPrefix("swlaunch make: -j") }.map(String.init) ?? ""
        let cores = line.components(separatedBy: " + ").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? 0
        #expect(cores >= 1 && line == "swlaunch make: -j\(4 + cores): 4 free remote slots on 2 helper(s) + \(cores) local core(s); dropped the load limit -l1 from MAKEFLAGS", "\(run.stderr)")
        let stats = try cluster.stats()
        #expect(stats["remote"] as? Int == 3, "\(stats)")
        for object in ["one.o", "two.o", "three.o"] {
            let same = Posix.readFile(plain + "/" + object) == Posix.readFile(wrapped + "/" + object)
            #expect(same, "\(object) differs from plain make's")
        }
        #expect(Posix.isExecutableFile(wrapped + "/prog"))

        // The user's own -j is kept, and said so.
        try FileManager.default.removeItem(atPath: wrapped + "/prog")
        for object in ["one.o", "two.o", "three.o"] { try? FileManager.default.removeItem(atPath: wrapped + "/" + object) }
        let own = try runCompile([cluster.binaries + "/swlaunch", "make", "-j1"], in: wrapped, outputs: [], environment: environment)
        #expect(own.status == 0 && own.stderr.contains("swlaunch make: -j1 as given"), "\(own.stderr)")

        // The launcher given a masquerade link as its compiler (CMake found it on PATH) does not wrap twice.
        let masquerade = try #require(try FileManager.default.contentsOfDirectory(atPath: cluster.directory + "/cache/swlaunch").first)
        let twice = try runCompile([cluster.binaries + "/swlaunch", cluster.directory + "/cache/swlaunch/\(masquerade)/cc", "-O2", "-c", "one.c", "-o", "twice.o"],
                                   in: wrapped, outputs: ["twice.o"], environment: environment)
        #expect(twice.status == 0 && twice.files["twice.o"] == Posix.readFile(plain + "/one.o"), "\(twice.stderr)")
    }
}

/// `swlaunch colcon build` on a real colcon workspace of two CMake packages through a real cluster.
@Suite(.serialized, .enabled(if: Posix.isExecutableFile("/usr/bin/colcon"), "needs colcon (apt-get install colcon python3-colcon-cmake)"))
struct ColconWrapperTests {
    func workspace(_ root: String) throws {
        for package in ["alpha", "beta"] {
            let directory = root + "/src/" + package
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try """
                cmake_minimum_required(VERSION 3.10)
                project(\(package) CXX)
                add_library(\(package) STATIC one.cpp two.cpp)
                install(TARGETS \(package) ARCHIVE DESTINATION lib)

                """.write(toFile: directory + "/CMakeLists.txt", atomically: true, encoding: .utf8)
            for (i, file) in ["one", "two"].enumerated() {
                try "#include <string>\nstd::string \(package)_\(file)() { return std::to_string(\(i)); }\n"
                    .write(toFile: directory + "/\(file).cpp", atomically: true, encoding: .utf8)
            }
        }
    }

    @Test func everyPackageCompilesThroughTheClusterWithTheChosenCount() throws {
        let cluster = try TestCluster(helpers: 2)
        let plain = cluster.directory + "/plain", wrapped = cluster.directory + "/wrapped"
        try workspace(plain)
        try workspace(wrapped)
        let quiet = ["--event-handlers", "console_direct-"]
        #expect(try runCompile(["colcon", "build"] + quiet, in: plain, outputs: []).status == 0)
        _ = try cluster.ask(.statsRequest(reset: true))
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket, "XDG_CACHE_HOME": cluster.directory + "/cache"]
        let run = try runCompile([cluster.binaries + "/swlaunch", "colcon", "build"] + quiet, in: wrapped, outputs: [], environment: environment)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("free remote slots on 2 helper(s)") && run.stderr.contains("for each package"), "\(run.stderr)")
        let stats = try cluster.stats()
        #expect(stats["remote"] as? Int == 4, "\(stats)")
        // colcon's own -j/-l stayed out: each package's build ran with the wrapper's MAKEFLAGS.
        let log = (try? String(contentsOfFile: wrapped + "/log/latest_build/alpha/command.log", encoding: .utf8)) ?? ""
        #expect(log.contains("--build") && !log.contains(" -l"), "\(log)")
        for package in ["alpha", "beta"] {
            let library = "/install/\(package)/lib/lib\(package).a"
            let same = Posix.readFile(plain + library) == Posix.readFile(wrapped + library)
            #expect(same, "\(library) differs from plain colcon's")
        }
    }
}

extension ColconWrapperTests {
    /// The loop the wrapper and `swlaunch ninjalog` close: a wrapped build records its count, ninjalog reads the
    /// workspace, sets the count beside its recommendation and stores it in the workspace's swlaunch.toml, and the
    /// next wrapped build runs at the stored count.
    @Test(.enabled(if: Posix.isExecutableFile("/usr/bin/ninja"), "needs ninja"))
    func theSecondBuildRunsAtTheCountNinjalogStored() throws {
        let cluster = try TestCluster(helpers: 2)
        let ws = cluster.directory + "/ws"
        try workspace(ws)
        let build = [cluster.binaries + "/swlaunch", "colcon", "build", "--event-handlers", "console_direct-", "--cmake-args", "-G", "Ninja"]
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket, "XDG_CACHE_HOME": cluster.directory + "/cache"]
        let first = try runCompile(build, in: ws, outputs: [], environment: environment)
        #expect(first.status == 0, "\(first.stderr)")
        let record = try #require(Posix.readFile(ws + "/build/" + WrapRecord.fileName).flatMap { try? RecordJSON.decode(WrapRecord.self, from: $0) })
        #expect(record.tool == "colcon" && record.jobs != nil && record.workers != nil && record.reason.contains("free remote slots"), "\(record)")

        let report = try runCompile([cluster.binaries + "/swlaunch", "ninjalog", ws, "--write", "--slots", "4", "--client-cpus", "1", "--json"],
                                    in: ws, outputs: [], environment: environment)
        #expect(report.status == 0, "\(report.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any])
        let wrapper = try #require(object["wrapper"] as? [String: Any])
        #expect(wrapper["jobs"] as? Int == record.jobs && wrapper["workers"] as? Int == record.workers, "\(wrapper)")
        let recommended = try #require(object["recommended_jobs"] as? Int)
        let stored = try String(contentsOfFile: ws + "/swlaunch.toml", encoding: .utf8)
        #expect(stored.contains("count = \(recommended)"), "\(stored)")

        try FileManager.default.removeItem(atPath: ws + "/build")
        try FileManager.default.removeItem(atPath: ws + "/install")
        let second = try runCompile(build, in: ws, outputs: [], environment: environment)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("-j\(recommended) from jobs.count (\(Posix.realPath(ws) ?? ws)/swlaunch.toml"), "\(second.stderr)")
        let again = try #require(Posix.readFile(ws + "/build/" + WrapRecord.fileName).flatMap { try? RecordJSON.decode(WrapRecord.self, from: $0) })
        #expect(again.jobs == recommended)
        // The text report says both.
        let text = try runCompile([cluster.binaries + "/swlaunch", "ninjalog", ws, "--slots", "4", "--client-cpus", "1"], in: ws, outputs: [],
                                  environment: environment)
        #expect(text.stdout.contains("ran with: -j\(recommended) per package") && text.stdout.contains("recommended: -j"), "\(text.stdout)")
    }
}

/// ccache in front of swlaunch: its misses go to the cluster through CCACHE_PREFIX, its hits cost nothing remote,
/// and `swlaunch ccache gcc` does not wrap twice.
@Suite(.serialized, .enabled(if: Posix.isExecutableFile("/usr/bin/ccache"), "needs ccache (apt-get install ccache)"))
struct CcacheTests {
    @Test func missesGoRemoteAndHitsStayLocal() throws {
        let cluster = try TestCluster(helpers: 1)
        let project = cluster.directory + "/project"
        try makeProject(in: project)
        let argv = ["gcc", "-Iinclude", "-O2", "-c", "src/hello.c", "-o", "build/hello.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/hello.o"])
        _ = try cluster.ask(.statsRequest(reset: true))
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket, "CCACHE_DIR": cluster.directory + "/ccache"]
        // ccache with swlaunch as its prefix, as CCACHE_PREFIX=swlaunch users set it up.
        let prefixed = try runCompile(["/usr/bin/ccache"] + argv, in: project, outputs: ["build/hello.o"],
                                      environment: environment.merging(["CCACHE_PREFIX": cluster.binaries + "/swlaunch"]) { $1 })
        #expect(prefixed == plain)
        #expect(try cluster.stats()["remote"] as? Int == 1, "the miss did not go to the cluster: \((try? cluster.stats()) ?? [:])")
        // swlaunch in front of ccache: ccache runs first, a hit now, nothing remote.
        let hit = try runCompile([cluster.binaries + "/swlaunch", "ccache"] + argv, in: project, outputs: ["build/hello.o"], environment: environment)
        #expect(hit == plain)
        #expect(try cluster.stats()["remote"] as? Int == 1, "a ccache hit went remote")
        // Another source through `swlaunch ccache`: a miss, handed back to swlaunch once, compiled remote once.
        let other = ["gcc", "-Iinclude", "-O1", "-c", "src/hello.c", "-o", "build/other.o"]
        let otherPlain = try runCompile(other, in: project, outputs: ["build/other.o"])
        let miss = try runCompile([cluster.binaries + "/swlaunch", "ccache"] + other, in: project, outputs: ["build/other.o"], environment: environment)
        #expect(miss == otherPlain)
        let stats = try cluster.stats()
        #expect(stats["remote"] as? Int == 2 && stats["fallback"] as? Int == 0, "\(stats)")
    }
}

/// A daemon that a make recipe starts does not keep the build's jobserver: the descriptors MAKEFLAGS names are closed
/// at start (and MAKEFLAGS is dropped from its environment, so its compiles do not see it).
@Test func aDaemonStartedUnderMakeDropsTheJobserver() throws {
    var fds: [Int32] = [0, 0]
    #expect(pipe(&fds) == 0)  // without close-on-exec: inherited, as make's jobserver pipe is
    defer { close(fds[0]); close(fds[1]) }
    let directory = NSTemporaryDirectory() + "swlaunch-jobserver-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    var environment = ProcessInfo.processInfo.environment
    environment["MAKEFLAGS"] = " -j4 --jobserver-auth=\(fds[0]),\(fds[1])"
    let daemon = TestCluster.builtBinaries() + "/swlaunchd"
    guard let pid = Spawn.start(daemon, [daemon, "--no-remote", "--socket", directory + "/d.sock", "--state-dir", directory + "/state"],
                                stdoutPath: directory + "/out", stderrPath: directory + "/err",
                                environment: environment.map { "\($0.key)=\($0.value)" }) else {
        Issue.record("cannot start swlaunchd"); return
    }
    defer { kill(pid, SIGKILL); _ = Spawn.wait(pid) }
    for _ in 0..<100 where !Posix.fileExists(directory + "/d.sock") { usleep(50_000) }
    #expect(Posix.fileExists(directory + "/d.sock"), "\(String(decoding: Posix.readFile(directory + "/err") ?? [], as: UTF8.self))")
    // The daemon's own descriptors may take the same numbers again: compare what they are, not their numbers.
    func target(_ link: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        let n = readlink(link, &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil
    }
    let pipeInode = try #require(target("/proc/self/fd/\(fds[0])"))
    let held = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { target("/proc/\(pid)/fd/" + $0) }
    #expect(pipeInode.hasPrefix("pipe:") && !held.contains(pipeInode), "the daemon still holds the jobserver pipe \(pipeInode)")
}
