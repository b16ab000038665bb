internal import CLinuxShims
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a program with posix_spawn, with standard output and error sent to files, and waits for it.
public enum Spawn {
    /// Exit status of a finished child: its exit code, or 128 + signal number.
    public static func run(_ path: String, _ arguments: [String], stdoutPath: String, stderrPath: String,
                           environment: [String]? = nil, workingDirectory: String? = nil) -> Int32? {
        guard let pid = start(path, arguments, stdoutPath: stdoutPath, stderrPath: stderrPath,
                              environment: environment, workingDirectory: workingDirectory) else { return nil }
        return wait(pid)
    }

    /// Starts a program without waiting for it; returns its pid. `descriptor3Path`, when given, is opened for
    /// writing as the child's descriptor 3 (for a status channel such as bwrap's `--json-status-fd 3`).
    public static func start(_ path: String, _ arguments: [String], stdoutPath: String, stderrPath: String,
                             environment: [String]? = nil, workingDirectory: String? = nil, descriptor3Path: String? = nil) -> pid_t? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let workingDirectory { _ = addChangeDirectory(&actions, workingDirectory) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let descriptor3Path { posix_spawn_file_actions_addopen(&actions, 3, descriptor3Path, O_WRONLY | O_CREAT | O_TRUNC, 0o600) }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        // A child starts with no blocked signals and default handlers, whatever threads of this
        // process (event loops, test runners, a daemon ignoring SIGTERM for its own shutdown) have set.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid = pid_t()
        let rc: Int32
        if let environment {
            var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) }
            envp.append(nil)
            defer { for p in envp { free(p) } }
            rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        } else {
            rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        }
        guard rc == 0 else { return nil }
        return pid
    }

    /// Starts a program (searched on PATH when its name has no slash) that inherits this process's descriptors
    /// and environment; returns its pid.
    public static func startInheriting(_ path: String, _ arguments: [String]) -> pid_t? {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        defer { for p in argv { free(p) } }
        var pid = pid_t()
        guard posix_spawnp(&pid, path, nil, nil, argv, environ) == 0 else { return nil }
        return pid
    }

    /// How a supervised child ended.
    public enum Ending: Equatable, Sendable {
        /// It exited or died by itself: its exit code, or 128 + signal number.
        case finished(Int32)
        /// `check` asked for it to be stopped (a limit); it was killed with SIGKILL.
        case stopped(String)
    }

    /// Waits for `pid`, calling `check` every `interval` while it runs; when `check` returns a reason, the child
    /// is killed (SIGKILL) and reaped. Waits on a pidfd, so a child that ends is noticed at once.
    public static func supervise(_ pid: pid_t, interval: Int32 = 200, check: () -> String?) -> Ending {
        let pidfd = swl_pidfd_open(pid)
        defer { if pidfd >= 0 { close(pidfd) } }
        while true {
            if pidfd >= 0 {
                var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&entry, 1, interval)
                if ready > 0 { return .finished(wait(pid)) }
            } else {
                var status: Int32 = 0
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == pid { return .finished(exitCode(status)) }
                usleep(UInt32(interval) * 1000)
            }
            if let reason = check() {
                kill(pid, SIGKILL)
                _ = wait(pid)
                return .stopped(reason)
            }
        }
    }

    static func exitCode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }

    /// What a program printed on standard output (`stream` 1) or standard error (`stream` 2), the other stream
    /// discarded; nil when it could not start or did not exit 0. Through a scratch file under TMPDIR.
    public static func output(_ path: String, _ arguments: [String], stream: Int = 1) -> [UInt8]? {
        let directory = Posix.environment("TMPDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((directory + "/swlaunch-output-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return nil }
        close(fd)
        let scratch = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { unlink(scratch) }
        guard run(path, arguments, stdoutPath: stream == 1 ? scratch : "/dev/null", stderrPath: stream == 2 ? scratch : "/dev/null") == 0 else {
            return nil
        }
        return Posix.readFile(scratch)
    }

    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 127 }
        }
        let signal = status & 0x7f
        if signal == 0 { return (status >> 8) & 0xff }
        return 128 + signal
    }
}

/// glibc's posix_spawn_file_actions_addchdir_np (2.29+), hidden from Swift behind _GNU_SOURCE.
@_silgen_name("posix_spawn_file_actions_addchdir_np")
private func addChangeDirectory(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: UnsafePointer<CChar>) -> Int32
