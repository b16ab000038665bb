import SystemSupport
import Foundation
import Records

/// Human-readable renderings of the daemon's JSON replies.
enum StatsTable {
    static func render(_ text: String) throws -> String {
        let stats = try RecordJSON.decode(StatsRecord.self, from: Array(text.utf8))
        var lines = ["remote   \(stats.remote)", "local    \(stats.local)", "fallback \(stats.fallback)", "served   \(stats.served)"]
        if stats.cacheHits > 0 { lines.append("cache hits \(stats.cacheHits) (of the remote jobs)") }
        if stats.helperFailures > 0 { lines.append("helper failures \(stats.helperFailures)") }
        if stats.moved > 0 { lines.append("moved \(stats.moved) (given back by a busy helper, compiled on an idle one)") }
        if stats.helperConnections > 0 { lines.append("helper connections \(stats.helperConnections) (kept between jobs)") }
        for (title, counts) in [("remote hosts", stats.remoteHosts), ("local reasons", stats.localReasons),
                                ("fallback reasons", stats.fallbackReasons), ("helper failure reasons", stats.helperFailureReasons)] where !counts.isEmpty {
            lines.append(title + ":")
            for (k, v) in counts.sorted(by: { $0.key < $1.key }) { lines.append("  \(k): \(v)") }
        }
        return lines.joined(separator: "\n")
    }

    static func renderHistory(_ text: String) throws -> String {
        let history = try RecordJSON.decode(HistoryRecord.self, from: Array(text.utf8))
        func seconds(_ us: UInt64) -> String { String(format: "%.1f s", Double(us) / 1e6) }
        var lines = ["cluster jobs in the last \(String(format: "%.0f", history.seconds)) s (scheduler history): \(history.jobs)"]
        for outcome in JobEvent.finishedOutcomes {
            if let n = history.outcomes[outcome] { lines.append("  \(outcome.padding(toLength: 8, withPad: " ", startingAt: 0)) \(n)") }
        }
        if !history.hosts.isEmpty {
            lines.append("helpers:")
            for h in history.hosts {
                lines.append("  \(h.host): \(h.jobs) jobs, compile \(seconds(h.compileUs)), speed \(h.speed.map { String(format: "%.2f", $0) } ?? "-")")
            }
        }
        for (title, counts) in [("clients", history.clients), ("fallback reasons", history.fallbackReasons)] where !counts.isEmpty {
            lines.append(title + ":")
            for (k, v) in counts.sorted(by: { $0.key < $1.key }) { lines.append("  \(k): \(v)") }
        }
        let t = history.timingsUs
        lines.append("remote time: queue \(seconds(t.queue)), preprocess \(seconds(t.preprocess)), transfer \(seconds(t.transfer)), compile \(seconds(t.compile))")
        lines.append("bytes: sent \(history.bytesOut), received \(history.bytesIn)")
        if history.oldest > 0, history.oldest > history.since {
            lines.append("(the history holds jobs from \(String(format: "%.0f", Posix.wallSeconds() - history.oldest)) s ago on)")
        }
        return lines.joined(separator: "\n")
    }

    static func renderStatus(_ text: String) throws -> String {
        let status = try RecordJSON.decode(StatusRecord.self, from: Array(text.utf8))
        var lines = [(status.security.hasPrefix("INSECURE") ? "WARNING: " : "security: ") + status.security]
        lines.append("NAME                 ADDRESS                SLOTS CORES RUNNING  LOAD  SPEED  REMOTE  NOTE")
        for h in status.hosts {
            let name = h.name.padding(toLength: 20, withPad: " ", startingAt: 0)
            let address = "\(h.address):\(h.port)".padding(toLength: 22, withPad: " ", startingAt: 0)
            let speed = h.speed.map { String(format: "%.1f", $0) } ?? "-"
            lines.append("\(name) \(address) \(String(h.maxJobs).leftPad(5)) \(String(h.cores).leftPad(5)) \(String(h.running).leftPad(7)) \(String(format: "%5.2f", h.load)) \(speed.leftPad(6))  \(h.acceptsRemote ? "yes" : "no ")   \(h.note)")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

/// Columns padded to their widest cell, the first left-aligned and the rest right-aligned except the last.
struct Table {
    let header: [String]
    let rows: [[String]]

    func render() -> String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { c in
                let cell = row[c]
                if c == 0 || c == row.count - 1 { return c == row.count - 1 ? cell : cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                return cell.leftPad(widths[c])
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
