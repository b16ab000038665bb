import SystemSupport

/// How helpers run bubblewrap, and whether it works on this machine: one probe for swlaunchd (which refuses
/// remote jobs when it fails) and `swlaunch doctor` (which says so), with the same flags as every job's sandbox.
public enum Bubblewrap {
    public static let defaultPath = "/usr/bin/bwrap"

    /// The isolation every job's sandbox gets: every namespace, nobody's ids, no capabilities, an empty environment.
    public static let isolation = ["--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL",
                                   "--die-with-parent", "--new-session", "--clearenv"]

    /// The environment `prlimit` and `bwrap` themselves start with: nothing from the job.
    public static let spawnEnvironment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]

    /// Why `bwrap` cannot sandbox jobs here, or nil when it can: runs `/bin/true` with the jobs' isolation.
    public static func unavailableReason(_ bwrap: String = defaultPath) -> String? {
        guard Posix.isExecutableFile(bwrap) else { return "bubblewrap (\(bwrap)) is not installed" }
        let status = Spawn.run(bwrap, [bwrap, "--ro-bind", "/", "/"] + isolation + ["/bin/true"],
                               stdoutPath: "/dev/null", stderrPath: "/dev/null", environment: spawnEnvironment)
        return status == 0 ? nil : "bubblewrap cannot create namespaces here"
    }
}
