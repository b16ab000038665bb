/// Draws a build as an SVG timeline: one lane per job slot, a bar per step coloured by kind, labelled with the
/// output's base name where the bar is wide enough, and a time axis.
public struct TimelineSVG {
    public var width = 1600
    public var laneHeight = 18
    public var title: String

    public init(title: String) { self.title = title }

    public func render(_ report: BuildReport) -> String {
        let lanes = report.lanes
        let laneCount = (lanes.max() ?? -1) + 1
        let left = 70, top = 48, right = 20
        let plotWidth = width - left - right
        let legendTop = top + laneCount * laneHeight + 34
        let height = legendTop + 30
        let span = max(1, report.wallMs)
        func x(_ t: Int) -> Double { Double(left) + Double(t - report.start) * Double(plotWidth) / Double(span) }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
        font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="20" font-size="15" font-weight="bold">\(escape(title))</text>
        <text x="\(left)" y="36" fill="#444">\(report.steps.count) steps, wall \(seconds(report.wallMs)), summed \(seconds(report.totalMs)), \
        parallelism \(fixed(report.parallelism)), \(laneCount) lanes (job slots in use)</text>

        """
        // Lane backgrounds and names.
        for lane in 0..<laneCount {
            let y = top + lane * laneHeight
            if lane % 2 == 1 { svg += "<rect x=\"\(left)\" y=\"\(y)\" width=\"\(plotWidth)\" height=\"\(laneHeight)\" fill=\"#f3f3f3\"/>\n" }
            svg += "<text x=\"\(left - 6)\" y=\"\(y + laneHeight - 5)\" text-anchor=\"end\" fill=\"#444\">slot \(lane + 1)</text>\n"
        }
        // Time axis: about ten ticks at a round step.
        let axisY = top + laneCount * laneHeight
        let tick = Self.roundStep(Double(span) / 10)
        var t = 0.0
        while t <= Double(span) {
            let px = x(report.start + Int(t))
            svg += "<line x1=\"\(fixed(px))\" y1=\"\(top)\" x2=\"\(fixed(px))\" y2=\"\(axisY + 4)\" stroke=\"#ccc\" stroke-width=\"0.5\"/>\n"
            svg += "<text x=\"\(fixed(px))\" y=\"\(axisY + 16)\" text-anchor=\"middle\" fill=\"#444\">\(seconds(Int(t)))</text>\n"
            t += tick
        }
        // Steps.
        for i in report.steps.indices {
            let x0 = x(report.steps.starts[i]), x1 = max(x0 + 1, x(report.steps.ends[i]))
            let y = top + lanes[i] * laneHeight + 1
            let name = report.steps.name(i)
            svg += "<g><title>\(escape(name)) \(seconds(report.steps.duration(i)))</title>"
            svg += "<rect x=\"\(fixed(x0))\" y=\"\(y)\" width=\"\(fixed(x1 - x0))\" height=\"\(laneHeight - 2)\" fill=\"\(Self.colour(report.steps.kinds[i]))\" stroke=\"white\" stroke-width=\"0.5\"/>"
            let base = String(name.split(separator: "/").last ?? Substring(name))
            let room = Int((x1 - x0 - 6) / 6.2)
            if room >= 4 {
                let label = base.count <= room ? base : String(base.prefix(room - 1)) + "…"
                svg += "<text x=\"\(fixed(x0 + 3))\" y=\"\(y + laneHeight - 6)\" fill=\"black\">\(escape(label))</text>"
            }
            svg += "</g>\n"
        }
        // Legend.
        var lx = left
        for kind in StepKind.allCases {
            svg += "<rect x=\"\(lx)\" y=\"\(legendTop)\" width=\"14\" height=\"12\" fill=\"\(Self.colour(kind))\"/>"
            svg += "<text x=\"\(lx + 18)\" y=\"\(legendTop + 10)\">\(kind.rawValue)</text>\n"
            lx += 90
        }
        return svg + "</svg>\n"
    }

    static func colour(_ kind: StepKind) -> String {
        switch kind {
        case .compile: "#7fb3e6"
        case .link: "#f0a35e"
        case .archive: "#9ad28b"
        case .other: "#c9b3e0"
        }
    }

    /// 1, 2 or 5 times a power of ten, at least `raw` milliseconds.
    static func roundStep(_ raw: Double) -> Double {
        var step = 1.0
        while step * 10 <= raw { step *= 10 }
        for factor in [1.0, 2.0, 5.0, 10.0] where step * factor >= raw { return step * factor }
        return step * 10
    }

    func seconds(_ ms: Int) -> String { ms >= 10_000 ? "\(ms / 1000) s" : fixed(Double(ms) / 1000) + " s" }

    func fixed(_ value: Double) -> String {
        let scaled = Int((value * 10).rounded())
        let sign = scaled < 0 ? "-" : ""
        return sign + "\(abs(scaled) / 10).\(abs(scaled) % 10)"
    }

    func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
