/// `catkin build` (catkin_tools) and `catkin_make` as the wrappers read and extend them.
///
/// The launcher reaches every package through the environment (`CMAKE_C_COMPILER_LAUNCHER`,
/// `CMAKE_CXX_COMPILER_LAUNCHER`, read by CMake when a build folder is first configured), not through
/// `--cmake-args`, which on `catkin build`'s command line would replace the profile's stored CMake arguments.
/// catkin's own jobserver shares `-j` among the packages and, by default, holds back new jobs when the load
/// average passes the number of cores plus one: exactly when the client's preprocessing fills its cores. The
/// wrapper gives `-j N -l N` (waiting launchers do not load the client, so N is no limit in practice) unless the
/// user gave `-j`/`-l`, and `-p <local cores>` packages at once unless given.
public struct CatkinBuildInvocation: Sendable, Equatable {
    public var arguments: [String]
    public var userJobs: UserJobs?
    public var userLoadLimit: Bool
    public var userPackages: Int?

    public init(arguments: [String]) {
        self.arguments = arguments
        var jobs: UserJobs?, load = false, packages: Int?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let next = index + 1 < arguments.count ? arguments[index + 1] : nil
            switch argument {
            case "-j", "--jobs": jobs = next.flatMap(Int.init).map(UserJobs.count) ?? .unlimited; index += 1
            case "-l", "--load-average": load = true; index += 1
            case "-p", "--parallel-packages": packages = next.flatMap(Int.init); index += 1
            case "--cmake-args", "--make-args", "--catkin-make-args":
                // Their values run to the next catkin option; a -j among make's is make's own.
                let first = index + 1
                while index + 1 < arguments.count, !Self.isCatkinOption(arguments[index + 1]) { index += 1 }
                if argument == "--make-args", first <= index, let own = MakeInvocation.jobs(in: Array(arguments[first...index])) { jobs = own }
            default:
                if argument.hasPrefix("-j"), let n = Int(argument.dropFirst(2)) { jobs = .count(n) }
                if argument.hasPrefix("--jobs="), let n = Int(argument.dropFirst(7)) { jobs = .count(n) }
                if argument.hasPrefix("-l"), Double(argument.dropFirst(2)) != nil { load = true }
                if argument.hasPrefix("-p"), let n = Int(argument.dropFirst(2)) { packages = n }
            }
            index += 1
        }
        userJobs = jobs
        userLoadLimit = load
        userPackages = packages
    }

    /// catkin build's own options end the values of `--cmake-args` and the like.
    static func isCatkinOption(_ word: String) -> Bool {
        ["--", "-j", "--jobs", "-p", "--parallel-packages", "-l", "--load-average", "--no-deps", "--this", "--start-with",
         "--continue-on-failure", "--force-cmake", "--pre-clean", "--verbose", "-v", "--dry-run", "-n", "--no-status",
         "--summarize", "-s", "--no-summarize", "--limit-status-rate", "--jobserver", "--no-jobserver", "--env-cache",
         "--no-env-cache", "--cmake-args", "--make-args", "--catkin-make-args", "--no-cmake-args", "--no-make-args",
         "--no-catkin-make-args", "--workspace", "-w", "--profile", "--mem-limit", "--interleave-output", "-i",
         "--no-notify", "--build-this", "--unbuilt", "--save-config", "--get-env"].contains(word)
    }

    public func arguments(jobs: Int?, packages: Int) -> [String] {
        var added: [String] = []
        if userJobs == nil, let jobs {
            added += ["-j", String(jobs)]
            if !userLoadLimit { added += ["-l", String(jobs)] }
        }
        if userPackages == nil { added += ["-p", String(packages)] }
        guard let verb = arguments.firstIndex(of: "build") else { return arguments }
        var result = arguments
        result.insert(contentsOf: added, at: verb + 1)
        return result
    }
}

/// `catkin_make [args]`: make's `-j`/`-l` among its own arguments; without them catkin_make gives make
/// `-j<cores> -l<cores>` (or MAKEFLAGS'). The wrapper adds `-jN -lN` unless the user's arguments or MAKEFLAGS have a `-j`.
public enum CatkinMakeInvocation {
    public static func userJobs(_ arguments: [String], makeflags: String?) -> UserJobs? {
        let own = arguments.prefix { $0 != "--cmake-args" && $0 != "--catkin-make-args" }
        return MakeInvocation.jobs(in: Array(own)) ?? MakeInvocation(arguments: [], makeflags: makeflags).userJobs
    }

    public static func arguments(_ arguments: [String], makeflags: String?, jobs: Int?) -> [String] {
        guard userJobs(arguments, makeflags: makeflags) == nil, let jobs else { return arguments }
        return ["-j\(jobs)", "-l\(jobs)"] + arguments
    }
}

/// The environment that gives every CMake build folder configured from now on the launcher.
public func launcherEnvironment(_ launcher: String) -> [String: String] {
    ["CMAKE_C_COMPILER_LAUNCHER": launcher, "CMAKE_CXX_COMPILER_LAUNCHER": launcher]
}
