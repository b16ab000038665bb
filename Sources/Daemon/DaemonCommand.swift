import ArgumentParser
import ClusterKey
import Config
import Foundation
import Logging
import NIOCore
import RemoteExecution
import SystemSupport
import Wire
import WireNIO
#if canImport(Glibc)
import Glibc
#endif

/// `swlaunchd`'s command line; `swlaunchd` itself only runs it.
public struct DaemonCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "swlaunchd",
        abstract: "The swlaunch peer daemon: serves local launchers and compiles jobs for peers in sandboxes.",
        discussion: """
            Launchers on this machine reach the daemon on a Unix socket (--socket, SWLAUNCH_SOCKET, default \
            /run/swlaunch/swlaunchd.sock for root, $XDG_RUNTIME_DIR/swlaunch/swlaunchd.sock otherwise). \
            Peers send jobs to --listen; the scheduler (--scheduler, or --netname for broadcast discovery) decides \
            who compiles what. Jobs from peers run in bubblewrap sandboxes; a machine that cannot sandbox refuses \
            them and says so in `swlaunch status`.

            Settings not given here come from /etc/swlaunch/config.toml, the user's config.toml and SWLAUNCH_* \
            variables (see `swlaunch config --keys`). SIGTERM or SIGINT stops the daemon.
            """,
        version: "0.1.0")

    @Option(help: "Unix socket for local launchers.")
    var socket: String?
    @Option(help: "Address and port for jobs from peers (default 0.0.0.0:8776).")
    var listen: String?
    @Option(help: "Address announced to the scheduler for --listen (default: the address the scheduler sees).")
    var advertise: String = ""
    @Option(help: "The scheduler's HOST:PORT; standbys follow after commas, in order of preference (A:8775,B:8775).")
    var scheduler: String?
    @Option(help: "Find the scheduler by UDP broadcast within this network name (when --scheduler is not given).")
    var netname: String?
    @Option(help: "UDP port for discovery broadcasts.")
    var discoveryPort: Int = DefaultPorts.discovery
    @Option(help: "Remote jobs run at once for peers (default: cores).")
    var maxJobs: Int?
    @Option(help: "Local slots for preprocessing, links and fallbacks (default: cores).")
    var localJobs: Int?
    @Flag(help: "Never compile for other machines.")
    var noRemote = false
    @Option(help: "Name shown in status (default: host name).")
    var name: String?
    @Option(help: "Directory for caches and job sandboxes.")
    var stateDir: String?
    @Option(help: ArgumentHelp("Platform announced to the scheduler instead of this machine's (labs and tests that model other machines).", valueName: "arch-os"))
    var platform: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?
    @Option(help: "The cluster key (from `swlaunch key generate`): every TCP connection is mutual TLS from it.")
    var keyFile: String?
    @Flag(help: "Listen on a non-loopback address without a cluster key: any host that reaches it can send jobs.")
    var insecure = false
    @Option(help: ArgumentHelp("Shortest deadline of a remote attempt (default 30).", valueName: "seconds"))
    var deadlineFloor: Int?
    @Option(help: ArgumentHelp("Longest deadline of a remote attempt (default 600).", valueName: "seconds"))
    var deadlineCeiling: Int?

    @Option(help: ArgumentHelp("Send jobs to this Remote Execution API service instead of a scheduler (host:port, grpc:// or grpcs://).", valueName: "endpoint"))
    var reapi: String?
    @Option(help: ArgumentHelp("The REAPI instance name (default: remote.instance_name, else empty).", valueName: "name"))
    var reapiInstance: String?
    @Option(help: ArgumentHelp("Serve this REAPI service's Remote Workers API as a bot: run its actions in this daemon's sandbox.", valueName: "endpoint"))
    var reapiWorker: String?
    @Option(help: ArgumentHelp("The REAPI action cache: read-write, read or off (default: jobs.cache, else read-write).", valueName: "policy"))
    var cache: String?
    public init() {}

    public func validate() throws {
        if let maxJobs, maxJobs < 1 { throw ValidationError("--max-jobs must be at least 1, not \(maxJobs)") }
        if let localJobs, localJobs < 1 { throw ValidationError("--local-jobs must be at least 1, not \(localJobs)") }
        if let deadlineFloor, let deadlineCeiling, deadlineFloor > deadlineCeiling {
            throw ValidationError("--deadline-floor (\(deadlineFloor)) is above --deadline-ceiling (\(deadlineCeiling))")
        }
    }

    public func run() async throws {
        // Machine-wide settings (/etc/swlaunch/config.toml, the user's file, SWLAUNCH_* variables) fill in
        // what the command line leaves out.
        let config: Configuration
        do {
            config = try Configuration.load(workingDirectory: "/", environment: Posix.environment, includeProject: false)
        } catch {
            throw ValidationError(error.description)
        }
        Zstd.payloadLevel = Int32(config.integer("jobs.compression_level") ?? 1)
        var resolved: ResolvedDaemonSettings
        do {
            resolved = try ResolvedDaemonSettings.resolve(options, config: config, hostName: Posix.hostName(),
                                                          cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        } catch {
            throw ValidationError("\(error)")
        }
        let logger = resolved.configuration.logger
        if let warning = resolved.warning { logger.warning("\(warning)") }
        // Blocking work runs on NIO's shared thread pool, and each compile for a peer holds one of its threads until
        // the compiler exits: a pool of NIO's default size (the machine's processors) below --max-jobs would queue
        // compiles behind each other, and the storing of the next job's files behind them. Set before first use.
        let processors = LocalCores.current()
        resolved.configuration.processors = processors
        if Posix.environment("NIO_SINGLETON_BLOCKING_POOL_THREAD_COUNT") == nil {
            NIOSingletons.blockingPoolThreadCountSuggestion = Self.blockingThreads(
                maxJobs: resolved.configuration.maxJobs, localCores: processors, machineCores: System.coreCount)
        }
        // Network work runs on NIO's shared event loops, one per processor this daemon may use: a client held to a
        // share of one (a cgroup quota) gets one loop, and a launcher's answer is not handed between two.
        if Posix.environment("NIO_SINGLETON_GROUP_LOOP_COUNT") == nil {
            NIOSingletons.groupLoopCountSuggestion = processors
        }
        if resolved.configuration.schedulers.isEmpty, let netname = resolved.netname {
            logger.info("looking for a scheduler by broadcast", metadata: ["netname": "\(netname)"])
            let (host, port) = try await Discovery.find(netname: netname, udpPort: discoveryPort,
                                                        key: resolved.configuration.security.discoveryKey, logger: logger)
            logger.info("found scheduler", metadata: ["scheduler": "\(host):\(port)"])
            resolved.configuration.schedulers = [HostPort(host: host, port: port)]
        }
        let daemon = try Daemon(resolved.configuration)
        try await runUntilTerminated("swlaunchd", logger: logger, drain: { await daemon.drain() }) { try await daemon.run() }
    }

    /// Threads for blocking work: one per compile it may run for peers, one per processor for the launcher side's
    /// reads (the contents a helper asks for; jobs are prepared on ``PreparationPool``'s own threads), and two for the
    /// rest (storing received files, sweeping finished jobs); at least NIO's default.
    static func blockingThreads(maxJobs: Int, localCores: Int, machineCores: Int) -> Int {
        max(machineCores, maxJobs + localCores + 2)
    }

    /// The command line as plain values.
    var options: DaemonOptions {
        DaemonOptions(socket: socket, listen: listen, advertise: advertise, scheduler: scheduler, netname: netname, maxJobs: maxJobs,
                      localJobs: localJobs, noRemote: noRemote, name: name, stateDir: stateDir, platform: platform, logLevel: logLevel,
                      keyFile: keyFile, insecure: insecure, deadlineFloor: deadlineFloor, deadlineCeiling: deadlineCeiling,
                      reapi: reapi, reapiInstance: reapiInstance, reapiWorker: reapiWorker, cache: cache)
    }
}

/// What `swlaunchd`'s options say, each nil (or false) when not given.
public struct DaemonOptions: Sendable {
    public var socket, listen: String?
    public var advertise: String = ""
    public var scheduler, netname: String?
    public var maxJobs, localJobs: Int?
    public var noRemote = false
    public var name, stateDir, platform, logLevel, keyFile: String?
    public var insecure = false
    public var deadlineFloor, deadlineCeiling: Int?
    public var reapi, reapiInstance, reapiWorker, cache: String?

    public init(socket: String? = nil, listen: String? = nil, advertise: String = "", scheduler: String? = nil, netname: String? = nil,
                maxJobs: Int? = nil, localJobs: Int? = nil, noRemote: Bool = false, name: String? = nil, stateDir: String? = nil,
                platform: String? = nil, logLevel: String? = nil, keyFile: String? = nil, insecure: Bool = false,
                deadlineFloor: Int? = nil, deadlineCeiling: Int? = nil, reapi: String? = nil, reapiInstance: String? = nil,
                reapiWorker: String? = nil, cache: String? = nil) {
        self.reapi = reapi; self.reapiInstance = reapiInstance; self.reapiWorker = reapiWorker; self.cache = cache
        self.socket = socket; self.listen = listen; self.advertise = advertise; self.scheduler = scheduler; self.netname = netname
        self.maxJobs = maxJobs; self.localJobs = localJobs; self.noRemote = noRemote; self.name = name; self.stateDir = stateDir
        self.platform = platform; self.logLevel = logLevel; self.keyFile = keyFile; self.insecure = insecure
        self.deadlineFloor = deadlineFloor; self.deadlineCeiling = deadlineCeiling
    }
}

/// A daemon's settings from its options, then the configuration files and variables, then the defaults.
public struct ResolvedDaemonSettings: Sendable {
    public var configuration: DaemonConfiguration
    /// The network name to find the scheduler by, when no address is known.
    public var netname: String?
    /// What the operator should hear about (listening beyond loopback without a key).
    public var warning: String?

    public static func resolve(_ options: DaemonOptions, config: Configuration, hostName: String, cores: Int) throws -> ResolvedDaemonSettings {
        var logger = Logger(label: "swlaunchd")
        logger.logLevel = Logger.Level(rawValue: options.logLevel ?? config.string("log.level") ?? "info") ?? .info
        let (listenHost, listenPort) = try parseHostPort(options.listen ?? config.string("daemon.listen") ?? "0.0.0.0:\(DefaultPorts.daemon)",
                                                         option: "--listen")
        let schedulers = try (options.scheduler ?? config.string("scheduler.address")).map { try HostPort.list($0, option: "--scheduler") } ?? []
        let noRemote = options.noRemote || config.boolean("daemon.remote") == false
        let name = options.name ?? hostName
        let security = try TransportSecurity.resolve(keyFile: options.keyFile ?? config.string("cluster.key_file"),
                                                     insecure: options.insecure || config.boolean("cluster.insecure") == true,
                                                     listenHosts: noRemote ? [] : [listenHost], name: name)
        var configuration = DaemonConfiguration(
            name: name, socketPath: options.socket ?? config.string("daemon.socket") ?? DaemonSocket.defaultPath(),
            listenHost: noRemote ? nil : listenHost, listenPort: listenPort, advertisedAddress: options.advertise,
            schedulers: schedulers,
            maxJobs: options.maxJobs ?? config.integer("daemon.max_jobs") ?? cores,
            localSlots: options.localJobs ?? config.integer("daemon.local_jobs") ?? cores, acceptsRemote: !noRemote,
            stateDirectory: options.stateDir ?? config.string("daemon.state_dir") ?? defaultStateDirectory(),
            platform: options.platform ?? currentPlatform(), logger: logger)
        configuration.security = security
        if let floor = options.deadlineFloor { configuration.deadlines.floor = .seconds(floor) }
        if let ceiling = options.deadlineCeiling { configuration.deadlines.ceiling = .seconds(ceiling) }
        configuration.reapi = try REAPIOptions.resolve(options, config: config)
        let warning = !security.isAuthenticated && !noRemote && !TransportSecurity.isLoopback(listenHost)
            ? "INSECURE: no cluster key; any host that reaches \(listenHost):\(listenPort) can send jobs (--insecure)" : nil
        return ResolvedDaemonSettings(configuration: configuration, netname: options.netname ?? config.string("scheduler.netname"), warning: warning)
    }
}

/// The REAPI settings from the options and configuration (docs/reapi.md).
enum REAPIOptions {
    static func resolve(_ options: DaemonOptions, config: Configuration) throws -> DaemonConfiguration.REAPI {
        var result = DaemonConfiguration.REAPI()
        let instance = options.reapiInstance ?? config.string("remote.instance_name") ?? ""
        var token: String?
        if let file = config.string("remote.token_file") {
            guard let bytes = Posix.readFile(file) else { throw ValidationError("remote.token_file \(file): unreadable") }
            token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func endpoint(_ text: String) throws -> REAPIEndpoint {
            var endpoint = try REAPIEndpoint.parse(text, instanceName: instance)
            endpoint.caFile = config.string("remote.ca_file")
            endpoint.bearerToken = token
            return endpoint
        }
        let cacheText = options.cache ?? config.string("jobs.cache") ?? "read-write"
        guard let cache = ActionCachePolicy(rawValue: cacheText) else {
            throw ValidationError("--cache \(cacheText): not one of read-write, read, off")
        }
        var properties: [(String, String)] = []
        for pair in (config.string("remote.properties") ?? "").split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("remote.properties: \(pair) is not NAME=VALUE") }
            properties.append((String(parts[0]).trimmingCharacters(in: .whitespaces), String(parts[1]).trimmingCharacters(in: .whitespaces)))
        }
        let backendEndpoint = options.reapi ?? (config.string("remote.backend") == "reapi" ? config.string("remote.endpoint") : nil)
        if options.reapi == nil, config.string("remote.backend") == "reapi", backendEndpoint == nil {
            throw ValidationError("remote.backend is reapi but remote.endpoint is not set")
        }
        if let backendEndpoint {
            result.client = REAPISettings(endpoint: try endpoint(backendEndpoint), cache: cache, properties: properties,
                                          platform: config.string("remote.platform"))
        }
        if let worker = options.reapiWorker {
            result.worker = REAPISettings(endpoint: try endpoint(worker), cache: cache, properties: properties)
        }
        return result
    }
}
