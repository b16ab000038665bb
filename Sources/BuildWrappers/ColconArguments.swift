/// `colcon build` as the wrapper reads and extends it.
///
/// The launcher joins every package's CMake arguments: right after the user's own `--cmake-args` (colcon keeps only
/// the last `--cmake-args` it is given, so a second one would drop the user's; theirs come after ours, so a
/// launcher of their own wins), else as a `--cmake-args` of its own at the end. colcon runs up to
/// `--parallel-workers` packages at once and gives each make or ninja `-j<cores> -l<cores>` unless MAKEFLAGS has a
/// `-j` or `-l`: the wrapper sets `MAKEFLAGS=-jN` (which keeps colcon's load limit out) and
/// `CMAKE_BUILD_PARALLEL_LEVEL=N` (which reaches ninja through `cmake --build`), N being the chosen job count, so
/// that one package alone can keep the cluster busy; workers default to `JobCountPolicy.packagesAtOnce` (the
/// local cores plus one, at least two), since configuring, linking and installing a package are local work that
/// another package's remote compiles can overlap.
public struct ColconInvocation: Sendable, Equatable {
    public var arguments: [String]
    /// The user's `--parallel-workers`.
    public var userWorkers: Int?
    /// The user's job count, from `-j` in MAKEFLAGS or CMAKE_BUILD_PARALLEL_LEVEL.
    public var userJobs: UserJobs?
    /// MAKEFLAGS without inherited load limits.
    public var make: MakeInvocation

    public init(arguments: [String], makeflags: String?, parallelLevel: String?) {
        self.arguments = arguments
        var workers: Int?
        for (index, argument) in arguments.enumerated() {
            if argument == "--parallel-workers", index + 1 < arguments.count { workers = Int(arguments[index + 1]) }
            if argument.hasPrefix("--parallel-workers=") { workers = Int(argument.dropFirst(19)) }
        }
        userWorkers = workers
        make = MakeInvocation(arguments: [], makeflags: makeflags)
        userJobs = make.userJobs ?? parallelLevel.flatMap(Int.init).map(UserJobs.count)
    }

    /// Where the verb is: global options (`--log-base DIR`, `--log-level LEVEL`) may come before it.
    var verbIndex: Int? {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--log-base" || argument == "--log-level" { index += 2; continue }
            if !argument.hasPrefix("-") { return index }
            index += 1
        }
        return nil
    }

    /// The build base (`--build-base DIR`, default `build`), relative to `workingDirectory`, where each package
    /// has its build folder.
    public func buildBase(workingDirectory: String) -> String {
        var base = "build"
        for (index, argument) in arguments.enumerated() {
            if argument == "--build-base", index + 1 < arguments.count { base = arguments[index + 1] }
            if argument.hasPrefix("--build-base=") { base = String(argument.dropFirst(13)) }
        }
        return base.hasPrefix("/") ? base : workingDirectory + "/" + base
    }

    /// Whether this is a `colcon build`.
    public var isBuild: Bool { verbIndex.map { arguments[$0] == "build" } ?? false }

    /// The command line with the launcher in the CMake arguments and the workers chosen.
    public func arguments(launcher: String, workers: Int) -> [String] {
        let launcherArguments = ["-DCMAKE_C_COMPILER_LAUNCHER=" + launcher, "-DCMAKE_CXX_COMPILER_LAUNCHER=" + launcher]
        var result = arguments
        if let cmakeArgs = result.firstIndex(of: "--cmake-args") {
            result.insert(contentsOf: launcherArguments, at: cmakeArgs + 1)
        } else {
            result += ["--cmake-args"] + launcherArguments
        }
        if userWorkers == nil, let verb = verbIndex {
            result.insert(contentsOf: ["--parallel-workers", String(workers)], at: verb + 1)
        }
        return result
    }

    /// MAKEFLAGS and CMAKE_BUILD_PARALLEL_LEVEL for each package's build, with `jobs` (nil: the user's own stand).
    public func environment(jobs: Int?) -> [String: String] {
        let flags = make.makeflags ?? ""
        guard let jobs, userJobs == nil else { return make.makeflags.map { ["MAKEFLAGS": $0] } ?? [:] }
        return ["MAKEFLAGS": (["-j\(jobs)"] + (flags.isEmpty ? [] : [flags])).joined(separator: " "),
                "CMAKE_BUILD_PARALLEL_LEVEL": String(jobs)]
    }
}
