import Foundation

// The JSON records that cross process boundaries: `swlaunch stats`, `swlaunch status` and swlaunchd's job journal.
// Writers (swlaunchd, swlaunch-scheduler) and readers (swlaunch stats/status/doctor/ninjalog, tests) share these
// types, so a field cannot be written under one name and read under another; docs/cli.md lists the same
// fields and a test holds the two together. Not for the launcher's hot path (Foundation).

/// A daemon's counts of jobs by where they ran (`swlaunch stats --json`).
public struct StatsRecord: Codable, Sendable, Equatable {
    /// Sums over remote jobs, in microseconds.
    public struct Timings: Codable, Sendable, Equatable {
        public var queue: UInt64 = 0, preprocess: UInt64 = 0, transfer: UInt64 = 0, compile: UInt64 = 0
        public init() {}
    }

    /// Jobs compiled on a helper for this machine.
    public var remote = 0
    /// Jobs the launcher compiled here by choice (not distributable).
    public var local = 0
    /// Jobs that were to be distributed and compiled here instead.
    public var fallback = 0
    /// Jobs compiled here for peers.
    public var served = 0
    /// Remote attempts that gave no verdict and were tried elsewhere (or fell back).
    public var helperFailures = 0
    public var localReasons: [String: Int] = [:]
    public var fallbackReasons: [String: Int] = [:]
    /// Remote jobs by helper name.
    public var remoteHosts: [String: Int] = [:]
    /// Failed remote attempts by failure code (`deadline`, `signal`, `connection`, ...).
    public var helperFailureReasons: [String: Int] = [:]
    public var remoteTimingsUs = Timings()
    /// How jobs' inputs were found: `daemon` (the daemon's include scan) or `compiler` (the launcher ran the
    /// compiler's preprocessor).
    public var inputScans: [String: Int] = [:]
    /// Why the daemon's include scan left a job to the compiler's (`computed #include`, an option, clang, ...).
    public var compilerScanReasons: [String: Int] = [:]
    /// Remote jobs answered from a REAPI service's action cache (counted in `remote` too).
    public var cacheHits = 0
    /// Connections this machine opened to helpers for its jobs (a connection is kept for the next job to the same
    /// helper, so a build opens about one per helper slot).
    public var helperConnections = 0
    /// Remote attempts a helper gave back before starting them, for a helper with an idle processor (the job went
    /// there); not failures.
    public var moved = 0

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case remote, local, fallback, served
        case helperFailures = "helper_failures", localReasons = "local_reasons", fallbackReasons = "fallback_reasons"
        case remoteHosts = "remote_hosts", helperFailureReasons = "helper_failure_reasons", remoteTimingsUs = "remote_timings_us"
        case inputScans = "input_scans", compilerScanReasons = "compiler_scan_reasons", cacheHits = "cache_hits"
        case helperConnections = "helper_connections", moved
    }
    /// The JSON field names, in documentation order.
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }
}

/// The scheduler's view of the cluster (`swlaunch status --json`).
public struct StatusRecord: Codable, Sendable, Equatable {
    /// One registered daemon.
    public struct Host: Codable, Sendable, Equatable {
        public var name: String
        /// The daemon's stable id (docs/protocol.md, version 4).
        public var id: String
        public var address: String
        public var port: Int
        public var maxJobs: Int
        /// The processors its jobs run on (its slots when it does not say): jobs running past them wait for one.
        public var cores: Int
        public var running: Int
        public var load: Double
        /// Input bytes per microsecond of compile; nil until measured.
        public var speed: Double?
        public var jobsDone: Int
        public var acceptsRemote: Bool
        public var platform: String
        public var note: String
        /// Seconds the scheduler still avoids the host after an infrastructure failure.
        public var avoidedForS: Double

        public init(name: String, id: String, address: String, port: Int, maxJobs: Int, cores: Int? = nil, running: Int, load: Double,
                    speed: Double?, jobsDone: Int, acceptsRemote: Bool, platform: String, note: String, avoidedForS: Double) {
            self.name = name; self.id = id; self.address = address; self.port = port; self.maxJobs = maxJobs
            self.cores = cores ?? maxJobs
            self.running = running; self.load = load; self.speed = speed; self.jobsDone = jobsDone
            self.acceptsRemote = acceptsRemote; self.platform = platform; self.note = note; self.avoidedForS = avoidedForS
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, id, address, port, maxJobs = "max_jobs", cores, running, load, speed, jobsDone = "jobs_done"
            case acceptsRemote = "accepts_remote", platform, note, avoidedForS = "avoided_for_s"
        }
        public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }

        // `speed` is written as null until measured, so that every field is always present.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name); try c.encode(id, forKey: .id); try c.encode(address, forKey: .address)
            try c.encode(port, forKey: .port); try c.encode(maxJobs, forKey: .maxJobs); try c.encode(cores, forKey: .cores)
            try c.encode(running, forKey: .running)
            try c.encode(load, forKey: .load); try c.encode(speed, forKey: .speed); try c.encode(jobsDone, forKey: .jobsDone)
            try c.encode(acceptsRemote, forKey: .acceptsRemote); try c.encode(platform, forKey: .platform)
            try c.encode(note, forKey: .note); try c.encode(avoidedForS, forKey: .avoidedForS)
        }
    }

    /// How the scheduler's connections are protected: `mutual TLS (cluster key …)` or a line starting `INSECURE`.
    public var security: String
    public var hosts: [Host]

    public init(security: String, hosts: [Host]) {
        self.security = security
        self.hosts = hosts
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case security, hosts }
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }
}

/// One line of swlaunchd's job journal (`<state>/jobs.jsonl`): a job that ran on a helper, for `swlaunch ninjalog`.
public struct JournalEntry: Codable, Sendable, Equatable {
    /// When the result came back (microseconds since the epoch).
    public var endUs: UInt64
    public var host: String
    /// The job's outputs, absolute.
    public var outputs: [String]
    public var queueUs: UInt64
    public var preprocessUs: UInt64
    public var transferUs: UInt64
    public var compileUs: UInt64

    public init(endUs: UInt64, host: String, outputs: [String], queueUs: UInt64, preprocessUs: UInt64, transferUs: UInt64, compileUs: UInt64) {
        self.endUs = endUs; self.host = host; self.outputs = outputs
        self.queueUs = queueUs; self.preprocessUs = preprocessUs; self.transferUs = transferUs; self.compileUs = compileUs
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case endUs = "end_us", host, outputs, queueUs = "queue_us", preprocessUs = "preprocess_us"
        case transferUs = "transfer_us", compileUs = "compile_us"
    }
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }
}

/// What a build wrapper (`swlaunch ninja`, `cmake --build`, `colcon build`) chose, kept in the build folder as
/// `.swlaunch-wrap.json` so that `swlaunch ninjalog` can set the measured build beside the count it ran with.
public struct WrapRecord: Codable, Sendable, Equatable {
    /// The file's name in the build folder (for colcon: the build base).
    public static let fileName = ".swlaunch-wrap.json"

    public var tool: String
    /// The job count given to each build; nil when the user's own unnumbered `-j` was passed on.
    public var jobs: Int?
    /// colcon's packages at once, for a workspace.
    public var workers: Int?
    /// The wrapper's one line on where the count came from.
    public var reason: String
    /// When the wrapper ran (seconds since the epoch).
    public var time: Double

    public init(tool: String, jobs: Int?, workers: Int?, reason: String, time: Double) {
        self.tool = tool; self.jobs = jobs; self.workers = workers; self.reason = reason; self.time = time
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case tool, jobs, workers, reason, time }
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }
}

/// JSON text for records: keys sorted, one line.
public enum RecordJSON {
    public static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // The records hold only strings, numbers and booleans: encoding cannot fail.
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
    }

    /// Decodes a record; the error names the type and what did not fit.
    public static func decode<T: Decodable>(_ type: T.Type, from text: some Collection<UInt8>) throws(RecordError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text))
        } catch {
            throw RecordError(type: "\(type)", reason: "\(error)")
        }
    }
}

/// A JSON record that could not be read.
public struct RecordError: Error, CustomStringConvertible {
    public let type: String
    public let reason: String
    public var description: String { "not a valid \(type): \(reason)" }
}
