import Foundation

/// Human-readable renderings of the daemon's JSON replies.
enum StatsTable {
    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    static func render(_ text: String) -> String {
        let o = object(text)
        var lines = ["remote   \(o["remote"] ?? 0)", "local    \(o["local"] ?? 0)", "fallback \(o["fallback"] ?? 0)", "served   \(o["served"] ?? 0)"]
        for key in ["remote_hosts", "local_reasons", "fallback_reasons"] {
            guard let d = o[key] as? [String: Any], !d.isEmpty else { continue }
            lines.append(key.replacingOccurrences(of: "_", with: " ") + ":")
            for (k, v) in d.sorted(by: { $0.key < $1.key }) { lines.append("  \(k): \(v)") }
        }
        return lines.joined(separator: "\n")
    }

    static func renderStatus(_ text: String) -> String {
        let hosts = object(text)["hosts"] as? [[String: Any]] ?? []
        var lines: [String] = []
        if let security = object(text)["security"] as? String {
            lines.append((security.hasPrefix("INSECURE") ? "WARNING: " : "security: ") + security)
        }
        lines.append("NAME                 ADDRESS                SLOTS RUNNING  LOAD  SPEED  REMOTE  NOTE")
        for h in hosts {
            let name = "\(h["name"] ?? "")".padding(toLength: 20, withPad: " ", startingAt: 0)
            let address = "\(h["address"] ?? ""):\(h["port"] ?? "")".padding(toLength: 22, withPad: " ", startingAt: 0)
            let speed = (h["speed"] as? Double).map { String(format: "%.1f", $0) } ?? "-"
            lines.append("\(name) \(address) \(String(describing: h["max_jobs"] ?? 0).leftPad(5)) \(String(describing: h["running"] ?? 0).leftPad(7)) \(String(format: "%5.2f", h["load"] as? Double ?? 0)) \(speed.leftPad(6))  \((h["accepts_remote"] as? Bool ?? false) ? "yes" : "no ")   \(h["note"] as? String ?? "")")
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
