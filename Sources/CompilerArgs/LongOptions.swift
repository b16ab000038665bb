/// gcc's and clang's `--long` spellings of options, rewritten to their short forms before anything is decided,
/// so that `--output=x.o`, `--specs=f` or `--prefix /d` cannot slip past a rule written for `-o`, `-specs=` or `-B`.
///
/// The names and their arities are gcc's (`common.opt`, `c.opt`: `Alias(...)` entries, `Separate` or `Joined`)
/// and its generic mappings (`opts-common.cc`): any other `--name` means `-fname`, `--no-name` means `-fno-name`,
/// `--warn-x` means `-Wx` and `--machine-x` means `-mx`. clang accepts the same common spellings.
enum LongOptions {
    /// Long name -> the short option it means and whether that takes its value joined (`-specs=f`) or
    /// as the next argument (`-o f`).
    static let aliases: [String: (short: String, joined: Bool, takesValue: Bool)] = [
        "--output": ("-o", false, true),
        "--prefix": ("-B", true, true),
        "--specs": ("-specs=", true, true),
        "--language": ("-x", false, true),
        "--include-directory": ("-I", true, true),
        "--include-directory-after": ("-idirafter", false, true),
        "--include-prefix": ("-iprefix", false, true),
        "--include-with-prefix": ("-iwithprefix", false, true),
        "--include-with-prefix-after": ("-iwithprefix", false, true),
        "--include-with-prefix-before": ("-iwithprefixbefore", false, true),
        "--include": ("-include", false, true),
        "--imacros": ("-imacros", false, true),
        "--define-macro": ("-D", true, true),
        "--undefine-macro": ("-U", true, true),
        "--assert": ("-A", true, true),
        "--for-assembler": ("-Wa,", true, true),
        "--for-linker": ("-Xlinker", false, true),
        "--force-link": ("-u", false, true),
        "--library-directory": ("-L", true, true),

        "--dumpbase": ("-dumpbase", false, true),
        "--dumpdir": ("-dumpdir", false, true),
        "--entry": ("-e", false, true),
        "--output-pch": ("-output-pch=", true, true),
        "--config": ("--config=", true, true),
        "--compile": ("-c", false, false),
        "--preprocess": ("-E", false, false),
        "--assemble": ("-S", false, false),
        "--dependencies": ("-M", false, false),
        "--user-dependencies": ("-MM", false, false),
        "--print-missing-file-dependencies": ("-MG", false, false),
        "--write-dependencies": ("-MD", false, false),
        "--write-user-dependencies": ("-MMD", false, false),
        "--save-temps": ("-save-temps", false, false),
        "--coverage": ("--coverage", false, false),
        "--no-integrated-cpp": ("-no-integrated-cpp", false, false),
        "--no-standard-includes": ("-nostdinc", false, false),
        "--no-standard-libraries": ("-nostdlib", false, false),
        "--no-line-commands": ("-P", false, false),
        "--no-warnings": ("-w", false, false),
        "--trace-includes": ("-H", false, false),
        "--comments": ("-C", false, false),
        "--comments-in-macros": ("-CC", false, false),
        "--all-warnings": ("-Wall", false, false),
        "--extra-warnings": ("-Wextra", false, false),
        "--pedantic": ("-pedantic", false, false),
        "--pedantic-errors": ("-pedantic-errors", false, false),
        "--verbose": ("-v", false, false),
        "--pipe": ("-pipe", false, false),
        "--time": ("-time", false, false),
        "--pass-exit-codes": ("-pass-exit-codes", false, false),
        "--traditional-cpp": ("-traditional-cpp", false, false),
        "--trigraphs": ("-trigraphs", false, false),
        "--ansi": ("-ansi", false, false),
        "--static": ("-static", false, false),
        "--shared": ("-shared", false, false),
        "--pie": ("-pie", false, false),
        "--no-canonical-prefixes": ("-no-canonical-prefixes", false, false),
        "--target-help": ("--target-help", false, false),
        "--help": ("--help", false, false),
        "--version": ("--version", false, false),
    ]

    /// Long options that are real options of their own (the decision table knows them): kept as given,
    /// `--name value` and `--name=value` alike.
    static let kept: [String: Bool] = [
        "--sysroot": true, "--param": true, "--target": true, "--gcc-toolchain": true, "--gcc-install-dir": true,
        "--ld-path": false, "--rtlib": false, "--unwindlib": false, "--serialize-diagnostics": true, "--analyze": false,
        "--precompile": false, "--cuda-path": false, "--offload-arch": false,
    ]

    /// Options with optional `=value` only (`--debug`, `--optimize`, `--std`).
    static let optionalValue: [String: String] = ["--debug": "-g", "--optimize": "-O", "--std": "-std="]

    /// Rewrites every long option to its short form; everything else is kept as it is.
    static func canonical(_ arguments: [String]) -> [String] {
        guard arguments.contains(where: { $0.hasPrefix("--") }) else { return arguments }
        var out: [String] = []
        out.reserveCapacity(arguments.count)
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            guard arg.hasPrefix("--"), arg.count > 2 else { out.append(arg); continue }
            let name: String, value: String?
            if let equals = arg.firstIndex(of: "=") {
                name = String(arg[..<equals])
                value = String(arg[arg.index(after: equals)...])
            } else {
                name = arg
                value = nil
            }
            if let separateValue = kept[name] {
                out.append(arg)
                if separateValue, value == nil, i < arguments.count {
                    out.append(arguments[i])
                    i += 1
                }
                continue
            }
            if let alias = aliases[name] {
                guard alias.takesValue else { out.append(alias.short); continue }
                let given: String
                if let value {
                    given = value
                } else if i < arguments.count {
                    given = arguments[i]
                    i += 1
                } else {
                    out.append(arg) // a missing value: left for the classifier to refuse
                    continue
                }
                if alias.joined { out.append(alias.short + given) } else { out += [alias.short, given] }
                continue
            }
            if let short = optionalValue[name] {
                out.append(short + (value ?? ""))
                continue
            }
            // gcc's generic mappings.
            let rest = String(arg.dropFirst(2))
            if rest.hasPrefix("warn-no-") { out.append("-Wno-" + rest.dropFirst(8)) }
            else if rest.hasPrefix("warn-") { out.append("-W" + rest.dropFirst(5)) }
            else if rest.hasPrefix("machine-no-") { out.append("-mno-" + rest.dropFirst(11)) }
            else if rest.hasPrefix("machine-") { out.append("-m" + rest.dropFirst(8)) }
            else if rest.hasPrefix("machine=") { out.append("-m" + rest.dropFirst(8)) }
            else if rest.hasPrefix("no-") { out.append("-fno-" + rest.dropFirst(3)) }
            else { out.append("-f" + rest) }
        }
        return out
    }
}
