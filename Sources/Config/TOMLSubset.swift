/// A value from a configuration file.
public indirect enum ConfigValue: Equatable, Sendable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([ConfigValue])
    case table([(String, ConfigValue)])

    public static func == (a: ConfigValue, b: ConfigValue) -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.float(x), .float(y)): return x == y
        case let (.boolean(x), .boolean(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.table(x), .table(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The TOML type name, for error messages.
    public var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .array: "an array"
        case .table: "a table"
        }
    }

    /// The value written back as TOML.
    public var rendered: String {
        switch self {
        case let .string(s): return quoted(s)
        case let .integer(i): return String(i)
        case let .float(f): return String(f)
        case let .boolean(b): return b ? "true" : "false"
        case let .array(items): return "[" + items.map(\.rendered).joined(separator: ", ") + "]"
        case let .table(fields): return "{ " + fields.map { quotedKey($0.0) + " = " + $0.1.rendered }.joined(separator: ", ") + " }"
        }
    }
}

func quoted(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default: out.unicodeScalars.append(c)
        }
    }
    return out + "\""
}

func quotedKey(_ k: String) -> String {
    k.unicodeScalars.allSatisfy { ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" } && !k.isEmpty ? k : quoted(k)
}

/// A key and its value as a file sets it, with the line it is on.
public struct ConfigAssignment: Equatable, Sendable {
    /// Dotted path of bare keys, for example `["toolchains", "arm-linux-gnueabihf-g++"]`.
    public var key: [String]
    public var value: ConfigValue
    public var line: Int
}

/// A syntax error, with the file and line it is on.
public struct ConfigSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String
    public var description: String { "\(file):\(line): \(message)" }
}

/// Parses the subset of TOML that swlaunch's configuration uses: comments, `[table]` and `[a.b]` headers,
/// bare, quoted and dotted keys, basic and literal strings, integers, floats, booleans, arrays (over
/// several lines too) and inline tables. It is small and free of Foundation because the launcher reads
/// the configuration on every compile; anything outside the subset is an error naming the line.
public struct TOMLSubsetParser {
    private let bytes: [UInt8]
    private let file: String
    private var i = 0
    private var line = 1

    public static func parse(_ text: [UInt8], file: String) throws(ConfigSyntaxError) -> [ConfigAssignment] {
        var parser = TOMLSubsetParser(bytes: text, file: file)
        return try parser.document()
    }

    private init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    private func fail(_ message: String) -> ConfigSyntaxError { ConfigSyntaxError(file: file, line: line, message: message) }
    private var current: UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func skipSpaces() {
        while let c = current, c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") { i += 1 }
    }

    private mutating func skipComment() {
        if current == UInt8(ascii: "#") {
            while let c = current, c != UInt8(ascii: "\n") { i += 1 }
        }
    }

    /// Skips spaces, comments and newlines (inside arrays).
    private mutating func skipBlank() {
        while true {
            skipSpaces()
            skipComment()
            if current == UInt8(ascii: "\n") { i += 1; line += 1; continue }
            if current == UInt8(ascii: "\r") { i += 1; continue }
            return
        }
    }

    private mutating func endOfLine() throws(ConfigSyntaxError) {
        skipSpaces()
        skipComment()
        if current == UInt8(ascii: "\r") { i += 1 }
        guard current == nil || current == UInt8(ascii: "\n") else { throw fail("unexpected text after the value") }
    }

    private mutating func document() throws(ConfigSyntaxError) -> [ConfigAssignment] {
        var result: [ConfigAssignment] = []
        var table: [String] = []
        var seen = Set<[String]>()
        var tables = Set<[String]>()
        while i < bytes.count {
            skipSpaces()
            guard let c = current else { break }
            if c == UInt8(ascii: "\n") { i += 1; line += 1; continue }
            if c == UInt8(ascii: "\r") || c == UInt8(ascii: "#") { skipComment(); if current == UInt8(ascii: "\r") { i += 1 }; continue }
            if c == UInt8(ascii: "[") {
                i += 1
                if current == UInt8(ascii: "[") { throw fail("arrays of tables ([[...]]) are not used by swlaunch") }
                skipSpaces()
                table = try key()
                skipSpaces()
                guard current == UInt8(ascii: "]") else { throw fail("expected ']' to close the table header") }
                i += 1
                guard tables.insert(table).inserted else { throw fail("table [\(table.joined(separator: "."))] is defined twice") }
                try endOfLine()
                continue
            }
            let name = try key()
            skipSpaces()
            guard current == UInt8(ascii: "=") else { throw fail("expected '=' after the key '\(name.joined(separator: "."))'") }
            i += 1
            skipSpaces()
            let startLine = line
            let v = try value()
            let full = table + name
            guard seen.insert(full).inserted else {
                throw ConfigSyntaxError(file: file, line: startLine, message: "key '\(full.joined(separator: "."))' is set twice")
            }
            result.append(ConfigAssignment(key: full, value: v, line: startLine))
            try endOfLine()
        }
        return result
    }

    private mutating func key() throws(ConfigSyntaxError) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            guard let c = current else { throw fail("expected a key") }
            if c == UInt8(ascii: "\"") {
                parts.append(try basicString())
            } else if c == UInt8(ascii: "'") {
                parts.append(try literalString())
            } else {
                let start = i
                while let c = current, isBareKeyByte(c) { i += 1 }
                guard i > start else { throw fail("expected a key, found '\(String(decoding: [c], as: UTF8.self))'") }
                parts.append(String(decoding: bytes[start..<i], as: UTF8.self))
            }
            skipSpaces()
            guard current == UInt8(ascii: ".") else { return parts }
            i += 1
        }
    }

    private func isBareKeyByte(_ c: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(c)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }

    private mutating func value() throws(ConfigSyntaxError) -> ConfigValue {
        guard let c = current else { throw fail("expected a value") }
        switch c {
        case UInt8(ascii: "\""): return .string(try basicString())
        case UInt8(ascii: "'"): return .string(try literalString())
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "{"): return try inlineTable()
        default:
            let start = i
            while let c = current, c != UInt8(ascii: ","), c != UInt8(ascii: "]"), c != UInt8(ascii: "}"),
                  c != UInt8(ascii: "\n"), c != UInt8(ascii: "\r"), c != UInt8(ascii: "#"), c != UInt8(ascii: " "), c != UInt8(ascii: "\t") { i += 1 }
            let word = String(decoding: bytes[start..<i], as: UTF8.self)
            if word == "true" { return .boolean(true) }
            if word == "false" { return .boolean(false) }
            let digits = word.replacingUnderscores()
            if let n = Int(digits) { return .integer(n) }
            if let f = Double(digits), digits.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return .float(f) }
            if word.isEmpty { throw fail("expected a value") }
            throw fail("'\(word)' is not a value (strings need quotes)")
        }
    }

    private mutating func array() throws(ConfigSyntaxError) -> ConfigValue {
        i += 1
        var items: [ConfigValue] = []
        while true {
            skipBlank()
            guard let c = current else { throw fail("unterminated array") }
            if c == UInt8(ascii: "]") { i += 1; return .array(items) }
            items.append(try value())
            skipBlank()
            if current == UInt8(ascii: ",") { i += 1; continue }
            guard current == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in the array") }
        }
    }

    private mutating func inlineTable() throws(ConfigSyntaxError) -> ConfigValue {
        i += 1
        var fields: [(String, ConfigValue)] = []
        skipSpaces()
        if current == UInt8(ascii: "}") { i += 1; return .table([]) }
        while true {
            let name = try key().joined(separator: ".")
            skipSpaces()
            guard current == UInt8(ascii: "=") else { throw fail("expected '=' in the inline table") }
            i += 1
            skipSpaces()
            guard !fields.contains(where: { $0.0 == name }) else { throw fail("key '\(name)' is set twice in the inline table") }
            fields.append((name, try value()))
            skipSpaces()
            if current == UInt8(ascii: ",") { i += 1; continue }
            guard current == UInt8(ascii: "}") else { throw fail("expected ',' or '}' in the inline table") }
            i += 1
            return .table(fields)
        }
    }

    private mutating func basicString() throws(ConfigSyntaxError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = current, c != UInt8(ascii: "\n") else { throw fail("unterminated string") }
            i += 1
            if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            guard c == UInt8(ascii: "\\") else { out.append(c); continue }
            guard let e = current else { throw fail("unterminated string") }
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(e)
            case UInt8(ascii: "\\"): out.append(e)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "u"), UInt8(ascii: "U"):
                let width = e == UInt8(ascii: "u") ? 4 : 8
                guard i + width <= bytes.count, let scalar = UInt32(String(decoding: bytes[i..<i + width], as: UTF8.self), radix: 16),
                      let u = Unicode.Scalar(scalar) else { throw fail("bad \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
                i += width
            default: throw fail("unknown escape '\\\(String(decoding: [e], as: UTF8.self))'")
            }
        }
    }

    private mutating func literalString() throws(ConfigSyntaxError) -> String {
        i += 1
        let start = i
        while let c = current, c != UInt8(ascii: "'") {
            guard c != UInt8(ascii: "\n") else { throw fail("unterminated string") }
            i += 1
        }
        guard current != nil else { throw fail("unterminated string") }
        defer { i += 1 }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }
}

extension String {
    func replacingUnderscores() -> String { String(filter { $0 != "_" }) }
}
