/// ninja's and `cmake --build`'s command lines as the wrappers read and extend them.
public enum NinjaInvocation {
    /// The user's `-j` (`-j8`, `-j 8`; `-j0` is ninja's "no limit").
    public static func userJobs(_ arguments: [String]) -> UserJobs? {
        var found: UserJobs?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "-j", index + 1 < arguments.count, let n = Int(arguments[index + 1]) {
                found = n == 0 ? .unlimited : .count(n)
                index += 1
            } else if argument.hasPrefix("-j"), let n = Int(argument.dropFirst(2)) {
                found = n == 0 ? .unlimited : .count(n)
            }
            index += 1
        }
        return found
    }

    /// The build folder: the last `-C DIR` (`-CDIR`), relative to `workingDirectory`, else the working directory.
    public static func directory(_ arguments: [String], workingDirectory: String) -> String {
        var found: String?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "-C", index + 1 < arguments.count { found = arguments[index + 1]; index += 1 }
            else if argument.hasPrefix("-C"), argument.count > 2 { found = String(argument.dropFirst(2)) }
            index += 1
        }
        guard let found else { return workingDirectory }
        return found.hasPrefix("/") ? found : workingDirectory + "/" + found
    }

    public static func arguments(_ arguments: [String], jobs: Int?) -> [String] {
        guard userJobs(arguments) == nil, let jobs else { return arguments }
        return ["-j", String(jobs)] + arguments
    }
}

/// `cmake --build DIR [options] [-- native options]`.
public enum CMakeBuildInvocation {
    /// The user's `-j`/`--parallel` (before `--`), else `CMAKE_BUILD_PARALLEL_LEVEL`; `-j` with no number leaves
    /// the count to the native tool.
    public static func userJobs(_ arguments: [String], parallelLevel: String?) -> UserJobs? {
        var found: UserJobs?
        var index = 0
        while index < arguments.count, arguments[index] != "--" {
            let argument = arguments[index]
            let next = index + 1 < arguments.count ? arguments[index + 1] : nil
            if argument == "-j" || argument == "--parallel" {
                if let next, let n = Int(next) { found = .count(n); index += 1 } else { found = .unlimited }
            } else if argument.hasPrefix("--parallel="), let n = Int(argument.dropFirst(11)) {
                found = .count(n)
            } else if argument.hasPrefix("-j"), let n = Int(argument.dropFirst(2)) {
                found = .count(n)
            }
            index += 1
        }
        if found == nil, let level = parallelLevel, let n = Int(level) { found = .count(n) }
        return found
    }

    /// The build folder after `--build`, relative to `workingDirectory`; nil without one.
    public static func directory(_ arguments: [String], workingDirectory: String) -> String? {
        guard let build = arguments.firstIndex(of: "--build"), build + 1 < arguments.count else { return nil }
        let folder = arguments[build + 1]
        return folder.hasPrefix("/") ? folder : workingDirectory + "/" + folder
    }

    /// `cmake --build DIR ...` with `--parallel N` after the directory when the user gave no count.
    public static func arguments(_ arguments: [String], parallelLevel: String?, jobs: Int?) -> [String] {
        guard userJobs(arguments, parallelLevel: parallelLevel) == nil, let jobs else { return arguments }
        guard let build = arguments.firstIndex(of: "--build"), build + 1 < arguments.count else { return arguments }
        var result = arguments
        result.insert(contentsOf: ["--parallel", String(jobs)], at: build + 2)
        return result
    }
}
