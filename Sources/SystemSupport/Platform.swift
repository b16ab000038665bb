#if canImport(Glibc)
import Glibc
#endif
internal import CLinuxShims

/// The platform string daemons announce, `<machine>-linux` (for example `x86_64-linux`).
public func currentPlatform() -> String {
    var info = utsname()
    uname(&info)
    let machine = withUnsafeBytes(of: &info.machine) { raw in
        String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
    return machine + "-linux"
}

/// The daemon's default state directory: `/var/lib/swlaunch` for root, `~/.cache/swlaunch` otherwise.
public func defaultStateDirectory() -> String {
    getuid() == 0 ? "/var/lib/swlaunch" : (Posix.environment("HOME") ?? "/tmp") + "/.cache/swlaunch"
}

/// The daemon's default socket path, shared by the launcher and the daemon.
public enum DaemonSocket {
    public static func defaultPath() -> String {
        if let path = Posix.environment("SWLAUNCH_SOCKET"), !path.isEmpty { return path }
        if getuid() == 0 { return "/run/swlaunch/swlaunchd.sock" }
        if let runtime = Posix.environment("XDG_RUNTIME_DIR"), !runtime.isEmpty { return runtime + "/swlaunch/swlaunchd.sock" }
        return "/tmp/swlaunch-\(getuid())/swlaunchd.sock"
    }
}

extension Posix {
    /// This machine's host name.
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// The CPUs this process may run on (its affinity mask, so `taskset -c 0` gives 1); nil when unknown.
    public static func usableCPUs() -> Int? {
        let count = Int(swl_usable_cpus())
        return count > 0 ? count : nil
    }

    /// Makes the calling thread nicer (`nice` 0 to 19; higher yields more), for background work in a process whose
    /// other threads must not wait behind it. It stays so: an unprivileged thread cannot take it back.
    @discardableResult
    public static func lowerThreadPriority(to nice: Int32) -> Bool { swl_lower_thread_priority(nice) == 0 }

    /// The calling thread's nice value.
    public static func threadPriority() -> Int32 { swl_thread_priority() }
}
