/// One command of a build as the log records it; several outputs of one command count once.
public struct Step: Equatable, Sendable {
    public var start: Int
    public var end: Int
    public var outputs: [String]
    /// The command hash ninja recorded (hex in the log).
    public var hash: UInt64
    /// What the step built, from its first output's name.
    public var kind: StepKind
    public var duration: Int { end - start }

    public init(start: Int, end: Int, outputs: [String], hash: UInt64) {
        self.start = start
        self.end = end
        self.outputs = outputs
        self.hash = hash
        kind = StepKind(output: outputs[0])
    }
}

/// What a step built, judged from its first output's name.
public enum StepKind: String, Sendable, CaseIterable {
    case compile, link, archive, other

    public init(output: String) {
        var utf8 = Array(output.utf8)
        if let slash = utf8.lastIndex(of: UInt8(ascii: "/")) { utf8 = Array(utf8[(slash + 1)...]) }
        self.init(name: utf8[...])
    }

    /// Classifies by the base name's bytes (no allocation on the parsing path).
    init(name: ArraySlice<UInt8>) {
        func ends(_ suffix: StaticString) -> Bool {
            let n = suffix.utf8CodeUnitCount
            guard name.count >= n else { return false }
            return suffix.withUTF8Buffer { name.suffix(n).elementsEqual($0) }
        }
        if ends(".o") || ends(".obj") { self = .compile; return }
        if ends(".a") || ends(".lib") { self = .archive; return }
        if ends(".so") || ends(".dylib") || ends(".dll") || ends(".exe") { self = .link; return }
        if let dot = name.firstIndex(of: UInt8(ascii: ".")) {
            // libfoo.so.1.2
            let rest = name[dot...]
            if rest.starts(with: Array(".so.".utf8)) { self = .link; return }
            self = .other
            return
        }
        self = ends("stamp") ? .other : .link
    }
}

/// A `.ninja_log` split into builds.
public struct ParsedLog: Sendable {
    /// 5 (ninja 1.11), 6 (1.12) or 7 (1.13).
    public var version: Int
    /// Oldest first.
    public var builds: [[Step]]
    /// Lines skipped, each naming the line and why.
    public var warnings: [String]
    /// Whether ninja rewrote the log (`ninja -t recompact` or automatic), which mixes builds.
    public var recompacted: Bool
}

public struct NinjaLogError: Error, Equatable, CustomStringConvertible {
    public let file: String
    public let message: String
    public var description: String { "\(file): \(message)" }
}

/// Parses ninja logs of versions 5 to 7: `start end mtime output hash` lines after a `# ninja log vN` header.
/// A new build starts where end times go backwards.
public enum NinjaLogParser {
    public static func parse(_ bytes: [UInt8], file: String) throws(NinjaLogError) -> ParsedLog {
        let headerEnd = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
        let header = bytes[..<headerEnd]
        guard header.starts(with: Array("# ninja log v".utf8)),
              let version = Int(String(decoding: header.dropFirst(13), as: UTF8.self).trimmingSpaces()) else {
            throw NinjaLogError(file: file, message: "not a ninja log (no '# ninja log vN' header)")
        }
        guard (5...7).contains(version) else {
            throw NinjaLogError(file: file, message: "ninja log version \(version) is not supported (5 to 7 are)")
        }
        var warnings: [String] = []
        var builds: [[Step]] = []
        var current: [Step] = []
        var lastEnd = Int.min
        var backwards = 0
        var entries = 0
        var lineNumber = 1
        var position = min(headerEnd + 1, bytes.count)
        bytes.withUnsafeBufferPointer { buffer in
            let n = buffer.count
            while position < n {
                lineNumber += 1
                var lineEnd = position
                while lineEnd < n, buffer[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                defer { position = lineEnd + 1 }
                if lineEnd == position || buffer[position] == UInt8(ascii: "#") { continue }
                // start \t end \t mtime \t output \t hash
                var tabs = (0, 0, 0, 0)
                var found = 0
                var i = position
                while i < lineEnd, found < 5 {
                    if buffer[i] == UInt8(ascii: "\t") {
                        switch found {
                        case 0: tabs.0 = i
                        case 1: tabs.1 = i
                        case 2: tabs.2 = i
                        case 3: tabs.3 = i
                        default: break
                        }
                        found += 1
                    }
                    i += 1
                }
                guard found == 4, let start = number(buffer, position, tabs.0), let end = number(buffer, tabs.0 + 1, tabs.1),
                      end >= start, tabs.3 > tabs.2 + 1 else {
                    warnings.append("\(file):\(lineNumber): skipped a malformed line")
                    continue
                }
                entries += 1
                if end < lastEnd {
                    backwards += 1
                    builds.append(current)
                    current = []
                }
                lastEnd = end
                var hashEnd = lineEnd
                if hashEnd > tabs.3 + 1, buffer[hashEnd - 1] == UInt8(ascii: "\r") { hashEnd -= 1 }
                let hash = hexadecimal(buffer, tabs.3 + 1, hashEnd)
                let output = String(decoding: UnsafeBufferPointer(rebasing: buffer[(tabs.2 + 1)..<tabs.3]), as: UTF8.self)
                // ninja writes the outputs of one command on consecutive lines.
                let count = current.count
                if count > 0, current[count - 1].start == start, current[count - 1].end == end, current[count - 1].hash == hash {
                    current[count - 1].outputs.append(output)
                } else {
                    current.append(Step(start: start, end: end, outputs: [output], hash: hash))
                }
            }
        }
        if !current.isEmpty || builds.isEmpty { builds.append(current) }
        builds.removeAll { $0.isEmpty }
        let recompacted = backwards > 5 && backwards * 10 > entries
        return ParsedLog(version: version, builds: builds, warnings: warnings, recompacted: recompacted)
    }

    static func number(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int? {
        guard to > from, to - from < 19 else { return nil }
        var value = 0
        for i in from..<to {
            let d = b[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            value = value * 10 + Int(d)
        }
        return value
    }

    /// The hash field as a number (hex); anything else is folded with FNV-1a so it still identifies the command.
    static func hexadecimal(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> UInt64 {
        var value: UInt64 = 0
        var fnv: UInt64 = 0xcbf2_9ce4_8422_2325
        var hex = to - from <= 16
        for i in from..<to {
            let c = b[i]
            fnv = (fnv ^ UInt64(c)) &* 0x100_0000_01b3
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt64(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt64(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = value << 4 | UInt64(c - UInt8(ascii: "A") + 10)
            default: hex = false
            }
        }
        return hex ? value : fnv
    }


}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\r" { s = s.dropFirst() }
        while s.last == " " || s.last == "\r" { s = s.dropLast() }
        return String(s)
    }
}
