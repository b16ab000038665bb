import ArgumentParser
import CLinuxShims
import Config
import Launch
import MonitorView
import Records
import Wire
#if canImport(Glibc)
import Glibc
#endif

struct Monitor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch the cluster live: hosts, running jobs, recent jobs per host, this machine's fallbacks.",
        discussion: """
            The local daemon relays the scheduler's event stream (docs/protocol.md, "Monitors"). The view redraws \
            in place, fits the terminal (80x24 and up) and follows resizes; q or Ctrl-C leaves the terminal as it \
            was. RECENT shows each helper's latest jobs, newest on the right: # remote, ! failed or lost, \
            x refused, > running. --once prints one snapshot; --json prints every event as a line of JSON \
            (kind snapshot, hosts, host_joined, host_left, job_granted, job_started, job_finished).
            """)

    @Flag(help: "Print one snapshot of the view and exit.") var once = false
    @Flag(help: "Print the event stream as JSON lines.") var json = false
    @Option(help: "Whose fallbacks to list (default: this host's name, as swlaunchd names itself).") var client: String?
    @Flag(help: "List every client's fallbacks.") var allClients = false

    func run() throws {
        let config = try? Configuration.load(workingDirectory: Posix.currentDirectory() ?? "/", environment: Posix.environment)
        let path = config?.string("daemon.socket") ?? DaemonConnection.defaultSocketPath()
        let connection: DaemonConnection
        do {
            connection = try DaemonConnection(path: path, role: .monitor, name: "swlaunch-monitor", timeoutSeconds: 30)
            try connection.send(.subscribe)
        } catch {
            throw ValidationError("no swlaunchd answering on \(path): \(error)")
        }
        let screen = MonitorScreen(width: 80, height: 24, client: allClients ? nil : (client ?? Self.hostName()), origin: "via \(path)")
        if json {
            try streamJSON(connection)
        } else if once {
            try printOnce(connection, screen: screen)
        } else {
            try Terminal.run(connection, screen: screen)
        }
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func streamJSON(_ connection: DaemonConnection) throws {
        while true {
            let text = try nextEvent(connection)
            guard Posix.writeAll(1, Array((text + "\n").utf8)) else { return }
        }
    }

    /// Collects the snapshot and what follows it for a little over a second (one `hosts` tick), then prints.
    private func printOnce(_ connection: DaemonConnection, screen: MonitorScreen) throws {
        var model = MonitorModel()
        var screen = screen
        var columns: Int32 = 0, rows: Int32 = 0
        if swl_terminal_size(1, &columns, &rows) == 0 {
            screen.width = Int(columns)
            screen.height = Int(rows) - 1
        } else {
            // Not a terminal: COLUMNS and LINES, as a shell exports them, else 80x24.
            screen.width = Posix.environment("COLUMNS").flatMap { Int($0) } ?? 80
            screen.height = Posix.environment("LINES").flatMap { Int($0) } ?? 24
        }
        model.apply(try decode(try nextEvent(connection)))
        let end = Posix.nowMicros() + 1_200_000
        while Posix.nowMicros() < end {
            var fd = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&fd, 1, Int32((end - min(end, Posix.nowMicros())) / 1000)) > 0 else { break }
            model.apply(try decode(try nextEvent(connection)))
        }
        print(screen.render(model, now: Posix.wallSeconds()).joined(separator: "\n"))
    }
}

/// The next event's JSON from the daemon; the daemon's error as a thrown message.
func nextEvent(_ connection: DaemonConnection) throws -> String {
    switch try connection.receive() {
    case let .event(json): return json
    case let .error(text): throw ValidationError(text)
    case let other: throw ValidationError("unexpected \(other.kind) from the daemon")
    }
}

func decode(_ json: String) throws -> ClusterEvent {
    do {
        return try RecordJSON.decode(ClusterEvent.self, from: Array(json.utf8))
    } catch {
        throw ValidationError("\(error)")
    }
}

/// The live view: the alternate screen without a cursor, keys read unbuffered and unechoed; SIGINT, SIGTERM,
/// SIGHUP and SIGWINCH come through a signalfd, so the terminal is always restored.
enum Terminal {
    static func run(_ connection: DaemonConnection, screen initial: MonitorScreen) throws {
        var screen = initial
        let signals = swl_terminal_signalfd()
        guard signals >= 0 else { throw ValidationError("cannot watch signals: \(Posix.errorText(errno))") }
        var saved = termios()
        let isTerminal = tcgetattr(0, &saved) == 0
        if isTerminal {
            var raw = saved
            raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
            tcsetattr(0, TCSANOW, &raw)
        }
        func resize() {
            var columns: Int32 = 0, rows: Int32 = 0
            if swl_terminal_size(1, &columns, &rows) == 0 { screen.width = Int(columns); screen.height = Int(rows) }
        }
        resize()
        _ = Posix.writeAll(1, Array("\u{1B}[?1049h\u{1B}[?25l\u{1B}[2J".utf8))
        defer {
            // The view is cleared before the alternate screen is left, so that no terminal's reflow (tmux after a
            // resize) can carry a line of it onto the normal screen.
            _ = Posix.writeAll(1, Array("\u{1B}[H\u{1B}[2J\u{1B}[?25h\u{1B}[?1049l".utf8))
            if isTerminal { tcsetattr(0, TCSANOW, &saved) }
            close(signals)
        }
        var model = MonitorModel()
        var drawn: UInt64 = 0
        var dirty = true
        var failure: String?
        loop: while true {
            var fds = [pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: 0, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, nfds_t(isTerminal ? 3 : 2), 250)
            if fds[1].revents != 0 {
                while case let signal = swl_read_signalfd(signals), signal > 0 {
                    if signal == SIGWINCH { resize(); dirty = true } else { break loop }
                }
            }
            if fds[2].revents != 0 {
                var byte: UInt8 = 0
                if read(0, &byte, 1) == 1, byte == UInt8(ascii: "q") || byte == 3 { break loop }
            }
            if fds[0].revents != 0 {
                do {
                    model.apply(try decode(try nextEvent(connection)))
                    dirty = true
                } catch {
                    failure = "the event stream ended: \(error)"
                    break loop
                }
            }
            let now = Posix.nowMicros()
            if dirty && now - drawn > 100_000 || now - drawn > 1_000_000 {
                draw(screen.render(model, now: Posix.wallSeconds()), height: screen.height)
                drawn = now
                dirty = false
            }
        }
        if let failure { throw ValidationError(failure) }
    }

    /// Redraws in place: each line addressed by its row and cleared to its end, the rest of the screen cleared
    /// below. No line feeds, so a terminal that is smaller than the view thinks (a resize under way) never scrolls.
    static func draw(_ lines: [String], height: Int) {
        var out = ""
        for (i, line) in lines.enumerated() {
            out += "\u{1B}[\(i + 1);1H" + line + "\u{1B}[K"
        }
        out += "\u{1B}[\(lines.count + 1);1H\u{1B}[J"
        _ = Posix.writeAll(1, Array(out.utf8))
    }
}
