import Foundation
import Testing

let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// `scripts/install.sh` into a scratch prefix, then the installed masquerade directory and CMake module
/// used for real, then `--uninstall`.
@Suite(.serialized)
struct InstallTests {
    static let cluster: Result<TestCluster, any Error> = Result { try TestCluster(helpers: 1) }

    func files(under directory: String) -> [String] {
        (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).filter {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: directory + "/" + $0, isDirectory: &isDirectory)
            return !isDirectory.boolValue
        }.sorted()
    }

    @Test func installUseAndUninstall() throws {
        let cluster = try Self.cluster.get()
        let prefix = cluster.directory + "/prefix"
        let install = try runCompile([packageRoot + "/scripts/install.sh", "--prefix", prefix, "--no-user"], in: packageRoot, outputs: [],
                                     environment: ["SWLAUNCH_BIN": cluster.binaries])
        #expect(install.status == 0, "\(install.stderr)")
        #expect(files(under: prefix) == [
            "bin/swlaunch", "bin/swlaunch-ctl", "bin/swlaunch-scheduler", "bin/swlaunchd",
            "lib/swlaunch/bin/c++", "lib/swlaunch/bin/cc", "lib/swlaunch/bin/clang", "lib/swlaunch/bin/clang++",
            "lib/swlaunch/bin/g++", "lib/swlaunch/bin/gcc",
            "lib/systemd/system/swlaunch-scheduler.service", "lib/systemd/system/swlaunchd.service",
            "share/swlaunch/cmake/swlaunch.cmake", "share/swlaunch/colcon/index.yaml", "share/swlaunch/colcon/swlaunch.mixin",
            "share/swlaunch/install-manifest.txt",
        ])
        let mixin = try String(contentsOfFile: prefix + "/share/swlaunch/colcon/swlaunch.mixin", encoding: .utf8)
        #expect(mixin.contains("\"-DCMAKE_CXX_COMPILER_LAUNCHER=\(prefix)/bin/swlaunch\""))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: prefix + "/lib/swlaunch/bin/g++") == "../../../bin/swlaunch")
        let unit = try String(contentsOfFile: prefix + "/lib/systemd/system/swlaunchd.service", encoding: .utf8)
        #expect(unit.contains("ExecStart=\(prefix)/bin/swlaunchd\n"))

        let basePath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let env = ["SWLAUNCH_SOCKET": cluster.clientSocket]

        // The masquerade directory first on PATH: a plain `gcc -c` is distributed.
        let project = cluster.directory + "/masq"
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
        try "int f(void) { return 2; }\n".write(toFile: project + "/f.c", atomically: true, encoding: .utf8)
        var before = try cluster.stats()["remote"] as? Int ?? 0
        let masq = try runCompile([prefix + "/lib/swlaunch/bin/gcc", "-c", "f.c"], in: project, outputs: ["f.o"],
                                  environment: env.merging(["PATH": prefix + "/lib/swlaunch/bin:" + basePath]) { $1 })
        #expect(masq.status == 0)
        #expect(masq.files["f.o"] != nil)
        #expect(try cluster.stats()["remote"] as? Int == before + 1)

        // The CMake module, with swlaunch on PATH: the example's four compiles are distributed.
        let build = cluster.directory + "/cmake-build"
        before = try cluster.stats()["remote"] as? Int ?? 0
        let configure = try runCompile(["cmake", "-S", packageRoot + "/examples/hello", "-B", build, "-G", "Ninja",
                                        "-DCMAKE_PROJECT_TOP_LEVEL_INCLUDES=" + prefix + "/share/swlaunch/cmake/swlaunch.cmake"],
                                       in: cluster.directory, outputs: [], environment: env.merging(["PATH": prefix + "/bin:" + basePath]) { $1 })
        #expect(configure.status == 0, "\(configure.stderr)")
        let ninja = try runCompile(["ninja", "-C", build], in: cluster.directory, outputs: [], environment: env)
        #expect(ninja.status == 0, "\(ninja.stdout)")
        #expect(try cluster.stats()["remote"] as? Int == before + 4)
        let rules = try String(contentsOfFile: build + "/CMakeFiles/rules.ninja", encoding: .utf8)
        #expect(rules.contains(prefix + "/bin/swlaunch "))

        // Without swlaunch on PATH the module stays quiet and changes nothing.
        let quiet = cluster.directory + "/cmake-quiet"
        let plain = try runCompile(["cmake", "-S", packageRoot + "/examples/hello", "-B", quiet, "-G", "Ninja",
                                    "-DCMAKE_PROJECT_TOP_LEVEL_INCLUDES=" + packageRoot + "/cmake/swlaunch.cmake"],
                                   in: cluster.directory, outputs: [], environment: ["PATH": basePath])
        #expect(plain.status == 0)
        #expect(plain.stderr.isEmpty)
        #expect(try !String(contentsOfFile: quiet + "/CMakeFiles/rules.ninja", encoding: .utf8).contains("bin/swlaunch"))
        #expect(try String(contentsOfFile: quiet + "/CMakeCache.txt", encoding: .utf8).contains("SWLAUNCH_PROGRAM:FILEPATH=SWLAUNCH_PROGRAM-NOTFOUND"))

        let uninstall = try runCompile([packageRoot + "/scripts/install.sh", "--prefix", prefix, "--uninstall"], in: packageRoot, outputs: [])
        #expect(uninstall.status == 0)
        #expect(files(under: prefix) == [])
    }
}
