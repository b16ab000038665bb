#if canImport(Glibc)
import Glibc
#endif
import SystemSupport

/// `swlaunch --sandbox-wrapper REPORT PROGRAM ARGS...`: what a helper's sandbox runs every program of a gcc
/// compile through (gcc's `-wrapper`). It runs the program and, when a signal ends it, appends
/// `signal <n> <program>` to REPORT and ends itself with the same signal, so the driver sees what it would have
/// seen. The helper reads REPORT to tell a killed compiler (an infrastructure failure: the OOM killer, a helper
/// shutting down) from the compiler's verdict, which gcc's exit status alone does not.
public enum SandboxWrapper {
    public static let flag = "--sandbox-wrapper"

    public static func main(_ argv: [String]) -> Never {
        guard argv.count >= 4 else {
            Launcher.fail("usage: swlaunch \(flag) REPORT PROGRAM [ARGS...]")
            exit(2)
        }
        let report = argv[2], program = argv[3]
        guard let pid = Spawn.startInheriting(program, Array(argv.dropFirst(3))) else {
            Launcher.fail("cannot run \(program): \(Posix.errorText(errno))")
            exit(127)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { exit(127) }
        }
        let signal = status & 0x7f
        if signal == 0 { exit((status >> 8) & 0xff) }
        _ = Posix.append(to: report, Array("signal \(signal) \(program)\n".utf8))
        Glibc.signal(signal, SIG_DFL)
        kill(getpid(), signal)
        exit(128 + signal)
    }
}
