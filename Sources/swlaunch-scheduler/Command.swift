import ArgumentParser
import Logging
import SchedulerService
import SystemSupport
import WireNIO

@main
struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swlaunch-scheduler",
        abstract: "Tracks swlaunch daemons and grants each compile the host that finishes it first.",
        discussion: "One scheduler serves a cluster. Daemons connect to it with --scheduler HOST:PORT.",
        version: "0.1.0")

    @Option(help: "Address and port to listen on.")
    var listen: String = "0.0.0.0:8765"

    @Option(help: "Seconds without a heartbeat before a daemon is dropped.")
    var heartbeatTimeout: Double = 15

    @Option(help: "Network name to answer UDP discovery broadcasts for (daemons started with the same --netname find this scheduler).")
    var netname: String?

    @Option(help: "UDP port for discovery.")
    var discoveryPort: Int = 8765

    @Option(help: "Log level: trace, debug, info, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        let (host, port) = try parseHostPort(listen, option: "--listen")
        var logger = Logger(label: "swlaunch-scheduler")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let server = SchedulerServer(host: host, port: port, heartbeatTimeout: heartbeatTimeout, netname: netname,
                                     discoveryPort: discoveryPort, logger: logger)
        try await runUntilTerminated { try await server.run() }
    }
}
