import SystemSupport

/// A build as Chrome trace-event JSON (the "JSON Object Format" Perfetto and chrome://tracing open): one complete
/// event (`"ph":"X"`) per step, microseconds from the build's start, one thread per job slot (lane).
public enum TraceEvents {
    public static func render(_ report: BuildReport, processName: String = "ninja") -> [UInt8] {
        let lanes = report.lanes
        var out: [UInt8] = []
        out.reserveCapacity(report.steps.count * 160 + 200)
        out += Array(#"{"displayTimeUnit":"ms","traceEvents":["#.utf8)
        out += Array(#"{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"#.utf8)
        out += Array(JSON.quote(processName).utf8)
        out += Array("}}".utf8)
        let kinds = StepKind.allCases.map { Array(",\"cat\":\"\($0.rawValue)\",\"ph\":\"X\",\"ts\":".utf8) }
        let dur = Array(",\"dur\":".utf8), pidTid = Array(",\"pid\":1,\"tid\":".utf8), args = Array(",\"args\":{\"outputs\":[".utf8)
        for i in report.steps.indices {
            out += Array(",\n{\"name\":".utf8)
            var first = true
            report.steps.forEachOutput(i) { bytes in
                if first { appendQuoted(bytes, to: &out); first = false }
            }
            out += kinds[report.steps.kinds[i].index]
            appendDecimal((report.steps.starts[i] - report.start) * 1000, to: &out)
            out += dur
            appendDecimal(report.steps.duration(i) * 1000, to: &out)
            out += pidTid
            appendDecimal(lanes[i], to: &out)
            out += args
            first = true
            report.steps.forEachOutput(i) { bytes in
                if !first { out.append(UInt8(ascii: ",")) }
                appendQuoted(bytes, to: &out)
                first = false
            }
            out += Array("]}}".utf8)
        }
        out += Array("\n]}\n".utf8)
        return out
    }

    /// A JSON string of UTF-8 bytes: quotes, backslashes and control characters escaped, the rest as is.
    static func appendQuoted(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(contentsOf: bytes)
        } else {
            for b in bytes {
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(b)
                case 0..<0x20: out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(b >> 4)], hexDigits[Int(b & 15)]]
                default: out.append(b)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")); appendDecimal(-value, to: &out); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of room on the stack
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[23 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            out.append(contentsOf: buffer[(24 - count)...])
        }
    }
}
