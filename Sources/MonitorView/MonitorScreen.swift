import Records

/// Lays out a ``MonitorModel`` as lines of at most `width` columns, at most `height` of them: a summary line,
/// the hosts with slots, load, speed and a strip of their recent jobs, the running jobs, and one client's
/// fallbacks with reasons. Pure, so that it is tested without a terminal.
public struct MonitorScreen: Sendable {
    public var width: Int
    public var height: Int
    /// Whose fallbacks to list (the local daemon's name); nil lists every client's.
    public var client: String?
    /// Where the events come from, for the title.
    public var origin: String

    public init(width: Int, height: Int, client: String?, origin: String) {
        self.width = max(20, width)
        self.height = max(6, height)
        self.client = client
        self.origin = origin
    }

    /// The strip's symbols: a job that compiled remotely, failed (infrastructure) or was lost, was refused, a grant
    /// its client did not use, or a job its helper gave back for an idle one.
    public static func symbol(_ outcome: String) -> Character {
        switch outcome {
        case "remote": "#"
        case "refused": "x"
        case "unused": "-"
        case "moved": "~"
        case "running": ">"
        default: "!"
        }
    }

    public func render(_ model: MonitorModel, now: Double) -> [String] {
        var lines: [String] = []
        let slots = model.hosts.filter(\.acceptsRemote).reduce(0) { $0 + $1.maxJobs }
        let done = model.outcomes.values.reduce(0, +)
        let remote = model.outcomes["remote", default: 0]
        let share = done == 0 ? "" : " (\(remote * 100 / done)% remote)"
        lines.append(fit("swlaunch monitor · \(origin) · \(model.hosts.count) hosts · \(model.running.count)/\(slots) slots busy · \(done) jobs\(share)"))
        if !model.live { lines.append(fit("waiting for the scheduler's snapshot…")) }

        // Hosts: a fixed part, then the strip of recent jobs (newest on the right) over what width is left.
        let nameWidth = min(16, max(4, model.hosts.map(\.name.count).max() ?? 4))
        let fixed = "\(pad("HOST", nameWidth)) \(pad("PLATFORM", 13)) SLOTS  LOAD SPEED "
        let stripWidth = max(0, width - fixed.count)
        let fallbackRows = min(max(2, height / 5), 1 + fallbacksToShow(model).count)
        let hostRows = min(model.hosts.count, max(1, (height - lines.count - 1 - fallbackRows - 2) * 2 / 3))
        lines.append(fit(fixed + (stripWidth >= 6 ? "RECENT" : "")))
        for host in model.hosts.prefix(hostRows) {
            let slotText = host.acceptsRemote ? "\(host.running)/\(host.maxJobs)" : "-"
            let speed = host.speed.map { format($0, 2) } ?? "-"
            var line = "\(pad(host.name, nameWidth)) \(pad(host.platform, 13)) \(padLeft(slotText, 5)) \(padLeft(format(host.load, 2), 5)) \(padLeft(speed, 5)) "
            var strip = String((model.recent[host.name] ?? []).map { Self.symbol($0.outcome) })
            strip += String(repeating: ">", count: model.running.values.filter { $0.host == host.name }.count)
            line += String(strip.suffix(stripWidth))
            lines.append(fit(line))
        }
        if model.hosts.count > hostRows { lines.append(fit("… \(model.hosts.count - hostRows) more hosts")) }

        // Running jobs, longest-running first, in what is left above the fallbacks.
        let runningRows = max(0, height - lines.count - 1 - fallbackRows)
        if runningRows > 0 {
            let jobs = model.running.values.sorted { $0.granted < $1.granted }
            lines.append(fit("RUNNING (\(jobs.count))"))
            let shown = jobs.count > runningRows - 1 ? max(0, runningRows - 2) : jobs.count
            for job in jobs.prefix(shown) {
                let elapsed = format(max(0, now - job.granted), 1) + "s"
                let route = "\(job.client) → \(job.host)"
                let sourceWidth = max(8, width - route.count - elapsed.count - 6)
                lines.append(fit("  \(pad(tail(job.source.isEmpty ? "?" : job.source, sourceWidth), sourceWidth)) \(route)  \(elapsed)"))
            }
            if shown < jobs.count, runningRows > 1 { lines.append(fit("  … \(jobs.count - shown) more")) }
        }

        // Fallbacks of this client, newest first.
        let fallbacks = fallbacksToShow(model)
        if lines.count < height {
            lines.append(fit("FALLBACKS \(client.map { "on \($0)" } ?? "(all clients)") (\(fallbacks.count))"))
            for job in fallbacks.prefix(max(0, height - lines.count)) {
                let reason = job.reason.isEmpty ? "?" : job.reason
                let who = client == nil ? "\(job.client): " : ""
                lines.append(fit("  \(clock(job.finished)) \(who)\(pad(tail(job.source, max(8, width - reason.count - who.count - 14)), max(8, width - reason.count - who.count - 14))) \(reason)"))
            }
        }
        return Array(lines.prefix(height))
    }

    private func fallbacksToShow(_ model: MonitorModel) -> [JobEvent] {
        model.fallbacks.filter { client == nil || $0.client == client }
    }

    /// A line cut to the width (by characters; the view uses no wide ones but the arrow and the ellipsis).
    func fit(_ line: String) -> String { line.count > width ? String(line.prefix(width)) : line }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - text.count)
}

func padLeft(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

/// The end of a path that fits, marked with an ellipsis when cut.
func tail(_ text: String, _ width: Int) -> String {
    text.count <= width ? text : "…" + String(text.suffix(max(0, width - 1)))
}

func format(_ value: Double, _ decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    let whole = Int(rounded)
    guard decimals > 0 else { return "\(whole)" }
    let fraction = Int(((abs(rounded) - Double(abs(whole))) * scale).rounded())
    let digits = String(fraction)
    return "\(rounded < 0 && whole == 0 ? "-" : "")\(whole)." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
}

/// HH:MM:SS (UTC) of a time in seconds since the epoch.
func clock(_ time: Double) -> String {
    let seconds = Int(time) % 86_400
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60))"
}
