#if canImport(Glibc)
import Glibc
#endif
import Launch

/// `swlaunch`: the compile path stays free of Foundation; subcommands run in `swlaunch-ctl`.
let argv = CommandLine.arguments
if argv.count >= 2, argv[1] == SandboxWrapper.flag { SandboxWrapper.main(argv) }
// An array, not a Set: a Set<String> costs its generic metadata at the start of every compile.
let subcommands: [String] = ["stats", "status", "config", "doctor", "env", "ninjalog", "key", "make", "ninja", "cmake", "colcon", "catkin", "catkin_make",
                                "--help", "-h", "help", "--version"]
if argv.count >= 2, subcommands.contains(argv[1]), argv.first.map({ $0.hasSuffix("swlaunch") }) ?? false {
    let ctl = (Posix.realPath("/proc/self/exe").map { String($0[..<($0.lastIndex(of: "/") ?? $0.endIndex)]) } ?? ".") + "/swlaunch-ctl"
    let code = Posix.exec(ctl, ["swlaunch"] + argv.dropFirst())
    Launcher.fail("cannot run \(ctl): \(Posix.errorText(code))")
    exit(127)
}
exit(launcherMain(argv))
