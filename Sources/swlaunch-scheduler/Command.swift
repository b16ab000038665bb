import ArgumentParser
import ClusterKey
import Config
import Logging
import SchedulerService
import SystemSupport
import WireNIO

@main
struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swlaunch-scheduler",
        abstract: "Tracks swlaunch daemons and grants each compile the host that finishes it first.",
        discussion: """
            One scheduler serves a cluster. Daemons connect to it with --scheduler HOST:PORT. With a cluster key \
            (--key-file, cluster.key_file, SWLAUNCH_KEY_FILE) every connection is mutual TLS 1.3 and only holders \
            of the key can register or ask for hosts; without one the scheduler listens on loopback only, unless \
            --insecure.
            """,
        version: "0.1.0")

    @Option(help: "Address and port to listen on.")
    var listen: String = "0.0.0.0:\(DefaultPorts.scheduler)"

    @Option(help: "Seconds without a heartbeat before a daemon is dropped.")
    var heartbeatTimeout: Double = 15

    @Option(help: "Network name to answer UDP discovery broadcasts for (daemons started with the same --netname find this scheduler).")
    var netname: String?

    @Option(help: "UDP port for discovery.")
    var discoveryPort: Int = DefaultPorts.discovery

    @Option(help: "Log level: trace, debug, info, warning, error.")
    var logLevel: String = "info"

    @Option(help: "The cluster key (from `swlaunch key generate`).")
    var keyFile: String?

    @Flag(help: "Listen on a non-loopback address without a cluster key: any host that reaches it can join.")
    var insecure = false

    @Option(help: ArgumentHelp("Serve the read-only dashboard, /metrics (Prometheus) and the JSON API on this address and port.",
                               valueName: "address:port"))
    var http: String?

    @Option(help: ArgumentHelp("SQLite file of the job history and the measured host speeds, kept across restarts; \"none\" keeps none. Default: <state>/scheduler-history.sqlite.",
                               valueName: "path"))
    var history: String?

    @Option(help: "Size bound of the job history in MiB: the oldest jobs go first.")
    var historySizeMb: Int = 64

    func run() async throws {
        let config: Configuration
        do {
            config = try Configuration.load(workingDirectory: "/", environment: Posix.environment, includeProject: false)
        } catch {
            throw ValidationError(error.description)
        }
        let (host, port) = try parseHostPort(listen, option: "--listen")
        var logger = Logger(label: "swlaunch-scheduler")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let security: TransportSecurity
        do {
            security = try TransportSecurity.resolve(keyFile: keyFile ?? config.string("cluster.key_file"),
                                                     insecure: insecure || config.boolean("cluster.insecure") == true,
                                                     listenHosts: [host], name: "scheduler")
        } catch {
            throw ValidationError("\(error)")
        }
        if !security.isAuthenticated, !TransportSecurity.isLoopback(host) {
            logger.warning("INSECURE: no cluster key; any host that reaches this port can join the cluster (--insecure)")
        }
        var server = SchedulerServer(host: host, port: port, heartbeatTimeout: heartbeatTimeout, netname: netname,
                                     discoveryPort: discoveryPort, security: security, logger: logger)
        if let http {
            let (httpHost, httpPort) = try parseHostPort(http, option: "--http")
            server.http = (httpHost, httpPort)
        }
        guard historySizeMb >= 1 else { throw ValidationError("--history-size-mb must be at least 1 (got \(historySizeMb))") }
        server.historyMaximumBytes = Int64(historySizeMb) << 20
        switch history {
        case "none"?: server.historyPath = nil
        case let path?: server.historyPath = path
        case nil:
            server.historyPath = defaultStateDirectory() + "/scheduler-history.sqlite"
        }
        let configured = server
        try await runUntilTerminated("swlaunch-scheduler", logger: logger, drain: { await configured.control.drain() }) {
            try await configured.run()
        }
    }
}
