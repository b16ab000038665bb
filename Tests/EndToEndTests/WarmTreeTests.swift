import Foundation
import SystemSupport
import Testing

/// A warm tree: the second clean build of the same sources (into a new build folder) and a rebuild after an edit
/// run no scan for what did not change, and every object is still the plain build's.
@Suite struct WarmTreeTests {
    @Test func aSecondBuildIntoANewFolderAndAnEditRescanOnlyWhatChanged() throws {
        let cluster = try TestCluster(helpers: 2)
        let env = ["SWLAUNCH_SOCKET": cluster.clientSocket]
        let source = cluster.directory + "/hello"
        try FileManager.default.copyItem(atPath: packageRoot + "/examples/hello", toPath: source)
        let launcher = cluster.binaries + "/swlaunch"
        func build(_ folder: String, launched: Bool) throws -> [String: [UInt8]] {
            let dir = cluster.directory + "/" + folder
            let launcherArgs = launched ? ["-DCMAKE_C_COMPILER_LAUNCHER=" + launcher, "-DCMAKE_CXX_COMPILER_LAUNCHER=" + launcher] : []
            let configure = try runCompile(["cmake", "-S", source, "-B", dir, "-G", "Ninja"] + launcherArgs, in: cluster.directory,
                                           outputs: [], environment: env)
            #expect(configure.status == 0, "\(configure.stderr)")
            let ninja = try runCompile(["ninja", "-C", dir], in: cluster.directory, outputs: [], environment: env)
            #expect(ninja.status == 0, "\(ninja.stdout)\(ninja.stderr)")
            var objects: [String: [UInt8]] = [:]
            for object in ["CMakeFiles/shapes.dir/src/circle.cpp.o", "CMakeFiles/shapes.dir/src/square.cpp.o",
                           "CMakeFiles/shapes.dir/src/area.c.o", "CMakeFiles/hello.dir/src/main.cpp.o"] {
                objects[object] = Posix.readFile(dir + "/" + object)
            }
            return objects
        }
        func scans() throws -> [String: Int] { try cluster.stats()["input_scans"] as? [String: Int] ?? [:] }

        let plain = try build("plain", launched: false)
        let cold = try build("cold", launched: true)
        #expect(try scans() == ["daemon": 4], "the cold build scans each compile once")
        let warm = try build("warm", launched: true)
        #expect(try scans() == ["daemon": 4, "warm": 4], "the second build into a new folder scans nothing")
        #expect(cold == plain && warm == plain && plain.values.allSatisfy { !$0.isEmpty }, "objects as the plain build's")
        #expect(try cluster.stats()["remote"] as? Int == 8)

        // One source edited below its #include lines (the edit-compile loop): not scanned again. A shared header
        // edited: every compile that reads it is.
        try (String(contentsOfFile: source + "/src/square.cpp", encoding: .utf8) + "\n// edited\n")
            .write(toFile: source + "/src/square.cpp", atomically: true, encoding: .utf8)
        let edited = try build("warm", launched: true)
        #expect(try scans() == ["daemon": 4, "warm": 5])
        try (String(contentsOfFile: source + "/src/shapes.hpp", encoding: .utf8) + "\n// edited\n")
            .write(toFile: source + "/src/shapes.hpp", atomically: true, encoding: .utf8)
        _ = try build("warm", launched: true)
        #expect(try scans() == ["daemon": 7, "warm": 5], "circle, square and main include shapes.hpp; area.c does not and is not rebuilt")
        let plainAgain = try build("plain", launched: false)
        #expect(try build("warm", launched: true) == plainAgain && edited.count == 4)

        // A restarted daemon keeps its warm entries: a third clean build scans nothing.
        cluster.stop("client")
        try cluster.start("client", cluster.binaries + "/swlaunchd", ["--name", "client", "--no-remote", "--scheduler", "127.0.0.1:\(cluster.schedulerPort)",
                                                                      "--socket", cluster.clientSocket, "--state-dir", cluster.directory + "/state-client"])
        try cluster.waitForHosts(3)
        let third = try build("third", launched: true)
        let afterRestart = try scans()
        #expect(afterRestart == ["warm": 4], "\(afterRestart)")
        #expect(third == plainAgain)
    }
}
