import ArgumentParser
import ClusterKey
import Config
import Daemon
import Logging
import SystemSupport
import Wire
import WireNIO
#if canImport(Glibc)
import Glibc
#endif

@main
struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
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
    @Option(help: "The scheduler's HOST:PORT.")
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

    func validate() throws {
        if let maxJobs, maxJobs < 1 { throw ValidationError("--max-jobs must be at least 1, not \(maxJobs)") }
        if let localJobs, localJobs < 1 { throw ValidationError("--local-jobs must be at least 1, not \(localJobs)") }
        if let deadlineFloor, let deadlineCeiling, deadlineFloor > deadlineCeiling {
            throw ValidationError("--deadline-floor (\(deadlineFloor)) is above --deadline-ceiling (\(deadlineCeiling))")
        }
    }

    func run() async throws {
        // Machine-wide settings (/etc/swlaunch/config.toml, the user's file, SWLAUNCH_* variables) fill in
        // what the command line leaves out.
        let config: Configuration
        do {
            config = try Configuration.load(workingDirectory: "/", environment: Posix.environment, includeProject: false)
        } catch {
            throw ValidationError(error.description)
        }
        Zstd.payloadLevel = Int32(config.integer("jobs.compression_level") ?? 1)
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        var logger = Logger(label: "swlaunchd")
        logger.logLevel = Logger.Level(rawValue: logLevel ?? config.string("log.level") ?? "info") ?? .info
        let (listenHost, listenPort) = try parseHostPort(listen ?? config.string("daemon.listen") ?? "0.0.0.0:\(DefaultPorts.daemon)", option: "--listen")
        var schedulerAddress = try (scheduler ?? config.string("scheduler.address")).map { try parseHostPort($0, option: "--scheduler") }
        let netname = netname ?? config.string("scheduler.netname")
        let maxJobs = maxJobs ?? config.integer("daemon.max_jobs")
        let localJobs = localJobs ?? config.integer("daemon.local_jobs")
        let noRemote = noRemote || config.boolean("daemon.remote") == false
        let stateDir = stateDir ?? config.string("daemon.state_dir")
        let socket = socket ?? config.string("daemon.socket")
        var hostBuffer = [CChar](repeating: 0, count: 256)
        gethostname(&hostBuffer, 255)
        let hostName = hostBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let security: TransportSecurity
        do {
            security = try TransportSecurity.resolve(keyFile: keyFile ?? config.string("cluster.key_file"),
                                                     insecure: insecure || config.boolean("cluster.insecure") == true,
                                                     listenHosts: noRemote ? [] : [listenHost], name: name ?? hostName)
        } catch {
            throw ValidationError("\(error)")
        }
        if !security.isAuthenticated, !noRemote, !TransportSecurity.isLoopback(listenHost) {
            logger.warning("INSECURE: no cluster key; any host that reaches \(listenHost):\(listenPort) can send jobs (--insecure)")
        }
        if schedulerAddress == nil, let netname {
            logger.info("looking for a scheduler by broadcast", metadata: ["netname": "\(netname)"])
            schedulerAddress = try await Discovery.find(netname: netname, udpPort: discoveryPort, key: security.discoveryKey, logger: logger)
            logger.info("found scheduler", metadata: ["scheduler": "\(schedulerAddress!.0):\(schedulerAddress!.1)"])
        }
        let socketPath = socket ?? DaemonSocket.defaultPath()
        let daemonConfig = DaemonConfiguration(
            name: name ?? hostName, socketPath: socketPath, listenHost: noRemote ? nil : listenHost, listenPort: listenPort,
            advertisedAddress: advertise, schedulerHost: schedulerAddress?.0, schedulerPort: schedulerAddress?.1 ?? 0,
            maxJobs: maxJobs ?? cores, localSlots: localJobs ?? cores, acceptsRemote: !noRemote,
            stateDirectory: stateDir ?? defaultStateDirectory(), platform: platform ?? currentPlatform(), logger: logger)
        var configured = daemonConfig
        configured.security = security
        if let deadlineFloor { configured.deadlines.floor = .seconds(deadlineFloor) }
        if let deadlineCeiling { configured.deadlines.ceiling = .seconds(deadlineCeiling) }
        let daemon = try Daemon(configured)
        try await runUntilTerminated(drain: { await daemon.drain() }) { try await daemon.run() }
    }
}
