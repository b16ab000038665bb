import ArgumentParser
import BuildWrappers
import Config
import Foundation
import Launch
import Records
import SystemSupport
import Toolchain
import Wire

/// What the build wrappers share: the masquerade directory first on PATH, the job count from the rules of
/// `JobCountPolicy`, one line saying what was chosen, then exec of the real tool.
struct BuildWrapper {
    let tool: String

    /// The folder of this program, where the launcher is too.
    static let binDirectory: String = {
        let executable = Posix.realPath("/proc/self/exe") ?? "/usr/local/bin/swlaunch-ctl"
        return String(executable[..<(executable.lastIndex(of: "/") ?? executable.endIndex)])
    }()

    /// The launcher next to this program.
    static func launcherPath() -> String { binDirectory + "/swlaunch" }

    /// The directory of compiler-named links to the launcher: `<prefix>/lib/swlaunch/bin` next to an installed
    /// swlaunch, else one made under the user's cache for a launcher run from its build folder.
    static func masqueradeDirectory() throws -> String {
        let installed = (binDirectory as NSString).deletingLastPathComponent + "/lib/swlaunch/bin"
        if Posix.isExecutableFile(installed + "/gcc") { return installed }
        let launcher = launcherPath()
        let cache = (Posix.environment("XDG_CACHE_HOME") ?? (NSHomeDirectory() + "/.cache")) + "/swlaunch/masquerade-\(getuid())"
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
        for name in compilerDriverNames {
            let link = cache + "/" + name
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == launcher { continue }
            try? FileManager.default.removeItem(atPath: link)
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: launcher)
        }
        return cache
    }

    /// The cluster's free remote slots, asked of the local daemon; nil when no daemon or scheduler answers.
    static func cluster() -> JobCountPolicy.Cluster? {
        guard let json = try? askDaemon(.statusRequest),
              let status = try? RecordJSON.decode(StatusRecord.self, from: Array(json.utf8)) else { return nil }
        let me = Posix.hostName()
        let helpers = status.hosts.filter { $0.acceptsRemote && $0.name != me }
        return JobCountPolicy.Cluster(freeRemoteSlots: helpers.reduce(0) { $0 + max(0, $1.maxJobs - $1.running) }, helpers: helpers.count)
    }

    func choose(user: UserJobs?) -> JobCountChoice {
        let config = try? Configuration.load(workingDirectory: Posix.currentDirectory() ?? "/", environment: Posix.environment)
        let configured = config.flatMap { c in c.integer("jobs.count").map { ($0, c.settings["jobs.count"]?.source.description ?? "configuration") } }
        let choice = JobCountPolicy.choose(user: user, configured: configured, cluster: user == nil && configured == nil ? Self.cluster() : nil,
                                           localCores: LocalCores.current())
        return choice
    }

    /// Keeps the choice in `directory` (a build folder, or colcon's build base) for `swlaunch ninjalog`; a folder
    /// that cannot be written only loses the record.
    func record(_ choice: JobCountChoice, workers: Int? = nil, in directory: String) {
        let record = WrapRecord(tool: tool, jobs: choice.jobs, workers: workers, reason: choice.reason, time: Date().timeIntervalSince1970)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = Posix.writeFileAtomically(directory + "/" + WrapRecord.fileName, Array((RecordJSON.encode(record) + "\n").utf8))
    }

    /// Puts the masquerade directory first on PATH, sets `environment`, prints `note` and execs `tool`.
    func exec(_ arguments: [String], environment: [String: String] = [:], masquerade: Bool = true, note: String) throws -> Never {
        try exec(arguments, settingOrUnsetting: environment.mapValues { Optional($0) }, masquerade: masquerade, note: note)
    }

    /// `masquerade: false` for CMake projects, which get the launcher through CMake and must find the real
    /// compilers when they configure.
    func exec(_ arguments: [String], settingOrUnsetting environment: [String: String?], masquerade: Bool = true, note: String) throws -> Never {
        if masquerade {
            setenv("PATH", try Self.masqueradeDirectory() + ":" + (Posix.environment("PATH") ?? "/usr/bin:/bin"), 1)
        }
        for (name, value) in environment {
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
        FileHandle.standardError.write(Data("swlaunch \(tool): \(note)\n".utf8))
        guard let program = CompilerLocator(searchPath: Posix.environment("PATH") ?? "").locate(tool) else {
            throw ValidationError("\(tool) not found on PATH")
        }
        let code = Posix.exec(program, [tool] + arguments)
        throw ValidationError("cannot run \(program): \(Posix.errorText(code))")
    }
}

struct MakeWrapper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make",
        abstract: "make with the compilers routed through swlaunch and -j chosen from the cluster.",
        discussion: """
            The masquerade directory goes first on PATH, so $(CC) and $(CXX) reach swlaunch. -j is, in order: \
            yours (command line or MAKEFLAGS), jobs.count from the configuration, the cluster's free remote slots \
            plus this machine's cores, this machine's cores. A load limit (-l) inherited through MAKEFLAGS is \
            dropped (one on the command line is kept). A sub-make joins its parent's jobserver unchanged.
            """)
    @Argument(parsing: .captureForPassthrough, help: "make's own arguments.") var arguments: [String] = []

    func run() throws {
        let invocation = MakeInvocation(arguments: arguments, makeflags: Posix.environment("MAKEFLAGS"))
        let wrapper = BuildWrapper(tool: "make")
        let choice = invocation.joinsJobserver ? JobCountChoice(jobs: nil, reason: "joining the parent make's jobserver")
            : wrapper.choose(user: invocation.userJobs)
        try wrapper.exec(invocation.arguments(jobs: choice.jobs), settingOrUnsetting: ["MAKEFLAGS": invocation.makeflags],
                         note: choice.reason + invocation.droppedNote)
    }
}

struct NinjaWrapper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ninja",
        abstract: "ninja with the compilers routed through swlaunch and -j chosen from the cluster.",
        discussion: """
            The same rules as `swlaunch make` (ninja reads no MAKEFLAGS). Build folders configured with the CMake \
            launcher need no masquerade, but it does no harm.
            """)
    @Argument(parsing: .captureForPassthrough, help: "ninja's own arguments.") var arguments: [String] = []

    func run() throws {
        let wrapper = BuildWrapper(tool: "ninja")
        let choice = wrapper.choose(user: NinjaInvocation.userJobs(arguments))
        let directory = NinjaInvocation.directory(arguments, workingDirectory: Posix.currentDirectory() ?? ".")
        if Posix.fileExists(directory + "/build.ninja") { wrapper.record(choice, in: directory) }
        try wrapper.exec(NinjaInvocation.arguments(arguments, jobs: choice.jobs), note: choice.reason)
    }
}

struct CMakeWrapper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmake",
        abstract: "`cmake --build DIR` with the compilers routed through swlaunch and the parallelism chosen from the cluster.",
        discussion: """
            The same rules as `swlaunch make`; your -j/--parallel or CMAKE_BUILD_PARALLEL_LEVEL wins. Other cmake \
            invocations run unchanged.
            """)
    @Argument(parsing: .captureForPassthrough, help: "cmake's own arguments.") var arguments: [String] = []

    func run() throws {
        let wrapper = BuildWrapper(tool: "cmake")
        // CMake projects get the launcher through CMake; with the masquerade on PATH a configure would take it
        // for the compiler.
        guard arguments.contains("--build") else { try wrapper.exec(arguments, masquerade: false, note: "not a build, run as it is") }
        let level = Posix.environment("CMAKE_BUILD_PARALLEL_LEVEL")
        let choice = wrapper.choose(user: CMakeBuildInvocation.userJobs(arguments, parallelLevel: level))
        if let directory = CMakeBuildInvocation.directory(arguments, workingDirectory: Posix.currentDirectory() ?? "."),
           Posix.fileExists(directory + "/CMakeCache.txt") {
            wrapper.record(choice, in: directory)
        }
        try wrapper.exec(CMakeBuildInvocation.arguments(arguments, parallelLevel: level, jobs: choice.jobs), masquerade: false, note: choice.reason)
    }
}

struct ColconWrapper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "colcon",
        abstract: "`colcon build` with swlaunch in every package's CMake arguments and the parallelism chosen from the cluster.",
        discussion: """
            The launcher joins your --cmake-args (yours come after it, so a launcher of your own wins). Each \\
            package builds with MAKEFLAGS=-jN and CMAKE_BUILD_PARALLEL_LEVEL=N, N chosen as for `swlaunch make` \\
            (your -j in MAKEFLAGS or CMAKE_BUILD_PARALLEL_LEVEL stands), which also keeps colcon's -l load limit \\
            out; --parallel-workers is this machine's cores plus one (at least 2: one package configures here while \\
            another compiles remotely) unless you give it. Other verbs run unchanged.
            """)
    @Argument(parsing: .captureForPassthrough, help: "colcon's own arguments.") var arguments: [String] = []

    func run() throws {
        let wrapper = BuildWrapper(tool: "colcon")
        let invocation = ColconInvocation(arguments: arguments, makeflags: Posix.environment("MAKEFLAGS"),
                                          parallelLevel: Posix.environment("CMAKE_BUILD_PARALLEL_LEVEL"))
        guard invocation.isBuild else { try wrapper.exec(arguments, masquerade: false, note: "not a build, run as it is") }
        let choice = wrapper.choose(user: invocation.userJobs)
        let workers = invocation.userWorkers ?? JobCountPolicy.packagesAtOnce(localCores: LocalCores.current())
        let launcher = BuildWrapper.launcherPath()
        wrapper.record(choice, workers: workers, in: invocation.buildBase(workingDirectory: Posix.currentDirectory() ?? "."))
        try wrapper.exec(invocation.arguments(launcher: launcher, workers: workers), environment: invocation.environment(jobs: choice.jobs),
                         masquerade: false, note: "\(choice.reason) for each package, \(workers) package(s) at once\(invocation.userWorkers == nil ? "" : " as given")\(invocation.make.droppedNote)")
    }
}

struct CatkinWrapper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catkin",
        abstract: "`catkin build` (catkin_tools) with swlaunch for every package and the parallelism chosen from the cluster.",
        discussion: """
            The launcher reaches packages through CMAKE_C_COMPILER_LAUNCHER and CMAKE_CXX_COMPILER_LAUNCHER in the \\
            environment, which CMake reads when a build folder is first configured (`catkin clean` a workspace \\
            built without it). -j N as for `swlaunch make`, with -l N so that catkin's jobserver does not hold jobs \\
            back while the client preprocesses; -p is this machine's cores plus one, at least 2. Your -j, -l and -p stand. Other verbs \\
            run unchanged.
            """)
    @Argument(parsing: .captureForPassthrough, help: "catkin's own arguments.") var arguments: [String] = []

    func run() throws {
        let wrapper = BuildWrapper(tool: "catkin")
        let invocation = CatkinBuildInvocation(arguments: arguments)
        guard arguments.contains("build") else { try wrapper.exec(arguments, masquerade: false, note: "not a build, run as it is") }
        let choice = wrapper.choose(user: invocation.userJobs)
        let packages = invocation.userPackages ?? JobCountPolicy.packagesAtOnce(localCores: LocalCores.current())
        try wrapper.exec(invocation.arguments(jobs: choice.jobs, packages: packages), environment: launcherEnvironment(BuildWrapper.launcherPath()),
                         masquerade: false, note: "\(choice.reason) shared by the packages, \(packages) package(s) at once")
    }
}

struct CatkinMakeWrapper: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catkin_make",
        abstract: "catkin_make with swlaunch for every package and -j chosen from the cluster.",
        discussion: """
            The launcher through CMAKE_C_COMPILER_LAUNCHER and CMAKE_CXX_COMPILER_LAUNCHER in the environment (a \\
            new build folder takes it); -jN -lN as for `swlaunch make` unless your arguments or MAKEFLAGS have -j.
            """)
    @Argument(parsing: .captureForPassthrough, help: "catkin_make's own arguments.") var arguments: [String] = []

    func run() throws {
        let wrapper = BuildWrapper(tool: "catkin_make")
        let makeflags = Posix.environment("MAKEFLAGS")
        let choice = wrapper.choose(user: CatkinMakeInvocation.userJobs(arguments, makeflags: makeflags))
        try wrapper.exec(CatkinMakeInvocation.arguments(arguments, makeflags: makeflags, jobs: choice.jobs),
                         environment: launcherEnvironment(BuildWrapper.launcherPath()), masquerade: false, note: choice.reason)
    }
}
