import ArgumentParser
import Config
import Launch
import Wire

/// `swlaunch stats|status`: everything except compiling. The launcher execs this for its subcommands.
@main
struct ControlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swlaunch",
        abstract: "A distributed C and C++ compiler launcher.",
        discussion: """
            Compile through swlaunch:  swlaunch <compiler> <args...>
            or with CMake:  -DCMAKE_C_COMPILER_LAUNCHER=swlaunch -DCMAKE_CXX_COMPILER_LAUNCHER=swlaunch
            or by putting the masquerade directory (<prefix>/lib/swlaunch/bin) first on PATH.
            SWLAUNCH_DISABLE=1 runs the compiler directly; SWLAUNCH_SOCKET names the daemon's socket.
            """,
        version: "0.1.0",
        subcommands: [Stats.self, Status.self, ConfigCommand.self, Doctor.self])
}

func askDaemon(_ message: Message) throws -> String {
    let config = try? Configuration.load(workingDirectory: Posix.currentDirectory() ?? "/", environment: Posix.environment)
    let path = config?.string("daemon.socket") ?? DaemonConnection.defaultSocketPath()
    do {
        let connection = try DaemonConnection(path: path, role: .tool, timeoutSeconds: 15)
        try connection.send(message)
        switch try connection.receive() {
        case let .stats(json), let .status(json): return json
        case let .error(text): throw ValidationError(text)
        case let other: throw ValidationError("unexpected reply \(other.kind) from the daemon")
        }
    } catch let error as FrameError {
        throw ValidationError("no swlaunchd answering on \(path): \(error)")
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "This machine's jobs by where they ran, with fallback reasons.")
    @Flag(help: "Print JSON (fields remote, local, fallback, served, and reasons).") var json = false
    @Flag(help: "Zero the counters.") var reset = false

    func run() throws {
        let text = try askDaemon(.statsRequest(reset: reset))
        print(json ? text : StatsTable.render(text))
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The cluster as the scheduler sees it: hosts, slots, running jobs, speed, load.")
    @Flag(help: "Print JSON with a hosts array (name, address, max_jobs, running, load, speed ...).") var json = false

    func run() throws {
        let text = try askDaemon(.statusRequest)
        print(json ? text : StatsTable.renderStatus(text))
    }
}
