/// How many jobs a wrapped build runs, and why: the user's own `-j`, else `jobs.count` from the configuration
/// (what `swlaunch ninjalog --write` stores), else the cluster's free remote slots plus this machine's cores, else
/// this machine's cores.
public struct JobCountChoice: Sendable, Equatable {
    /// nil: the user's own choice is passed on as it is (`-j` without a number, say).
    public var jobs: Int?
    /// One line for the user, naming where the number came from.
    public var reason: String

    public init(jobs: Int?, reason: String) {
        self.jobs = jobs
        self.reason = reason
    }
}

public enum JobCountPolicy {
    /// The cluster as the scheduler sees it: the remote slots free now on hosts other than this one.
    public struct Cluster: Sendable, Equatable {
        public var freeRemoteSlots: Int
        public var helpers: Int
        public init(freeRemoteSlots: Int, helpers: Int) {
            self.freeRemoteSlots = freeRemoteSlots
            self.helpers = helpers
        }
    }

    /// Packages a workspace build (colcon's workers, catkin's `-p`) runs at once: one more than the local cores,
    /// at least two, so that while one package configures, links or installs here (local work), another's
    /// compiles keep the cluster busy.
    public static func packagesAtOnce(localCores: Int) -> Int { max(2, max(1, localCores) + 1) }

    public static func choose(user: UserJobs?, configured: (jobs: Int, location: String)?, cluster: Cluster?, localCores: Int) -> JobCountChoice {
        let cores = max(1, localCores)
        switch user {
        case let .count(n)?: return JobCountChoice(jobs: n, reason: "-j\(n) as given")
        case .unlimited?: return JobCountChoice(jobs: nil, reason: "-j without a limit, as given")
        case nil: break
        }
        if let (jobs, location) = configured {
            return JobCountChoice(jobs: jobs, reason: "-j\(jobs) from jobs.count (\(location))")
        }
        if let cluster, cluster.helpers > 0 {
            let jobs = cluster.freeRemoteSlots + cores
            return JobCountChoice(jobs: jobs, reason: "-j\(jobs): \(cluster.freeRemoteSlots) free remote slots on \(cluster.helpers) helper(s) + \(cores) local core(s)")
        }
        return JobCountChoice(jobs: cores, reason: "-j\(cores): no cluster answered, \(cores) local core(s)")
    }
}

/// A job count the user gave.
public enum UserJobs: Sendable, Equatable {
    case count(Int)
    /// `-j` alone (make: no limit).
    case unlimited
}

/// The processors this process may use: the machine's, capped by a cgroup CPU quota (v2 `cpu.max`, v1
/// `cpu.cfs_quota_us`/`cpu.cfs_period_us`), as on a lab client held to a fraction of a core or in a container.
public enum LocalCores {
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
