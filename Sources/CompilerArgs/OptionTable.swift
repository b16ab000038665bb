/// How the launcher treats one compiler option.
public enum OptionRule: Sendable, Equatable {
    /// Harmless for a remote compile; passed through.
    case pass
    /// Passed through and consumes the next argument as its value.
    case passWithValue
    /// The command must run locally; the string says why (counted in stats).
    case local(String)
    /// Same as ``local(_:)`` for an option that also consumes the next argument.
    case localWithValue(String)
}

/// One row of the decision table: an option spelling and how it matches.
public struct OptionSpec: Sendable {
    public enum Match: Sendable { case exact, prefix }
    public let spelling: String
    public let match: Match
    public let rule: OptionRule

    public init(_ spelling: String, _ match: Match, _ rule: OptionRule) {
        self.spelling = spelling
        self.match = match
        self.rule = rule
    }

    public init(_ spelling: String, _ rule: OptionRule) {
        self.init(spelling, .exact, rule)
    }
}

/// The decision table for gcc and clang drivers, as data.
///
/// Options the classifier handles structurally (`-c`, `-o`, `-x`, dependency options) are not listed here.
/// Anything not in the table and not structural passes through, which is right for the long tail of
/// code generation and warning flags. Order matters: the first match wins, so exact rows come before prefixes.
public let optionTable: [OptionSpec] = [
    // Not a compile to an object file.
    OptionSpec("-E", .local("preprocess-only")),
    OptionSpec("-S", .local("assembly-output")),
    OptionSpec("-fsyntax-only", .local("syntax-only")),
    OptionSpec("-M", .local("dependencies-only")),
    OptionSpec("-MM", .local("dependencies-only")),
    OptionSpec("-MG", .local("generated-headers")),
    OptionSpec("-Wp,", .prefix, .local("preprocessor-passthrough")),
    OptionSpec("-Xpreprocessor", .localWithValue("preprocessor-passthrough")),
    OptionSpec("-MJ", .localWithValue("compilation-database-output")),
    // Extra outputs or inputs a remote compile would not reproduce.
    OptionSpec("-save-temps", .prefix, .local("save-temps")),
    OptionSpec("--coverage", .local("coverage")),
    OptionSpec("-ftest-coverage", .local("coverage")),
    OptionSpec("-fprofile-arcs", .local("coverage")),
    OptionSpec("-fprofile-generate", .prefix, .local("profile")),
    OptionSpec("-fprofile-use", .prefix, .local("profile")),
    OptionSpec("-fprofile-instr-generate", .prefix, .local("profile")),
    OptionSpec("-fprofile-instr-use", .prefix, .local("profile")),
    OptionSpec("-fprofile-sample-use", .prefix, .local("profile")),
    OptionSpec("-fauto-profile", .prefix, .local("profile")),
    OptionSpec("-fcs-profile-generate", .prefix, .local("profile")),
    OptionSpec("-fsanitize-blacklist", .prefix, .local("reads-extra-file")),
    OptionSpec("-fsanitize-ignorelist", .prefix, .local("reads-extra-file")),
    OptionSpec("-fplugin", .prefix, .local("plugin")),
    OptionSpec("-fpass-plugin", .prefix, .local("plugin")),
    OptionSpec("-specs", .prefix, .local("specs-file")),
    OptionSpec("-B", .prefix, .local("compiler-prefix")),
    OptionSpec("-wrapper", .localWithValue("wrapper")),
    OptionSpec("-iplugindir", .prefix, .local("plugin")),
    OptionSpec("--config", .prefix, .local("config-file")),
    OptionSpec("-output-pch=", .prefix, .local("pch-output")),
    OptionSpec("--serialize-diagnostics", .prefix, .local("extra-output")),
    OptionSpec("--analyze", .local("not-a-compile")),
    OptionSpec("--precompile", .local("pch-output")),
    OptionSpec("-gsplit-dwarf", .local("split-dwarf")),
    OptionSpec("-fdump-", .prefix, .local("dump-files")),
    OptionSpec("-fstack-usage", .local("extra-output")),
    OptionSpec("-fcallgraph-info", .prefix, .local("extra-output")),
    OptionSpec("-ftime-trace", .prefix, .local("extra-output")),
    OptionSpec("-aux-info", .localWithValue("extra-output")),
    OptionSpec("-fopt-info", .prefix, .local("extra-output")),
    OptionSpec("-frecord-gcc-switches", .pass),
    OptionSpec("-march=native", .local("native-cpu")),
    OptionSpec("-mtune=native", .local("native-cpu")),
    OptionSpec("-mcpu=native", .local("native-cpu")),
    OptionSpec("-flto-incremental", .prefix, .local("extra-output")),
    OptionSpec("-emit-llvm", .pass),
    OptionSpec("-fmodules", .prefix, .local("modules")),
    OptionSpec("-fmodule-", .prefix, .local("modules")),
    OptionSpec("-fcrash-diagnostics-dir", .prefix, .local("extra-output")),
    // Options whose value is a separate argument.
    OptionSpec("-I", .passWithValue), OptionSpec("-D", .passWithValue), OptionSpec("-U", .passWithValue),
    OptionSpec("-include", .passWithValue), OptionSpec("-imacros", .passWithValue),
    OptionSpec("-isystem", .passWithValue), OptionSpec("-iquote", .passWithValue),
    OptionSpec("-idirafter", .passWithValue), OptionSpec("-iprefix", .passWithValue),
    OptionSpec("-iwithprefix", .passWithValue), OptionSpec("-iwithprefixbefore", .passWithValue),
    OptionSpec("-isysroot", .passWithValue), OptionSpec("-imultilib", .passWithValue),
    OptionSpec("-Xassembler", .passWithValue), OptionSpec("-Xlinker", .passWithValue),
    OptionSpec("-L", .passWithValue), OptionSpec("-l", .passWithValue), OptionSpec("-u", .passWithValue),
    OptionSpec("-T", .passWithValue), OptionSpec("-z", .passWithValue), OptionSpec("--param", .passWithValue),
    OptionSpec("-arch", .passWithValue), OptionSpec("-target", .passWithValue), OptionSpec("-A", .passWithValue),
    OptionSpec("-G", .passWithValue), OptionSpec("--sysroot", .passWithValue),
    OptionSpec("-dumpbase", .passWithValue), OptionSpec("-dumpdir", .passWithValue),
    OptionSpec("-Xclang", .passWithValue),
]

/// Options that name a file or directory the preprocessor searches; the directories are created on the helper.
public let includeDirectoryOptions: [String] = ["-I", "-isystem", "-iquote", "-idirafter", "-isysroot", "--sysroot"]

/// Looks up the rule for `argument`, or nil when the table has no row for it.
public func rule(for argument: String) -> OptionRule? {
    for spec in optionTable {
        switch spec.match {
        case .exact where argument == spec.spelling:
            return spec.rule
        case .prefix where argument.hasPrefix(spec.spelling):
            return spec.rule
        default:
            continue
        }
    }
    return nil
}
