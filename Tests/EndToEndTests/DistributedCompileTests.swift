import Foundation
import Launch
import Records
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A small C/C++ project with the shapes real builds have: include directories, forced includes,
/// a path with spaces, warnings and errors.
func makeProject(in root: String) throws {
    let files: [String: String] = [
        "include/config.h": "#pragma once\n#define ANSWER 42\n",
        "include/pre.h": "#define PRE_INCLUDED 1\n",
        "include/util.hpp": """
            #pragma once
            #include <string>
            #include <vector>
            namespace util { inline std::string join(const std::vector<std::string>& v) { std::string s; for (auto& x : v) s += x; return s; } }
            """,
        "src/hello.c": """
            #include <stdio.h>
            #include "config.h"
            #ifndef GREETING
            #define GREETING "hello"
            #endif
            int hello(void) { printf("%s %d\\n", GREETING, ANSWER); return ANSWER; }
            """,
        "src/app.cpp": """
            #include "util.hpp"
            #include <map>
            namespace { int hidden(int a) { return a * 2; } }
            static std::map<int, std::string> table{{1, "one"}};
            #ifdef PRE_INCLUDED
            int pre() { return PRE_INCLUDED; }
            #endif
            std::string app(int q) { return util::join({table[1], std::to_string(hidden(q))}); }
            """,
        "src/warn.c": """
            #define SQ(x) ((x) * (x))
            int f(int q) {
                int unused;
                return SQ(q) + (q == q);
            }
            int g(int q) { if (q) return 1; }
            """,
        "src/err_error.c": "#include \"config.h\"\nint a = ANSWER;\n#error this configuration is not supported\nint b = ;\n",
        "src/err_syntax.cpp": "#include <vector>\nstruct S { int x };\nint f() { std::vector<int> v; return v.size() + missing; }\n",
        "src with space/sp ace.c": "#include \"../include/config.h\"\nint spaced(void) { return ANSWER; }\n",
        "args.rsp": "-c src/hello.c -o build/rsp.o -Iinclude '-DGREETING=\"from rsp\"'\n",
    ]
    for (path, text) in files {
        let full = root + "/" + path
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }
    try FileManager.default.createDirectory(atPath: root + "/build", withIntermediateDirectories: true)
}

struct CompileScenario: Sendable, CustomTestStringConvertible {
    let name: String
    let argv: [String]
    let outputs: [String]
    var testDescription: String { name }
}

/// Output in another directory: written relative to the project, outside it.
let otherDirectory = "../other out"

let scenarios: [CompileScenario] = [
    CompileScenario(name: "C -O0 with -D and -I", argv: ["gcc", "-O0", "-Iinclude", "-DGREETING=\"hi\"", "-c", "src/hello.c", "-o", "build/hello.o"], outputs: ["build/hello.o"]),
    CompileScenario(name: "C -O2 -g", argv: ["gcc", "-O2", "-g", "-Iinclude", "-c", "src/hello.c", "-o", "build/hello.o"], outputs: ["build/hello.o"]),
    CompileScenario(name: "C++ -O2 with -include", argv: ["g++", "-O2", "-Iinclude", "-include", "include/pre.h", "-c", "src/app.cpp", "-o", "build/app.o"], outputs: ["build/app.o"]),
    CompileScenario(name: "C++ -g -O0 -MD without -MT", argv: ["g++", "-g", "-O0", "-Iinclude", "-MD", "-c", "src/app.cpp", "-o", "build/app.o"], outputs: ["build/app.o", "build/app.d"]),
    CompileScenario(name: "C -MMD with -MT and -MF", argv: ["gcc", "-Iinclude", "-MMD", "-MT", "custom-target", "-MF", "build/h.d", "-c", "src/hello.c", "-o", "build/hello.o"], outputs: ["build/hello.o", "build/h.d"]),
    CompileScenario(name: "C -MD with -MQ and -MP", argv: ["gcc", "-isystem", "include", "-MD", "-MP", "-MQ", "$weird target", "-c", "src/hello.c", "-o", "build/hello.o"], outputs: ["build/hello.o", "build/hello.d"]),
    CompileScenario(name: "C -MMD without -o", argv: ["gcc", "-Iinclude", "-MMD", "-c", "src/hello.c"], outputs: ["hello.o", "hello.d"]),
    CompileScenario(name: "warnings", argv: ["gcc", "-Wall", "-Wextra", "-O2", "-c", "src/warn.c", "-o", "build/warn.o"], outputs: ["build/warn.o"]),
    CompileScenario(name: "warnings in colour", argv: ["gcc", "-Wall", "-fdiagnostics-color=always", "-c", "src/warn.c", "-o", "build/warn.o"], outputs: ["build/warn.o"]),
    CompileScenario(name: "-Werror", argv: ["gcc", "-Wall", "-Werror", "-c", "src/warn.c", "-o", "build/warn.o"], outputs: ["build/warn.o"]),
    CompileScenario(name: "#error", argv: ["gcc", "-Iinclude", "-c", "src/err_error.c", "-o", "build/err.o"], outputs: ["build/err.o"]),
    CompileScenario(name: "C++ syntax errors", argv: ["g++", "-c", "src/err_syntax.cpp", "-o", "build/syntax.o"], outputs: ["build/syntax.o"]),
    CompileScenario(name: "response file", argv: ["gcc", "@args.rsp"], outputs: ["build/rsp.o"]),
    CompileScenario(name: "output in another directory", argv: ["gcc", "-Iinclude", "-MD", "-c", "src/hello.c", "-o", otherDirectory + "/hello.o"], outputs: [otherDirectory + "/hello.o", otherDirectory + "/hello.d"]),
    CompileScenario(name: "source path with spaces", argv: ["gcc", "-g", "-MD", "-c", "src with space/sp ace.c", "-o", "build/sp ace.o"], outputs: ["build/sp ace.o", "build/sp ace.d"]),
    CompileScenario(name: "absolute source path", argv: ["g++", "-O1", "-IPROJECT/include", "-c", "PROJECT/src/app.cpp", "-o", "build/abs.o"], outputs: ["build/abs.o"]),
]

let clangScenarios: [CompileScenario] = [
    CompileScenario(name: "clang C++ -g -O1 with libstdc++", argv: ["clang++", "-g", "-O1", "-Iinclude", "-c", "src/app.cpp", "-o", "build/app.o"], outputs: ["build/app.o"]),
    CompileScenario(name: "clang -MD and warnings", argv: ["clang", "-Wall", "-MD", "-c", "src/warn.c", "-o", "build/warn.o"], outputs: ["build/warn.o", "build/warn.d"]),
    CompileScenario(name: "clang C++ errors", argv: ["clang++", "-c", "src/err_syntax.cpp", "-o", "build/syntax.o"], outputs: ["build/syntax.o"]),
    CompileScenario(name: "clang #error", argv: ["clang", "-Iinclude", "-c", "src/err_error.c", "-o", "build/err.o"], outputs: ["build/err.o"]),
]

let clangAvailable = CompilerLocator().locate("clang") != nil && CompilerLocator().locate("clang++") != nil

@Suite(.serialized)
struct DistributedCompileTests {
    static let cluster: Result<TestCluster, any Error> = Result { try TestCluster(helpers: 2) }

    @Test(.enabled(if: clangAvailable, "clang is not on PATH"), arguments: clangScenarios)
    func remoteClangCompileMatchesPlainCompile(_ scenario: CompileScenario) throws {
        try remoteCompileMatchesPlainCompile(scenario)
    }

    @Test(arguments: scenarios)
    func remoteCompileMatchesPlainCompile(_ scenario: CompileScenario) throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/project"
        if !FileManager.default.fileExists(atPath: project) {
            try makeProject(in: project)
            try FileManager.default.createDirectory(atPath: cluster.directory + "/other out", withIntermediateDirectories: true)
        }
        let argv = scenario.argv.map { $0.replacingOccurrences(of: "PROJECT", with: project) }
        let plain = try runCompile(argv, in: project, outputs: scenario.outputs)
        #expect(plain.files[scenario.outputs[0]] != nil || plain.status != 0, "the plain compile should produce an object")

        let before = try cluster.stats()
        let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: scenario.outputs,
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        let after = try cluster.stats()

        #expect(launched.status == plain.status)
        #expect(launched.stderr == plain.stderr)
        #expect(launched.stdout == plain.stdout)
        #expect(Set(launched.files.keys) == Set(plain.files.keys))
        for (path, bytes) in plain.files {
            #expect(launched.files[path] == bytes, "\(path) differs from the plain compile")
        }
        #expect(after["remote"] as? Int == (before["remote"] as? Int ?? 0) + 1, "not counted as remote: \(after)")
        #expect(after["fallback"] as? Int == before["fallback"] as? Int, "fell back: \(after)")
        // gcc's inputs come from the daemon's include scan, or its warm result for a source scanned before with the
        // same folders (no preprocessor run here); clang's from the compiler.
        let methods = argv[0].contains("clang") ? ["compiler"] : ["daemon", "warm"]
        func scans(_ stats: [String: Any]) -> Int { methods.reduce(0) { $0 + ((stats["input_scans"] as? [String: Int])?[$1] ?? 0) } }
        #expect(scans(after) == scans(before) + 1, "inputs not found by \(methods): \(after)")
    }

    /// What the daemon's include scan cannot settle goes to the compiler's scan, and the result is the same: a
    /// computed #include, and `jobs.scan = "compiler"` (SWLAUNCH_SCAN).
    @Test func theCompilersScanWhereTheDaemonsCannotTell() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/computed"
        try makeProject(in: project)
        try "#define HEADER \"config.h\"\n#include HEADER\nint twice(int x) { return 2 * x; }\n"
            .write(toFile: project + "/src/computed.c", atomically: true, encoding: .utf8)
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        // A distributed compile first, so that gcc's toolchain is packed: the computed #include's job then asks for
        // its host while it is prepared, and hands the grant back unused when its scan gives up.
        let primed = try runCompile([cluster.binaries + "/swlaunch", "gcc", "-Iinclude", "-c", "src/hello.c", "-o", "build/primed.o"], in: project,
                                    outputs: ["build/primed.o"], environment: environment)
        #expect(primed.status == 0, "\(primed.stderr)")
        func unused() throws -> Int {
            try RecordJSON.decode(HistoryRecord.self, from: Array(try cluster.ask(.historyRequest(seconds: 3600)).utf8)).outcomes["unused"] ?? 0
        }
        let unusedBefore = try unused()
        for (argv, extra) in [(["gcc", "-Iinclude", "-g", "-MD", "-c", "src/computed.c", "-o", "build/computed.o"], [String: String]()),
                              (["gcc", "-Iinclude", "-O2", "-c", "src/hello.c", "-o", "build/hello.o"], ["SWLAUNCH_SCAN": "compiler"])] {
            let outputs = argv.contains("-MD") ? ["build/computed.o", "build/computed.d"] : ["build/hello.o"]
            let plain = try runCompile(argv, in: project, outputs: outputs)
            #expect(plain.status == 0 && plain.files.count == outputs.count, "\(plain.stderr)")
            let before = try cluster.stats()
            let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: outputs,
                                          environment: environment.merging(extra) { $1 })
            #expect(launched == plain, "\(argv)")
            let after = try cluster.stats()
            func count(_ stats: [String: Any], _ field: String, _ key: String) -> Int { (stats[field] as? [String: Int])?[key] ?? 0 }
            #expect(count(after, "input_scans", "compiler") == count(before, "input_scans", "compiler") + 1, "\(after)")
            #expect(after["remote"] as? Int == (before["remote"] as? Int ?? 0) + 1)
            if extra.isEmpty {
                #expect(count(after, "compiler_scan_reasons", "computed #include") == count(before, "compiler_scan_reasons", "computed #include") + 1, "\(after)")
            }
        }
        // The scheduler writes its history every second.
        var handedBack = try unused()
        for _ in 0..<50 where handedBack == unusedBefore {
            usleep(100_000)
            handedBack = try unused()
        }
        #expect(handedBack == unusedBefore + 1, "the computed #include's early grant was not handed back")
        // No slot stays taken by it: every helper is idle again.
        let status = try RecordJSON.decode(StatusRecord.self, from: Array(try cluster.ask(.statusRequest).utf8))
        #expect(status.hosts.allSatisfy { $0.running == 0 }, "\(status.hosts.map { "\($0.name) \($0.running)" })")
    }

    /// A header the daemon's scan misses (here a backslash-newline inside the word include, which the scan does
    /// not join) fails the remote compile on a missing file: the job goes again from the compiler's scan, and
    /// the build never sees the miss. A header missing everywhere fails as it does locally.
    @Test func aHeaderTheScanMissedIsCaughtByTheCompilersScan() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/missed"
        try makeProject(in: project)
        try "#inc\\\nlude \"config.h\"\nint answer(void) { return ANSWER; }\n".write(toFile: project + "/src/missed.c", atomically: true, encoding: .utf8)
        try "#include \"nowhere.h\"\nint x;\n".write(toFile: project + "/src/nowhere.c", atomically: true, encoding: .utf8)
        let environment = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        func count(_ stats: [String: Any], _ field: String, _ key: String) -> Int { (stats[field] as? [String: Int])?[key] ?? 0 }
        for (source, status) in [("src/missed.c", 0), ("src/nowhere.c", 1)] {
            let argv = ["gcc", "-Iinclude", "-c", source, "-o", "build/out.o"]
            let plain = try runCompile(argv, in: project, outputs: ["build/out.o"])
            #expect(plain.status == status, "\(plain.stderr)")
            let before = try cluster.stats()
            let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/out.o"], environment: environment)
            #expect(launched == plain, "\(source)")
            let after = try cluster.stats()
            #expect(count(after, "compiler_scan_reasons", "missing file") == count(before, "compiler_scan_reasons", "missing file") + 1, "\(after)")
            #expect(count(after, "input_scans", "compiler") == count(before, "input_scans", "compiler") + 1, "\(after)")
        }
    }

    @Test func disabledLauncherRunsTheCompilerDirectly() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/project"
        if !FileManager.default.fileExists(atPath: project) { try makeProject(in: project) }
        let before = try cluster.stats()
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "gcc", "-Iinclude", "-c", "src/hello.c", "-o", "build/d.o"], in: project,
                                     outputs: ["build/d.o"], environment: ["SWLAUNCH_SOCKET": cluster.clientSocket, "SWLAUNCH_DISABLE": "1"])
        #expect(outcome.status == 0)
        #expect(outcome.files["build/d.o"] != nil)
        let after = try cluster.stats()
        #expect(after["remote"] as? Int == before["remote"] as? Int)
        #expect(after["local"] as? Int == before["local"] as? Int)
    }

    @Test func linkingRunsLocallyAndIsCounted() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/project"
        if !FileManager.default.fileExists(atPath: project) { try makeProject(in: project) }
        try "int main(void) { return 0; }\n".write(toFile: project + "/src/main.c", atomically: true, encoding: .utf8)
        let before = try cluster.stats()
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "gcc", "src/main.c", "-o", "build/prog"], in: project,
                                     outputs: ["build/prog"], environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(outcome.status == 0)
        #expect(outcome.files["build/prog"] != nil)
        let after = try cluster.stats()
        #expect(after["local"] as? Int == (before["local"] as? Int ?? 0) + 1)
        #expect((after["local_reasons"] as? [String: Int])?["not-a-compile"] != nil)
    }

    @Test func noDaemonMeansAPlainLocalCompile() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/project"
        if !FileManager.default.fileExists(atPath: project) { try makeProject(in: project) }
        let plain = try runCompile(["gcc", "-Wall", "-c", "src/warn.c", "-o", "build/w.o"], in: project, outputs: ["build/w.o"])
        let launched = try runCompile([cluster.binaries + "/swlaunch", "gcc", "-Wall", "-c", "src/warn.c", "-o", "build/w.o"], in: project,
                                      outputs: ["build/w.o"], environment: ["SWLAUNCH_SOCKET": cluster.directory + "/nobody-here.sock"])
        #expect(launched == plain)
    }

    @Test func masqueradeLinkFindsTheRealCompilerAndDistributes() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/project"
        if !FileManager.default.fileExists(atPath: project) { try makeProject(in: project) }
        let masquerade = cluster.directory + "/masquerade"
        try? FileManager.default.createDirectory(atPath: masquerade, withIntermediateDirectories: true)
        for name in ["gcc", "cc"] {
            try? FileManager.default.createSymbolicLink(atPath: masquerade + "/" + name, withDestinationPath: cluster.binaries + "/swlaunch")
        }
        let path = masquerade + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin")
        let plain = try runCompile(["gcc", "-Wall", "-c", "src/warn.c", "-o", "build/m.o"], in: project, outputs: ["build/m.o"])
        let before = try cluster.stats()
        let launched = try runCompile([masquerade + "/gcc", "-Wall", "-c", "src/warn.c", "-o", "build/m.o"], in: project, outputs: ["build/m.o"],
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket, "PATH": path])
        #expect(launched == plain)
        #expect(try cluster.stats()["remote"] as? Int == (before["remote"] as? Int ?? 0) + 1)
        // A PATH holding nothing but the masquerade links must not recurse into the launcher.
        let alone = try runCompile([masquerade + "/cc", "-c", "src/warn.c"], in: project, outputs: [],
                                   environment: ["SWLAUNCH_SOCKET": cluster.clientSocket, "PATH": masquerade])
        #expect(alone.status == 127)
        #expect(alone.stderr.hasPrefix("swlaunch: error: compiler 'cc' not found on PATH"))
    }

    @Test func malformedFramesCloseTheConnectionAndNothingElse() throws {
        let cluster = try Self.cluster.get()
        let oversized: [UInt8] = [0xff, 0xff, 0xff, 0x7f, 1, 2, 3]
        let unknownKind: [UInt8] = [1, 0, 0, 0, 250]
        var wrongMagic = ByteWriter()
        wrongMagic.write(UInt32(9))
        wrongMagic.write(MessageKind.hello.rawValue)
        wrongMagic.write(Array("HTTP".utf8))
        let badHello = wrongMagic.bytes
        var truncatedLength = Frame.encode(.hello(Hello(role: .daemon, name: "x")))
        truncatedLength[0] = truncatedLength[0] &+ 40
        for garbage in [oversized, unknownKind, badHello, Array("GET / HTTP/1.1\r\n\r\n".utf8)] {
            #expect(sendRaw(garbage, port: cluster.schedulerPort), "scheduler kept a bad connection open")
            #expect(sendRaw(garbage, port: cluster.helperPorts[0]), "helper kept a bad connection open")
            #expect(sendRaw(garbage, unixPath: cluster.clientSocket), "client daemon kept a bad connection open")
        }
        // A hello followed by a frame cut short, then the peer hangs up.
        #expect(sendRaw(Frame.encode(.hello(Hello(role: .daemon, name: "x"))) + Array(truncatedLength.prefix(12)), port: cluster.helperPorts[0], halfClose: true))
        for name in ["scheduler", "helper1", "helper2", "client"] {
            #expect(cluster.isAlive(name), "\(name) died")
        }
        try cluster.waitForHosts(3)
        let project = cluster.directory + "/project"
        if !FileManager.default.fileExists(atPath: project) { try makeProject(in: project) }
        let before = try cluster.stats()
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "gcc", "-Iinclude", "-c", "src/hello.c", "-o", "build/after.o"], in: project,
                                     outputs: ["build/after.o"], environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(outcome.status == 0)
        #expect(try cluster.stats()["remote"] as? Int == (before["remote"] as? Int ?? 0) + 1)
    }

    @Test func missingCompilerIsAClearError() throws {
        let cluster = try Self.cluster.get()
        let outcome = try runCompile([cluster.binaries + "/swlaunch", "no-such-cc", "-c", "x.c"], in: cluster.directory, outputs: [])
        #expect(outcome.status == 127)
        #expect(outcome.stderr == "swlaunch: error: compiler 'no-such-cc' not found on PATH (the launcher itself is skipped)\n")
    }
}
