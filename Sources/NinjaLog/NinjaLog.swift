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

    public init(start: Int, end: Int, outputs: [String], hash: UInt64, kind: StepKind) {
        self.start = start
        self.end = end
        self.outputs = outputs
        self.hash = hash
        self.kind = kind
    }
}

/// What a step built, judged from its first output's name.
public enum StepKind: String, Sendable, CaseIterable {
    case compile, link, archive, other

    public init(output: String) {
        var utf8 = Array(output.utf8)
        if let slash = utf8.lastIndex(of: UInt8(ascii: "/")) { utf8 = Array(utf8[(slash + 1)...]) }
        self = utf8.withUnsafeBufferPointer { StepKind(name: $0, 0, $0.count) }
    }

    /// Classifies by the base name's bytes `b[from..<to]` (no allocation on the parsing path).
    init(name b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) {
        func ends(_ suffix: StaticString) -> Bool {
            let n = suffix.utf8CodeUnitCount
            guard to - from >= n else { return false }
            return suffix.withUTF8Buffer { s in
                for k in 0..<n where b[to - n + k] != s[k] { return false }
                return true
            }
        }
        if ends(".o") || ends(".obj") { self = .compile; return }
        if ends(".a") || ends(".lib") { self = .archive; return }
        if ends(".so") || ends(".dylib") || ends(".dll") || ends(".exe") { self = .link; return }
        var dot = from
        while dot < to, b[dot] != UInt8(ascii: ".") { dot += 1 }
        if dot < to {
            // libfoo.so.1.2
            let so: [UInt8] = Array(".so.".utf8)
            if to - dot >= 4, (0..<4).allSatisfy({ b[dot + $0] == so[$0] }) { self = .link; return }
            self = .other
            return
        }
        self = ends("stamp") ? .other : .link
    }
}

/// The steps of one build, stored column by column so that a million-line log parses without an allocation
/// per line; a ``Step`` (with its output names as strings) is made only when one is read.
public struct StepTable: RandomAccessCollection, Sendable {
    public private(set) var starts: [Int] = []
    public private(set) var ends: [Int] = []
    public private(set) var hashes: [UInt64] = []
    public private(set) var kinds: [StepKind] = []
    /// Step i's outputs are `spans[firstSpan[i] ..< firstSpan[i + 1]]`, byte ranges of `text`.
    private var firstSpan: [Int] = [0]
    private var spans: [(start: Int, end: Int)] = []
    private let text: [UInt8]

    /// A table of steps given as values (tests, and builds put together from several logs).
    public init(_ steps: some Sequence<Step>) {
        let steps = Array(steps)
        self.init(text: steps.flatMap { $0.outputs.flatMap(\.utf8) })
        var offset = 0
        for step in steps {
            let spans = step.outputs.map { output -> (Int, Int) in
                defer { offset += output.utf8.count }
                return (offset, offset + output.utf8.count)
            }
            append(start: step.start, end: step.end, hash: step.hash, kind: step.kind, spans: spans)
        }
    }

    init(text: [UInt8]) { self.text = text }

    mutating func append(start: Int, end: Int, hash: UInt64, kind: StepKind, spans new: [(Int, Int)]) {
        starts.append(start); ends.append(end); hashes.append(hash); kinds.append(kind)
        for span in new { spans.append(span) }
        firstSpan.append(spans.count)
    }

    mutating func append(start: Int, end: Int, hash: UInt64, kind: StepKind, span: (Int, Int)) {
        starts.append(start); ends.append(end); hashes.append(hash); kinds.append(kind)
        spans.append(span)
        firstSpan.append(spans.count)
    }

    /// Every output's byte range in the log.
    var allSpans: [(start: Int, end: Int)] { spans }

    /// Appends the steps of a table parsed from the same log.
    mutating func append(contentsOf other: StepTable) {
        let base = spans.count
        starts += other.starts; ends += other.ends; hashes += other.hashes; kinds += other.kinds
        spans += other.spans
        firstSpan += other.firstSpan.dropFirst().map { $0 + base }
    }

    /// Adds another output to the last step.
    mutating func appendOutputToLast(span: (Int, Int)) {
        spans.append(span)
        firstSpan[firstSpan.count - 1] = spans.count
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { starts.count }

    public subscript(i: Int) -> Step {
        Step(start: starts[i], end: ends[i], outputs: outputs(i), hash: hashes[i], kind: kinds[i])
    }

    public func duration(_ i: Int) -> Int { ends[i] - starts[i] }

    /// The first output's name: how reports name a step.
    public func name(_ i: Int) -> String { string(spans[firstSpan[i]]) }

    /// Calls `body` with the bytes of each of step i's outputs (no String made).
    public func forEachOutput(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        text.withUnsafeBufferPointer { buffer in
            for s in firstSpan[i]..<firstSpan[i + 1] {
                body(UnsafeBufferPointer(rebasing: buffer[spans[s].start..<spans[s].end]))
            }
        }
    }

    public func outputs(_ i: Int) -> [String] { (firstSpan[i]..<firstSpan[i + 1]).map { string(spans[$0]) } }

    private func string(_ span: (start: Int, end: Int)) -> String {
        text.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[span.start..<span.end]), as: UTF8.self) }
    }

    /// The same steps in the given order.
    public func reordered(_ order: [Int]) -> StepTable {
        if order.elementsEqual(indices) { return self }
        var table = StepTable(text: text)
        table.firstSpan.reserveCapacity(order.count + 1); table.spans.reserveCapacity(spans.count)
        table.starts = order.map { starts[$0] }
        table.ends = order.map { ends[$0] }
        table.hashes = order.map { hashes[$0] }
        table.kinds = order.map { kinds[$0] }
        if spans.count == count {
            // One output per step (the common case).
            table.spans = order.map { spans[$0] }
            table.firstSpan = Array(0...count)
            return table
        }
        for i in order {
            for s in firstSpan[i]..<firstSpan[i + 1] { table.spans.append(spans[s]) }
            table.firstSpan.append(table.spans.count)
        }
        return table
    }
}

/// A `.ninja_log` split into builds.
public struct ParsedLog: Sendable {
    /// 5 (ninja 1.11), 6 (1.12) or 7 (1.13).
    public var version: Int
    /// Oldest first.
    public var builds: [StepTable]
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
        var builds: [StepTable] = []
        var current = StepTable(text: bytes)
        var lastEnd = Int.min
        var backwards = 0
        var entries = 0
        var lineNumber = 1
        var position = min(headerEnd + 1, bytes.count)
        let tab = UInt8(ascii: "\t"), newline = UInt8(ascii: "\n")
        bytes.withUnsafeBufferPointer { buffer in
            let n = buffer.count
            while position < n {
                lineNumber += 1
                // start \t end \t mtime \t output \t hash
                var tabs = (0, 0, 0, 0)
                var found = 0
                var lineEnd = position
                while lineEnd < n {
                    let c = buffer[lineEnd]
                    if c == newline { break }
                    if c == tab {
                        switch found {
                        case 0: tabs.0 = lineEnd
                        case 1: tabs.1 = lineEnd
                        case 2: tabs.2 = lineEnd
                        case 3: tabs.3 = lineEnd
                        default: break
                        }
                        found += 1
                    }
                    lineEnd += 1
                }
                defer { position = lineEnd + 1 }
                if lineEnd == position || buffer[position] == UInt8(ascii: "#") { continue }
                guard found == 4, let start = number(buffer, position, tabs.0), let end = number(buffer, tabs.0 + 1, tabs.1),
                      end >= start, tabs.3 > tabs.2 + 1 else {
                    warnings.append("\(file):\(lineNumber): skipped a malformed line")
                    continue
                }
                entries += 1
                if end < lastEnd {
                    backwards += 1
                    builds.append(current)
                    current = StepTable(text: bytes)
                }
                lastEnd = end
                var hashEnd = lineEnd
                if hashEnd > tabs.3 + 1, buffer[hashEnd - 1] == UInt8(ascii: "\r") { hashEnd -= 1 }
                let hash = hexadecimal(buffer, tabs.3 + 1, hashEnd)
                let span = (tabs.2 + 1, tabs.3)
                // ninja writes the outputs of one command on consecutive lines.
                let count = current.count
                if count > 0, current.starts[count - 1] == start, current.ends[count - 1] == end, current.hashes[count - 1] == hash {
                    current.appendOutputToLast(span: span)
                } else {
                    var base = tabs.3
                    while base > tabs.2 + 1, buffer[base - 1] != UInt8(ascii: "/") { base -= 1 }
                    current.append(start: start, end: end, hash: hash, kind: StepKind(name: buffer, base, tabs.3), span: span)
                }
            }
        }
        if !current.isEmpty || builds.isEmpty { builds.append(current) }
        builds.removeAll { $0.isEmpty }
        // ninja's recompaction keeps one line per output, in no particular time order (1.11 writes them in hash
        // order): end times go backwards although no output was built twice. That is one build's worth of
        // steps (each output's latest), not many builds.
        if backwards > 0, outputsAreUnique(builds, bytes) {
            var merged = builds[0]
            for build in builds.dropFirst() { merged.append(contentsOf: build) }
            return ParsedLog(version: version, builds: [merged], warnings: warnings, recompacted: true)
        }
        let recompacted = backwards > 5 && backwards * 10 > entries
        return ParsedLog(version: version, builds: builds, warnings: warnings, recompacted: recompacted)
    }

    /// Whether no output appears twice in the log (compared by a 64-bit hash of the name).
    static func outputsAreUnique(_ builds: [StepTable], _ bytes: [UInt8]) -> Bool {
        var seen = Set<UInt64>()
        return bytes.withUnsafeBufferPointer { buffer in
            for build in builds {
                for span in build.allSpans {
                    var fnv: UInt64 = 0xcbf2_9ce4_8422_2325
                    for i in span.start..<span.end { fnv = (fnv ^ UInt64(buffer[i])) &* 0x100_0000_01b3 }
                    if !seen.insert(fnv).inserted { return false }
                }
            }
            return true
        }
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
