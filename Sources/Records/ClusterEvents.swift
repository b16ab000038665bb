import Foundation

/// One job as monitors see it: granted, started, finished (`swlaunch monitor --json`, the dashboard's event
/// stream, the scheduler's history).
public struct JobEvent: Codable, Sendable, Equatable {
    /// Unique in one scheduler run: `<client>#<request id>` for granted jobs, `<client>!<n>` for local ones.
    public var key: String
    /// The daemon that submitted the job.
    public var client: String
    /// The helper; empty for a job compiled on its client.
    public var host: String
    public var source: String
    /// `running` until finished; then one of ``finishedOutcomes``.
    public var outcome: String
    /// The fallback reason of a local job, the failure code of a failed or refused attempt.
    public var reason: String
    /// When the scheduler granted it, or learnt of it (seconds since the epoch).
    public var granted: Double
    /// When the client began the attempt (0 until then).
    public var started: Double
    /// When the client reported it (0 while running).
    public var finished: Double
    public var queueUs: UInt64
    public var preprocessUs: UInt64
    public var transferUs: UInt64
    public var compileUs: UInt64
    public var bytesOut: UInt64
    public var bytesIn: UInt64

    public init(key: String, client: String, host: String, source: String = "", outcome: String, reason: String = "",
                granted: Double, started: Double = 0, finished: Double = 0, queueUs: UInt64 = 0, preprocessUs: UInt64 = 0,
                transferUs: UInt64 = 0, compileUs: UInt64 = 0, bytesOut: UInt64 = 0, bytesIn: UInt64 = 0) {
        self.key = key; self.client = client; self.host = host; self.source = source; self.outcome = outcome
        self.reason = reason; self.granted = granted; self.started = started; self.finished = finished
        self.queueUs = queueUs; self.preprocessUs = preprocessUs; self.transferUs = transferUs; self.compileUs = compileUs
        self.bytesOut = bytesOut; self.bytesIn = bytesIn
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case key, client, host, source, outcome, reason, granted, started, finished
        case queueUs = "queue_us", preprocessUs = "preprocess_us", transferUs = "transfer_us", compileUs = "compile_us"
        case bytesOut = "bytes_out", bytesIn = "bytes_in"
    }
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }

    public var isRunning: Bool { outcome == "running" }

    /// How a job can end: `remote`, `failed` (infrastructure, tried elsewhere), `refused`, `local`, `lost` (its
    /// client left with it in flight), `unused` (a grant its client did not use) or `moved` (its helper gave it back
    /// for an idle one), in the order tables list them.
    public static let finishedOutcomes = ["remote", "failed", "refused", "local", "lost", "unused", "moved"]
}

/// One message of the scheduler's event stream (docs/protocol.md, "Monitors").
///
/// `snapshot` comes first on every subscription (hosts, recent and running jobs); then `hosts` once a second with every
/// host's slots, load and speed, `host_joined` and `host_left`, and `job_granted`, `job_started`, `job_finished`.
public struct ClusterEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case snapshot, hosts
        case hostJoined = "host_joined", hostLeft = "host_left"
        case jobGranted = "job_granted", jobStarted = "job_started", jobFinished = "job_finished"
    }

    public var kind: Kind
    /// Seconds since the epoch.
    public var time: Double
    /// `snapshot`, `hosts`: every host; `host_joined`, `host_left`: the one.
    public var hosts: [StatusRecord.Host]?
    /// `snapshot`: the latest finished jobs (up to 500, oldest first), then the running ones; `job_*`: the one.
    public var jobs: [JobEvent]?

    public init(kind: Kind, time: Double, hosts: [StatusRecord.Host]? = nil, jobs: [JobEvent]? = nil) {
        self.kind = kind; self.time = time; self.hosts = hosts; self.jobs = jobs
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case kind, time, hosts, jobs }
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }
}

/// What the scheduler's history holds for a span of time (`swlaunch stats --since 1h`).
public struct HistoryRecord: Codable, Sendable, Equatable {
    /// Jobs per helper (remote outcomes only) with their summed compile time.
    public struct HostLine: Codable, Sendable, Equatable {
        public var host: String
        public var jobs: Int
        public var compileUs: UInt64
        /// The measured speed the scheduler keeps for it (input bytes per microsecond of compile).
        public var speed: Double?
        public init(host: String, jobs: Int, compileUs: UInt64, speed: Double?) {
            self.host = host; self.jobs = jobs; self.compileUs = compileUs; self.speed = speed
        }
        enum CodingKeys: String, CodingKey, CaseIterable { case host, jobs, compileUs = "compile_us", speed }
    }

    /// The start of the span (seconds since the epoch) and its length.
    public var since: Double
    public var seconds: Double
    public var jobs: Int
    /// Jobs by outcome (``JobEvent/finishedOutcomes``).
    public var outcomes: [String: Int]
    /// Local jobs by reason.
    public var fallbackReasons: [String: Int]
    public var hosts: [HostLine]
    /// Jobs by client daemon.
    public var clients: [String: Int]
    public var timingsUs: StatsRecord.Timings
    public var bytesOut: UInt64
    public var bytesIn: UInt64
    /// The oldest job the history still holds (seconds since the epoch; 0 when empty).
    public var oldest: Double

    public init(since: Double, seconds: Double, jobs: Int = 0, outcomes: [String: Int] = [:], fallbackReasons: [String: Int] = [:],
                hosts: [HostLine] = [], clients: [String: Int] = [:], timingsUs: StatsRecord.Timings = .init(),
                bytesOut: UInt64 = 0, bytesIn: UInt64 = 0, oldest: Double = 0) {
        self.since = since; self.seconds = seconds; self.jobs = jobs; self.outcomes = outcomes
        self.fallbackReasons = fallbackReasons; self.hosts = hosts; self.clients = clients; self.timingsUs = timingsUs
        self.bytesOut = bytesOut; self.bytesIn = bytesIn; self.oldest = oldest
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case since, seconds, jobs, outcomes, fallbackReasons = "fallback_reasons", hosts, clients
        case timingsUs = "timings_us", bytesOut = "bytes_out", bytesIn = "bytes_in", oldest
    }
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }
}
