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
        usage: """
            swlaunch <compiler> [<compiler-arguments>...]
            <compiler> [<compiler-arguments>...]      (through a masquerade link named like the compiler)
            swlaunch <subcommand>
            """,
        discussion: """
            swlaunch runs a compile on a faster machine of the cluster when it can, and gets back exactly what a \
            local compile would have produced: the same object and dependency file, the same diagnostics, the \
            same exit status. Linking, preprocessing only, several sources, stdin, precompiled headers, coverage \
            and profile options, -save-temps, plugins and -march=native run locally, as does every compile when \
            the daemon, the scheduler or a helper is unavailable.

            CMake: -DCMAKE_PROJECT_TOP_LEVEL_INCLUDES=<prefix>/share/swlaunch/cmake/swlaunch.cmake, or \
            -DCMAKE_C_COMPILER_LAUNCHER=swlaunch -DCMAKE_CXX_COMPILER_LAUNCHER=swlaunch.
            make and others: put <prefix>/lib/swlaunch/bin first on PATH.

            ENVIRONMENT
              SWLAUNCH_DISABLE=1   run the compiler directly
              SWLAUNCH_SOCKET      the local daemon's socket
              SWLAUNCH_FALLBACK    "local" (default) or "fail": what an infrastructure failure does
              SWLAUNCH_*           any configuration key; see `swlaunch config --keys`

            FILES
              swlaunch.toml (closest at or above the working directory), ~/.config/swlaunch/config.toml,
              /etc/swlaunch/config.toml

            EXIT STATUS
              The compiler's. 127 when the compiler is not found; 1 for a broken configuration, or an
              infrastructure failure with jobs.fallback = "fail".
            """,
        version: "0.1.0",
        subcommands: [Stats.self, Status.self, Monitor.self, ConfigCommand.self, Doctor.self, EnvCommand.self, NinjaLogCommand.self, KeyCommand.self,
                      MakeWrapper.self, NinjaWrapper.self, CMakeWrapper.self, ColconWrapper.self,
                      CatkinWrapper.self, CatkinMakeWrapper.self])
}

func askDaemon(_ message: Message) throws -> String {
    let config = try? Configuration.load(workingDirectory: Posix.currentDirectory() ?? "/", environment: Posix.environment)
    let path = config?.string("daemon.socket") ?? DaemonConnection.defaultSocketPath()
    do {
        let connection = try DaemonConnection(path: path, role: .tool, timeoutSeconds: 15)
        try connection.send(message)
        switch try connection.receive() {
        case let .stats(json), let .status(json), let .history(json): return json
        case let .error(text): throw ValidationError(text)
        case let other: throw ValidationError("unexpected reply \(other.kind) from the daemon")
        }
    } catch let error as FrameError {
        throw ValidationError("no swlaunchd answering on \(path): \(error)")
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "This machine's jobs by where they ran, with fallback reasons.",
        discussion: """
            Counts kept by the local daemon since it started (or since --reset): compiles that ran remote (by \
            helper), commands that ran locally by design (linking, -E ...; by reason), compiles that fell back \
            to a local run because distribution failed (by reason), jobs this machine compiled for peers, helper \
            failures that were retried, and the summed queue, preprocess, transfer and compile times of remote jobs.
            """)
    @Flag(help: "Print JSON (fields remote, local, fallback, served, helper_failures, and reasons).") var json = false
    @Flag(help: "Zero the counters.") var reset = false
    @Option(help: ArgumentHelp("The whole cluster's jobs over this span, from the scheduler's history (kept across restarts): 90s, 30m, 1h, 2d.",
                               valueName: "duration"))
    var since: String?

    func run() throws {
        if let since {
            guard let seconds = Self.seconds(since) else {
                throw ValidationError("--since \(since): not a duration (a number followed by s, m, h or d, as in 1h)")
            }
            let text = try askDaemon(.historyRequest(seconds: seconds))
            print(json ? text : try StatsTable.renderHistory(text))
            return
        }
        let text = try askDaemon(.statsRequest(reset: reset))
        print(json ? text : try StatsTable.render(text))
    }

    /// `90s`, `30m`, `1h`, `2d`, or plain seconds.
    static func seconds(_ text: String) -> UInt64? {
        let units: [Character: UInt64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        if let unit = text.last, let scale = units[unit], let n = UInt64(text.dropLast()), n > 0 { return n * scale }
        if let n = UInt64(text), n > 0 { return n }
        return nil
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The cluster as the scheduler sees it: hosts, slots, running jobs, speed, load.",
        discussion: """
            Asked through the local daemon. SPEED is measured throughput (input bytes per microsecond of compile, \
            averaged); NOTE says why a host takes no remote jobs. The JSON has security and a hosts array whose \
            items have name, id, address, port, max_jobs, cores (processors: jobs past them wait for one), \
            running, load, speed, jobs_done, accepts_remote, \
            platform, note and avoided_for_s (seconds a failing host is still avoided).
            """)
    @Flag(help: "Print JSON with a hosts array (name, address, max_jobs, running, load, speed ...).") var json = false

    func run() throws {
        let text = try askDaemon(.statusRequest)
        print(json ? text : try StatsTable.renderStatus(text))
    }
}
