import Foundation
import SystemSupport
import Testing
@testable import Config

/// A scratch tree with a system file, a user file and a project file.
struct ConfigTree {
    let root = NSTemporaryDirectory() + "config-" + UUID().uuidString
    var system: String { root + "/etc/config.toml" }
    var user: String { root + "/home/.config/swlaunch/config.toml" }
    var project: String { root + "/work/proj/swlaunch.toml" }
    var deep: String { root + "/work/proj/src/lib" }

    init() throws {
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/home/.config/swlaunch", withIntermediateDirectories: true)
    }

    func write(_ path: String, _ text: String, mode: Int = 0o644) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, mode_t(mode))
    }

    func load(_ env: [String: String] = [:]) throws(ConfigErrors) -> Configuration {
        try Configuration.load(workingDirectory: deep, environment: { env[$0] }, systemFile: system, userFile: .some(user))
    }

    func errors(_ env: [String: String] = [:]) -> [String] {
        do {
            _ = try load(env)
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }
}

@Test func laterLayersWinAndSourcesAreRecorded() throws {
    let t = try ConfigTree()
    try t.write(t.system, "[scheduler]\naddress = \"sys:8765\"\n[daemon]\nmax_jobs = 4\nlocal_jobs = 2\n")
    try t.write(t.user, "[daemon]\nmax_jobs = 8\n")
    try t.write(t.project, "# project\n[daemon]\n\nlocal_jobs = 3\n[jobs]\nfallback = 'fail'\n")
    let config = try t.load(["SWLAUNCH_SCHEDULER": "env:9000"])
    #expect(config.string("scheduler.address") == "env:9000")
    #expect(config.settings["scheduler.address"]?.source == .environment("SWLAUNCH_SCHEDULER"))
    #expect(config.integer("daemon.max_jobs") == 8)
    #expect(config.settings["daemon.max_jobs"]?.source == .file(t.user, line: 2))
    #expect(config.integer("daemon.local_jobs") == 3)
    #expect(config.settings["daemon.local_jobs"]?.source == .file(t.project, line: 4))
    #expect(config.failsOnInfrastructureErrors)
    #expect(config.string("jobs.compression_level") == nil)
    #expect(config.integer("jobs.compression_level") == 1)
    #expect(config.settings["jobs.compression_level"]?.source == .builtIn)
    #expect(config.files == [t.system, t.user, t.project])
}

@Test func theClosestProjectFileWins() throws {
    let t = try ConfigTree()
    try t.write(t.project, "jobs.count = 10\n")
    try t.write(t.root + "/work/proj/src/swlaunch.toml", "jobs.count = 20\n")
    #expect(try t.load().integer("jobs.count") == 20)
    #expect(Configuration.projectFile(from: t.deep) == t.root + "/work/proj/src/swlaunch.toml")
}

@Test(arguments: [
    ("[scheduler]\nadress = \"a:1\"\n", "swlaunch.toml:2: scheduler.adress: unknown key (did you mean 'scheduler.address'?)"),
    ("[deamon]\nmax_jobs = 2\n", "swlaunch.toml:2: deamon.max_jobs: unknown key (did you mean 'daemon.max_jobs'?)"),
    ("[daemon]\nmax_jobs = \"8\"\n", "swlaunch.toml:2: daemon.max_jobs: must be an integer, not a string"),
    ("[daemon]\nmax_jobs = 0\n", "swlaunch.toml:2: daemon.max_jobs: 0 is out of range 1...4096"),
    ("scheduler.address = \"nohost\"\n", "swlaunch.toml:1: scheduler.address: 'nohost' is not HOST:PORT[,HOST:PORT...] with ports from 1 to 65535"),
    ("scheduler.address = \"h:70000\"\n", "swlaunch.toml:1: scheduler.address: 'h:70000' is not HOST:PORT[,HOST:PORT...] with ports from 1 to 65535"),
    ("scheduler.address = \"a:1,\"\n", "swlaunch.toml:1: scheduler.address: 'a:1,' is not HOST:PORT[,HOST:PORT...] with ports from 1 to 65535"),
    ("[daemon]\nlisten = \"h:0\"\n", "swlaunch.toml:2: daemon.listen: 'h:0' is not HOST:PORT with a port from 1 to 65535"),
    ("[jobs]\nfallback = \"maybe\"\n", "swlaunch.toml:2: jobs.fallback: must be one of \"local\", \"fail\", not \"maybe\""),
    ("[daemon]\nremote = \"yes\"\n", "swlaunch.toml:2: daemon.remote: must be true or false, not a string"),
    ("[toolchains]\n\"arm-linux-gnueabihf-g++\" = { x86_64-linux = \"envs/missing.tar.zst\" }\n",
     "swlaunch.toml:2: toolchains.arm-linux-gnueabihf-g++: x86_64-linux: 'envs/missing.tar.zst' does not exist"),
    ("[toolchains]\ngcc = \"env.tar.zst\"\n", "swlaunch.toml:2: toolchains.gcc: must be a table of platform = \"environment archive\", for example { x86_64-linux = \"envs/arm-on-x86_64.tar.zst\" }"),
    ("[jobs]\ncount = 4\n\ncount = 5\n", "swlaunch.toml:4: key 'jobs.count' is set twice"),
    ("[jobs\ncount = 4\n", "swlaunch.toml:1: expected ']' to close the table header"),
    ("jobs.count = four\n", "swlaunch.toml:1: 'four' is not a value (strings need quotes)"),
    ("log.level = \"loud\n", "swlaunch.toml:1: unterminated string"),
    ("jobs.count = 4 5\n", "swlaunch.toml:1: unexpected text after the value"),
    ("[[jobs]]\n", "swlaunch.toml:1: arrays of tables ([[...]]) are not used by swlaunch"),
])
func everyMistakeNamesFileLineAndKey(_ text: String, _ expected: String) throws {
    let t = try ConfigTree()
    try t.write(t.project, text)
    let errors = t.errors()
    #expect(errors.count == 1)
    #expect(errors.first?.replacingOccurrences(of: t.root + "/work/proj/", with: "") == expected)
}

@Test func environmentMistakesNameTheVariable() throws {
    let t = try ConfigTree()
    #expect(t.errors(["SWLAUNCH_MAX_JOBS": "many"]) == ["environment SWLAUNCH_MAX_JOBS: daemon.max_jobs: 'many' is not an integer"])
    #expect(t.errors(["SWLAUNCH_FALLBACK": "never"]) == ["environment SWLAUNCH_FALLBACK: jobs.fallback: must be one of \"local\", \"fail\", not \"never\""])
}

@Test func allMistakesAreReportedTogether() throws {
    let t = try ConfigTree()
    try t.write(t.user, "daemon.max_jobs = -1\n")
    try t.write(t.project, "jobs.count = 'x'\nlog.level = \"info\"\nbogus = 1\n")
    #expect(t.errors().count == 3)
}

@Test func projectFilesWritableByOthersAreRefused() throws {
    let t = try ConfigTree()
    try t.write(t.project, "jobs.count = 4\n", mode: 0o666)
    #expect(t.errors() == ["\(t.project): refused: writable by other users (mode 666); run chmod go-w on it"])
    try t.write(t.project, "jobs.count = 4\n", mode: 0o664)
    #expect(t.errors().first?.contains("writable by other users") == true)
    chmod(t.project, 0o644)
    #expect(t.errors() == [])
}

@Test(.enabled(if: getuid() == 0, "needs root to give the file away"))
func projectFilesOwnedBySomeoneElseAreRefused() throws {
    let t = try ConfigTree()
    try t.write(t.project, "jobs.count = 4\n")
    chown(t.project, 65534, 65534)
    #expect(t.errors() == ["\(t.project): refused: owned by uid 65534, not by you (uid 0) or root"])
}

@Test func toolchainTablesResolvePathsAgainstTheirFile() throws {
    let t = try ConfigTree()
    try FileManager.default.createDirectory(atPath: t.root + "/work/proj/envs", withIntermediateDirectories: true)
    try t.write(t.root + "/work/proj/envs/arm.tar.zst", "x")
    try t.write(t.project, "[toolchains]\n\"arm-linux-gnueabihf-g++\" = { x86_64-linux = \"envs/arm.tar.zst\" }\n")
    #expect(try t.load().toolchains(for: "arm-linux-gnueabihf-g++") == ["x86_64-linux": t.root + "/work/proj/envs/arm.tar.zst"])
}

@Test func parserHandlesTheSubset() throws {
    let text = """
    # comment
    top = 1_000 # trailing
    [a.b]
    "quoted key" = "tab\\there \\u00e9"
    lit = 'C:\\path'
    list = [
      "x", # one
      'y',
    ]
    f = 1.5
    t = { k = true, n = -2 }
    """
    let parsed = try TOMLSubsetParser.parse(Array(text.utf8), file: "f")
    #expect(parsed.map(\.key) == [["top"], ["a", "b", "quoted key"], ["a", "b", "lit"], ["a", "b", "list"], ["a", "b", "f"], ["a", "b", "t"]])
    #expect(parsed.map(\.line) == [2, 4, 5, 6, 10, 11])
    #expect(parsed[0].value == .integer(1000))
    #expect(parsed[1].value == .string("tab\there é"))
    #expect(parsed[2].value == .string("C:\\path"))
    #expect(parsed[3].value == .array([.string("x"), .string("y")]))
    #expect(parsed[4].value == .float(1.5))
    #expect(parsed[5].value == .table([("k", .boolean(true)), ("n", .integer(-2))]))
}

/// swlaunch's default ports are not icecream's (scheduler TCP/UDP 8765, its text interface 8766, daemon 10245),
/// so both run on one machine while a site moves from one to the other.
@Test func defaultPortsStayOffIcecreams() {
    let icecream: Set<Int> = [8765, 8766, 10245]
    for port in [DefaultPorts.scheduler, DefaultPorts.daemon, DefaultPorts.discovery] { #expect(!icecream.contains(port)) }
    let listen = configKeys.first { $0.key == "daemon.listen" }?.defaultValue
    #expect(listen == .string("0.0.0.0:8776"))
}
