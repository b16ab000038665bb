/// One command of a build as the log records it; several outputs of one command count once.
public struct Step: Equatable, Sendable {
    public var start: Int
    public var end: Int
    public var outputs: [String]
    public var hash: String
    public var duration: Int { end - start }
    public var kind: StepKind { StepKind(output: outputs[0]) }
}

/// What a step built, judged from its first output's name.
public enum StepKind: String, Sendable, CaseIterable {
    case compile, link, archive, other

    public init(output: String) {
        let name = output.split(separator: "/").last.map(String.init) ?? output
        if name.hasSuffix(".o") || name.hasSuffix(".obj") { self = .compile; return }
        if name.hasSuffix(".a") || name.hasSuffix(".lib") { self = .archive; return }
        if name.hasSuffix(".so") || name.contains(".so.") || name.hasSuffix(".dylib") || name.hasSuffix(".dll") || name.hasSuffix(".exe") {
            self = .link; return
        }
        if !name.contains("."), !name.hasSuffix("stamp") { self = .link; return }
        self = .other
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
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        guard let header = lines.first, header.starts(with: Array("# ninja log v".utf8)),
              let version = Int(String(decoding: header.dropFirst(13), as: UTF8.self).trimmingSpaces()) else {
            throw NinjaLogError(file: file, message: "not a ninja log (no '# ninja log vN' header)")
        }
        guard (5...7).contains(version) else {
            throw NinjaLogError(file: file, message: "ninja log version \(version) is not supported (5 to 7 are)")
        }
        lines.removeFirst()
        var warnings: [String] = []
        var builds: [[Step]] = []
        var current: [Step] = []
        var index: [StepKey: Int] = [:]
        var lastEnd = Int.min
        var backwards = 0
        var entries = 0
        for (offset, line) in lines.enumerated() {
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            let fields = line.split(separator: UInt8(ascii: "\t"), omittingEmptySubsequences: false)
            guard fields.count == 5, let start = int(fields[0]), let end = int(fields[1]), end >= start else {
                warnings.append("\(file):\(offset + 2): skipped a malformed line")
                continue
            }
            entries += 1
            if end < lastEnd {
                backwards += 1
                builds.append(current)
                current = []
                index = [:]
            }
            lastEnd = end
            let output = String(decoding: fields[3], as: UTF8.self)
            let hash = String(decoding: fields[4], as: UTF8.self)
            let key = StepKey(start: start, end: end, hash: hash)
            if let existing = index[key] {
                current[existing].outputs.append(output)
            } else {
                index[key] = current.count
                current.append(Step(start: start, end: end, outputs: [output], hash: hash))
            }
        }
        if !current.isEmpty || builds.isEmpty { builds.append(current) }
        builds.removeAll { $0.isEmpty }
        let recompacted = backwards > 5 && backwards * 10 > entries
        return ParsedLog(version: version, builds: builds, warnings: warnings, recompacted: recompacted)
    }

    struct StepKey: Hashable { let start: Int, end: Int, hash: String }

    static func int(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count < 19 else { return nil }
        var value = 0
        for b in bytes {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) else { return nil }
            value = value * 10 + Int(b - UInt8(ascii: "0"))
        }
        return value
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
