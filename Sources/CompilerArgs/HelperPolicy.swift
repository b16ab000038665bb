/// What a helper checks for itself before it runs a job from a peer. Nothing the client's classifier decided
/// is trusted: options that load or run other programs are refused unless they name something inside the
/// job's toolchain environment, and the compiler sees only an allow-list of environment variables.
public enum HelperPolicy {
    /// Variables a job may pass to the compiler: those that change what it prints or produces, and nothing that
    /// changes which programs or libraries run (`LD_*`, `GCC_EXEC_PREFIX`, `COMPILER_PATH`, ...).
    public static let allowedEnvironment: Set<String> = [
        "LANG", "LC_ALL", "LC_MESSAGES", "LC_CTYPE", "LANGUAGE", "GCC_COLORS", "GCC_URLS", "TERM", "COLUMNS", "TZ",
        "SOURCE_DATE_EPOCH", "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH",
    ]

    /// The job's variables that pass the allow-list, as name and value.
    public static func environment(_ assignments: [String]) -> [(name: String, value: String)] {
        assignments.compactMap { assignment in
            guard let equals = assignment.firstIndex(of: "=") else { return nil }
            let name = String(assignment[..<equals])
            guard allowedEnvironment.contains(name) else { return nil }
            return (name, String(assignment[assignment.index(after: equals)...]))
        }
    }

    /// Why the arguments are refused, or nil when they may run. `inEnvironment` says whether an absolute,
    /// normalized path exists in the job's toolchain environment (not among the job's own files).
    public static func refusal(of givenArguments: [String], inEnvironment: (String) -> Bool) -> String? {
        let arguments = LongOptions.canonical(givenArguments)
        func mustBeInEnvironment(_ option: String, _ value: String) -> String? {
            let normalized = value.hasPrefix("/") && !value.split(separator: "/").contains { $0 == ".." || $0 == "." }
            if normalized, inEnvironment(value.count > 1 && value.hasSuffix("/") ? String(value.dropLast()) : value) { return nil }
            return "\(option) \(value): names a program, plugin or specs file outside the job's toolchain environment"
        }
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            let next: String? = i + 1 < arguments.count ? arguments[i + 1] : nil
            i += 1
            if arg.hasPrefix("@") { return "\(arg): response files are expanded by the client, not read on a helper" }
            if arg == "-wrapper" { return "-wrapper: runs another program" }
            // Options passed straight to cc1 or clang's frontend are checked like driver options.
            var inner: [String] = []
            if arg == "-Xclang" || arg == "-Xpreprocessor", let next {
                inner = [next]
                i += 1
                if next == "-load" || next == "-plugin" || next == "-add-plugin" || next == "-load-pass-plugin" {
                    guard i + 1 < arguments.count, arguments[i] == "-Xclang" else { return "\(arg) \(next): without a value" }
                    if let reason = mustBeInEnvironment(next, arguments[i + 1]) { return reason }
                    i += 2
                    continue
                }
            } else if arg.hasPrefix("-Wp,") {
                inner = arg.dropFirst(4).split(separator: ",").map(String.init)
            } else {
                inner = [arg]
            }
            for option in inner {
                if option == "-B" || option == "-specs" || option == "-iplugindir" || option == "-load" {
                    guard let value = next else { return "\(option): without a value" }
                    if let reason = mustBeInEnvironment(option, value) { return reason }
                    i += 1
                    continue
                }
                for prefix in ["-B", "-specs=", "-fplugin=", "-fpass-plugin=", "-iplugindir=", "--config=", "-fuse-ld=", "--ld-path="]
                where option.hasPrefix(prefix) {
                    let value = String(option.dropFirst(prefix.count))
                    // A linker named by a short name (`-fuse-ld=gold`) is looked up in the environment by the driver.
                    if prefix == "-fuse-ld=", !value.contains("/") { break }
                    if let reason = mustBeInEnvironment(prefix, value) { return reason }
                    break
                }
            }
        }
        return nil
    }
}
