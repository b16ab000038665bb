import Foundation
import SystemSupport
import Testing
import Toolchain
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

/// `[toolchains]` in the project's swlaunch.toml: the only helper announces another platform (aarch64-linux),
/// so the client's own compiler can never go there; with g++ mapped to an environment for that platform the
/// job runs remote in that environment (the helper's /usr/lib/gcc is hidden, as above), and an archive made
/// for another platform than the one it is listed for is refused with a reason.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root for a mount namespace"))
struct MappedEnvironmentTests {
    static let cluster: Result<TestCluster, any Error> = Result {
        try TestCluster(helpers: 1, helperPrefix: ShippedEnvironmentTests.hide, helperArguments: ["--platform", "aarch64-linux"])
    }

    @Test func jobsGoWhereAMappedEnvironmentRuns() throws {
        let cluster = try Self.cluster.get()
        _ = try cluster.ask(.statsRequest(reset: true))
        let project = cluster.directory + "/mapped"
        try makeProject(in: project)
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        let created = try runCompile([cluster.binaries + "/swlaunch", "env", "create", "--cc", "/usr/bin/gcc", "--cxx", "/usr/bin/g++",
                                      "--platform", "aarch64-linux", "-o", "envs/gnu.tar.zst"], in: project, outputs: [])
        #expect(created.status == 0, "\(created.stderr)")
        let id = String(created.stdout.prefix(64))
        #expect(created.stdout.contains("for aarch64-linux"))

        let argv = ["g++", "-g", "-O1", "-Iinclude", "-c", "src/app.cpp", "-o", "build/app.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/app.o"])
        // No mapping: no helper of this platform, so it compiles here.
        let unmapped = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/app.o"], environment: environment)
        #expect(unmapped == plain)
        var stats = try cluster.stats()
        #expect(stats["remote"] as? Int == 0)
        #expect((stats["fallback_reasons"] as? [String: Int])?["no-helper"] == 1)

        try "[toolchains]\n\"g++\" = { aarch64-linux = \"envs/gnu.tar.zst\" }\n".write(toFile: project + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let mapped = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/app.o"], environment: environment)
        #expect(mapped == plain)
        stats = try cluster.stats()
        #expect(stats["remote"] as? Int == 1, "\(cluster.log("client"))\n\(cluster.log("helper1"))")
        #expect(FileManager.default.fileExists(atPath: cluster.directory + "/state-helper1/environments/" + id))
        // The client journals the remote job for `swlaunch ninjalog`.
        let journal = try String(contentsOfFile: cluster.directory + "/state-client/jobs.jsonl", encoding: .utf8)
        let record = try #require(try JSONSerialization.jsonObject(with: Data(journal.utf8)) as? [String: Any])
        #expect(record["outputs"] as? [String] == [project + "/build/app.o"])
        #expect(record["host"] as? String == "helper1")
        #expect((record["compile_us"] as? Int ?? 0) > 0 && record["queue_us"] is Int)

        // Listed for the wrong platform: refused with the reason, compiled here.
        try "[toolchains]\n\"g++\" = { x86_64-linux = \"envs/gnu.tar.zst\" }\n".write(toFile: project + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let wrong = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/app.o"], environment: environment)
        #expect(wrong == plain)
        stats = try cluster.stats()
        #expect((stats["fallback_reasons"] as? [String: Int])?["bad-environment"] == 1)
        #expect(cluster.log("client").contains("runs on aarch64-linux, but [toolchains] lists it for x86_64-linux"))

        // Not an environment at all: refused the same way.
        try Data("not an archive".utf8).write(to: URL(fileURLWithPath: project + "/envs/bad.tar.zst"))
        try "[toolchains]\n\"g++\" = { aarch64-linux = \"envs/bad.tar.zst\" }\n".write(toFile: project + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let corrupt = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/app.o"], environment: environment)
        #expect(corrupt == plain)
        #expect((try cluster.stats()["fallback_reasons"] as? [String: Int])?["bad-environment"] == 2)
        #expect(cluster.log("client").contains("envs/bad.tar.zst: "))
    }

    /// A stand-in compiler: g++ mapped to an environment whose compiler is another driver
    /// (`x86_64-linux-gnu-g++`, as an x86_64 cross compiler would stand in for an ARM Pi's native g++). It runs
    /// against the client's headers (the client's folders named with -isystem ahead of its own, so that its
    /// implicit stdc-predef.h is the client's), and its dependency file is the client compiler's: objects and .d
    /// files match a plain compile.
    @Test func standInCompilerUsesTheClientsHeaders() throws {
        let cluster = try Self.cluster.get()
        _ = try cluster.ask(.statsRequest(reset: true))
        let project = cluster.directory + "/standin"
        try makeProject(in: project)
        // Compiles differently when the stdc-predef.h preinclude is missing (the test comes before any include).
        try "#ifdef __STDC_ISO_10646__\nint iso = 1;\n#else\nint iso = 0;\n#endif\n#include <stdio.h>\n"
            .write(toFile: project + "/src/iso.c", atomically: true, encoding: .utf8)
        let created = try runCompile([cluster.binaries + "/swlaunch", "env", "create", "--cc", "/usr/bin/x86_64-linux-gnu-gcc",
                                      "--cxx", "/usr/bin/x86_64-linux-gnu-g++", "--platform", "aarch64-linux", "-o", "envs/standin.tar.zst",
                                      "--stand-in-for", "g++", "--stand-in-for", "gcc"],
                                     in: project, outputs: [])
        #expect(created.status == 0, "\(created.stderr)")
        try "[toolchains]\n\"g++\" = { aarch64-linux = \"envs/standin.tar.zst\" }\ngcc = { aarch64-linux = \"envs/standin.tar.zst\" }\n"
            .write(toFile: project + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        let compiles: [([String], [String])] = [
            (["g++", "-g", "-O1", "-Iinclude", "-MD", "-MT", "build/app.o", "-MF", "build/app.o.d", "-c", "src/app.cpp", "-o", "build/app.o"],
             ["build/app.o", "build/app.o.d"]),
            (["gcc", "-g", "-Iinclude", "-MMD", "-MP", "-c", "src/iso.c", "-o", "build/iso.o"], ["build/iso.o", "build/iso.d"]),
            (["gcc", "-O2", "-MD", "-c", "src/iso.c"], ["iso.o", "iso.d"]),
        ]
        for (argv, outputs) in compiles {
            let plain = try runCompile(argv, in: project, outputs: outputs)
            #expect(plain.status == 0 && plain.files.count == outputs.count, "\(plain.stderr)")
            let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: outputs, environment: environment)
            #expect(launched == plain, "\(argv)")
        }
        #expect(try cluster.stats()["remote"] as? Int == compiles.count, "\(cluster.log("client"))")
        // Inputs from the daemon's scan (or, for a source scanned before with the same folders, its warm result), and
        // each .d file (compared above) is the stand-in's own.
        let scans = try cluster.stats()["input_scans"] as? [String: Int] ?? [:]
        #expect(scans["daemon", default: 0] + scans["warm", default: 0] == compiles.count && scans["compiler"] == nil, "\(scans)")
        #expect(cluster.log("client").contains("runs=/usr/bin/x86_64-linux-gnu-g++"))
    }

    /// A stand-in is checked against the client's compiler as it is now: one made for another gcc (the client's
    /// compiler upgraded since, modelled by the recorded identity) or made without --stand-in-for is refused with
    /// both named, and the compile goes on locally, identical.
    @Test func aStandInForAnotherCompilerIsRefused() throws {
        let cluster = try Self.cluster.get()
        _ = try cluster.ask(.statsRequest(reset: true))
        let project = cluster.directory + "/standin-refused"
        try makeProject(in: project)
        let created = try runCompile([cluster.binaries + "/swlaunch", "env", "create", "--cxx", "/usr/bin/x86_64-linux-gnu-g++",
                                      "--platform", "aarch64-linux", "-o", "envs/good.tar.zst", "--stand-in-for", "g++"], in: project, outputs: [])
        #expect(created.status == 0, "\(created.stderr)")
        let unpacked = cluster.directory + "/standin-unpacked"
        let (manifest, toolchain) = try EnvironmentArchive.unpack(project + "/envs/good.tar.zst", into: unpacked)
        var upgraded = manifest
        upgraded.standsInFor[0].identity.version = "11.3.0"
        try EnvironmentArchive.write(toolchain, manifest: upgraded, to: project + "/envs/upgraded.tar.zst", sourceRoot: unpacked)
        var unchecked = manifest
        unchecked.standsInFor = []
        try EnvironmentArchive.write(toolchain, manifest: unchecked, to: project + "/envs/unchecked.tar.zst", sourceRoot: unpacked)

        let argv = ["g++", "-O1", "-Iinclude", "-c", "src/app.cpp", "-o", "build/app.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/app.o"])
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        for archive in ["upgraded", "unchecked"] {
            try "[toolchains]\n\"g++\" = { aarch64-linux = \"envs/\(archive).tar.zst\" }\n".write(toFile: project + "/swlaunch.toml", atomically: true, encoding: .utf8)
            let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/app.o"], environment: environment)
            #expect(launched == plain)
        }
        let stats = try cluster.stats()
        #expect(stats["remote"] as? Int == 0 && (stats["fallback_reasons"] as? [String: Int])?["bad-environment"] == 2, "\(stats)")
        let log = cluster.log("client")
        #expect(log.contains("x86_64-linux-gnu-g++ was made to stand in for gcc 11.3.0 for x86_64-linux-gnu") && log.contains("version 11.3.0 against"),
                "\(log.suffix(2000))")
        #expect(log.contains("was not made for it: create it with `swlaunch env create --stand-in-for g++"), "\(log.suffix(2000))")

        // doctor says the same, and accepts the good one.
        try "[toolchains]\n\"g++\" = { aarch64-linux = \"envs/upgraded.tar.zst\" }\ngcc = { aarch64-linux = \"envs/unchecked.tar.zst\" }\n"
            .write(toFile: project + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let doctor = try runCompile([cluster.binaries + "/swlaunch", "doctor"], in: project, outputs: [], environment: environment)
        #expect(doctor.status == 1 && doctor.stdout.contains("FAIL   toolchain g++ on aarch64-linux: /usr/bin/x86_64-linux-gnu-g++ was made to stand in for gcc 11.3.0")
                && doctor.stdout.contains("FAIL   toolchain gcc on aarch64-linux"), "\(doctor.stdout)")
        try "[toolchains]\n\"g++\" = { aarch64-linux = \"envs/good.tar.zst\" }\n".write(toFile: project + "/swlaunch.toml", atomically: true, encoding: .utf8)
        let good = try runCompile([cluster.binaries + "/swlaunch", "doctor"], in: project, outputs: [], environment: environment)
        #expect(good.stdout.contains("ok     toolchain g++ on aarch64-linux: /usr/bin/x86_64-linux-gnu-g++ stands in for /usr/bin/g++"), "\(good.stdout)")
    }

    /// Real cross compilers that differ in their target defaults (Debian's armel and armhf): env create refuses the
    /// pair, naming both and the differences.
    @Test(.enabled(if: Posix.isExecutableFile("/usr/bin/arm-linux-gnueabihf-g++") && Posix.isExecutableFile("/usr/bin/arm-linux-gnueabi-g++"),
                   "needs g++-arm-linux-gnueabihf and g++-arm-linux-gnueabi"))
    func envCreateRefusesAPairThatGeneratesOtherCode() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/standin-pairs"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        let refused = try runCompile([cluster.binaries + "/swlaunch", "env", "create", "--cxx", "/usr/bin/arm-linux-gnueabi-g++",
                                      "--stand-in-for", "arm-linux-gnueabihf-g++", "-o", "envs/armel.tar.zst"], in: project, outputs: [])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("/usr/bin/arm-linux-gnueabi-g++ (gcc ") && refused.stderr.contains("cannot stand in for /usr/bin/arm-linux-gnueabihf-g++")
                && refused.stderr.contains("target arm-linux-gnueabi against arm-linux-gnueabihf") && refused.stderr.contains("float"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: project + "/envs/armel.tar.zst"))
        let accepted = try runCompile([cluster.binaries + "/swlaunch", "env", "create", "--cxx", "/usr/bin/arm-linux-gnueabihf-g++",
                                       "--stand-in-for", "arm-linux-gnueabihf-g++", "-o", "envs/armhf.tar.zst"], in: project, outputs: [])
        #expect(accepted.status == 0, "\(accepted.stderr)")
    }
}
