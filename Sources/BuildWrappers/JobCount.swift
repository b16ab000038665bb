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
