/// Collects the files named by preprocessor line markers (`# 12 "path" flags`) in preprocessed output,
/// in order of first appearance. Pseudo files such as `<built-in>` and the working-directory marker are skipped.
public struct LineMarkerScanner {
    public private(set) var files: [String] = []
    private var seen: Set<String> = []

    public init() {}

    /// Scans one chunk of preprocessor output that ends at a line boundary.
    public mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>) {
        var i = 0
        let n = bytes.count
        var lineStart = true
        while i < n {
            if lineStart {
                // gcc -fdirectives-only keeps the indentation of the #include a marker replaces.
                var j = i
                while j < n, bytes[j] == UInt8(ascii: " ") || bytes[j] == UInt8(ascii: "\t") { j += 1 }
                if j + 2 < n, bytes[j] == UInt8(ascii: "#"), bytes[j + 1] == UInt8(ascii: " "),
                   (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[j + 2]) {
                    i = parseMarker(bytes, from: j + 2)
                    lineStart = true
                    continue
                }
            }
            lineStart = bytes[i] == UInt8(ascii: "\n")
            i += 1
        }
    }

    private mutating func parseMarker(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
        var i = start
        let n = bytes.count
        while i < n, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[i]) { i += 1 }
        guard i + 1 < n, bytes[i] == UInt8(ascii: " "), bytes[i + 1] == UInt8(ascii: "\"") else { return skipLine(bytes, i) }
        i += 2
        var name: [UInt8] = []
        while i < n, bytes[i] != UInt8(ascii: "\"") {
            if bytes[i] == UInt8(ascii: "\\"), i + 1 < n {
                i += 1
                if (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[i]) {
                    var value: UInt8 = 0
                    var digits = 0
                    while digits < 3, i < n, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[i]) {
                        value = value &* 8 &+ (bytes[i] - UInt8(ascii: "0")); i += 1; digits += 1
                    }
                    name.append(value)
                    continue
                }
            }
            name.append(bytes[i])
            i += 1
        }
        let path = String(decoding: name, as: UTF8.self)
        if !(path.hasPrefix("<") && path.hasSuffix(">")) && !path.hasSuffix("//") && !seen.contains(path) {
            seen.insert(path)
            files.append(path)
        }
        return skipLine(bytes, i)
    }

    private func skipLine(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int) -> Int {
        var i = from
        while i < bytes.count, bytes[i] != UInt8(ascii: "\n") { i += 1 }
        return i + 1
    }
}
