#if canImport(Glibc)
import Glibc
#endif

/// The processors this process may use: the machine's, capped by a cgroup CPU quota (v2 `cpu.max`, v1
/// `cpu.cfs_quota_us`/`cpu.cfs_period_us`), as on a lab client held to a fraction of a core or in a container.
public enum LocalCores {
    /// This process's processors now: those it may run on, capped by its cgroup's CPU quota.
    public static func current() -> Int {
        let online = Posix.usableCPUs() ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let cgroup = Posix.readFile("/proc/self/cgroup").map { String(decoding: $0, as: UTF8.self) } ?? ""
        guard let files = quotaFiles(procSelfCgroup: cgroup) else { return max(1, online) }
        let (quota, period) = quota(files) { path in Posix.readFile(path).map { String(decoding: $0, as: UTF8.self) } }
        return effective(online: online, quota: quota, period: period)
    }

    /// `online` capped by `quota`/`period` (microseconds; no quota when either is missing or not positive), rounded
    /// up, at least 1.
    public static func effective(online: Int, quota: Double?, period: Double?) -> Int {
        let cores = max(1, online)
        guard let quota, let period, quota > 0, period > 0 else { return cores }
        return max(1, min(cores, Int((quota / period).rounded(.up))))
    }

    /// Where this process's CPU quota is read from.
    public enum QuotaFiles: Sendable, Equatable {
        /// cgroup v2: one file, `"<quota> <period>"` or `"max <period>"`.
        case unified(cpuMax: String)
        /// cgroup v1's cpu controller: two files, the quota `-1` when there is none.
        case v1(quota: String, period: String)
    }

    /// The quota files of this process's cgroup, from `/proc/self/cgroup`: the v1 cpu controller when it is mounted
    /// (hybrid hierarchies list both), else the unified hierarchy.
    public static func quotaFiles(procSelfCgroup: String) -> QuotaFiles? {
        let lines = procSelfCgroup.split(separator: "\n")
        for line in lines {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[1].split(separator: ",").contains("cpu") else { continue }
            let directory = "/sys/fs/cgroup/" + fields[1] + (fields[2] == "/" ? "" : fields[2])
            return .v1(quota: directory + "/cpu.cfs_quota_us", period: directory + "/cpu.cfs_period_us")
        }
        guard let line = lines.first(where: { $0.hasPrefix("0::") }) else { return nil }
        let path = line.dropFirst(3)
        return .unified(cpuMax: "/sys/fs/cgroup" + (path == "/" ? "" : path) + "/cpu.max")
    }

    /// Quota and period from the files' contents (`read` returns a file's text, nil when absent).
    public static func quota(_ files: QuotaFiles, read: (String) -> String?) -> (quota: Double?, period: Double?) {
        func number(_ text: String?) -> Double? { text?.split(whereSeparator: \.isWhitespace).first.flatMap { Double($0) } }
        switch files {
        case let .unified(cpuMax):
            let words = read(cpuMax)?.split(whereSeparator: \.isWhitespace) ?? []
            guard words.count == 2 else { return (nil, nil) }
            return (Double(words[0]), Double(words[1]))
        case let .v1(quota, period):
            return (number(read(quota)), number(read(period)))
        }
    }
}
