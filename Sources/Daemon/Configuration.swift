import ClusterKey
import SystemSupport
import Logging

/// Everything a daemon needs to run, from its command line.
public struct DaemonConfiguration: Sendable {
    public var name: String
    public var socketPath: String
    /// Where peers reach the job listener; nil when the daemon takes no remote jobs.
    public var listenHost: String?
    public var listenPort: Int
    /// The address announced to the scheduler for the job listener; empty lets the scheduler use the connection's source.
    public var advertisedAddress: String
    /// The scheduler and its standbys, in order of preference (``SchedulerLink``).
    public var schedulers: [HostPort]
    /// Remote job slots offered to peers.
    public var maxJobs: Int
    /// Local slots for preprocessing, local fallbacks and links (the client's cores).
    public var localSlots: Int
    public var acceptsRemote: Bool
    public var stateDirectory: String
    public var platform: String
    /// Helpers tried for one job before it compiles locally.
    public var maximumAttempts: Int = 3
    /// The processors this daemon may use, when its caller has read them already (``LocalCores``); nil: read at start.
    public var processors: Int?
    /// Size limit of the unpacked environments received from peers (least recently used go first).
    public var environmentCacheBytes: Int64 = 10 << 30
    /// Size limit of the file contents received from peers (least recently used go first).
    public var blobCacheBytes: Int64 = 2 << 30
    /// Deadlines of remote attempts.
    public var deadlines = DeadlinePolicy()
    /// What one sandboxed job may use.
    public var sandboxLimits = SandboxLimits()
    /// TLS from the cluster key for every TCP connection, or none (loopback, or `--insecure`).
    public var security: TransportSecurity = .none
    /// The REAPI backend (jobs go to a REAPI service instead of the scheduler) and worker (this daemon serves a
    /// REAPI service's Remote Workers API), when set.
    public struct REAPI: Sendable {
        public var client: REAPISettings?
        public var worker: REAPISettings?
        public init() {}
    }
    public var reapi = REAPI()
    public var logger: Logger

    public init(name: String, socketPath: String, listenHost: String?, listenPort: Int, advertisedAddress: String,
                schedulers: [HostPort], maxJobs: Int, localSlots: Int, acceptsRemote: Bool,
                stateDirectory: String, platform: String, logger: Logger) {
        self.name = name
        self.socketPath = socketPath
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.advertisedAddress = advertisedAddress
        self.schedulers = schedulers
        self.maxJobs = maxJobs
        self.localSlots = localSlots
        self.acceptsRemote = acceptsRemote
        self.stateDirectory = stateDirectory
        self.platform = platform
        self.logger = logger
    }
}
