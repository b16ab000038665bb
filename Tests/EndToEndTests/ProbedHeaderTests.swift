import Foundation
import SystemSupport
import Testing

/// `__has_include` answers the same on the helper as here: a header that is only probed is shipped, and one
/// that is probed and absent stays absent.
@Suite(.serialized)
struct ProbedHeaderTests {
    static let cluster: Result<TestCluster, any Error> = Result { try TestCluster(helpers: 1) }

    @Test func probedHeadersAnswerTheSameRemotely() throws {
        let cluster = try Self.cluster.get()
        let project = cluster.directory + "/probe"
        try FileManager.default.createDirectory(atPath: project + "/include/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: project + "/build", withIntermediateDirectories: true)
        try "/* never included */\n".write(toFile: project + "/include/only-probed.h", atomically: true, encoding: .utf8)
        try "/* never included either */\n".write(toFile: project + "/include/sub/angled-probed.h", atomically: true, encoding: .utf8)
        try "#pragma once\n#if __has_include(\"beside.h\")\n#define BESIDE 1\n#else\n#define BESIDE 2\n#endif\n"
            .write(toFile: project + "/include/sub/wrapper.h", atomically: true, encoding: .utf8)
        try "/* beside wrapper.h */\n".write(toFile: project + "/include/sub/beside.h", atomically: true, encoding: .utf8)
        try """
            #include <sub/wrapper.h>
            #if __has_include("only-probed.h")
            #define PROBED 1
            #else
            #define PROBED 2
            #endif
            #if __has_include( <sub/angled-probed.h> )
            #define ANGLED 1
            #else
            #define ANGLED 2
            #endif
            #if __has_include(<absent-everywhere.h>) || __has_include_next(<also-absent.h>)
            #define ABSENT 1
            #else
            #define ABSENT 2
            #endif
            int value(void) { return PROBED * 1000 + ANGLED * 100 + ABSENT * 10 + BESIDE; }

            """.write(toFile: project + "/probe.c", atomically: true, encoding: .utf8)
        let argv = ["gcc", "-O2", "-Iinclude", "-c", "probe.c", "-o", "build/probe.o"]
        let plain = try runCompile(argv, in: project, outputs: ["build/probe.o"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let before = try cluster.stats()["remote"] as? Int ?? 0
        let launched = try runCompile([cluster.binaries + "/swlaunch"] + argv, in: project, outputs: ["build/probe.o"],
                                      environment: ["SWLAUNCH_SOCKET": cluster.clientSocket])
        #expect(launched == plain, "the probes answered differently on the helper")
        #expect(try cluster.stats()["remote"] as? Int == before + 1)
    }
}
