/// Splits the contents of a gcc-style response file into arguments: whitespace separates,
/// single and double quotes group, and a backslash escapes the next character.
public func splitResponseFile(_ text: some Sequence<UInt8>) -> [String] {
    var arguments: [String] = []
    var current: [UInt8] = []
    var inArgument = false
    var quote: UInt8? = nil
    var escaped = false
    for byte in text {
        if escaped {
            current.append(byte); escaped = false; inArgument = true
            continue
        }
        if byte == UInt8(ascii: "\\") { escaped = true; inArgument = true; continue }
        if let q = quote {
            if byte == q { quote = nil } else { current.append(byte) }
            continue
        }
        switch byte {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            quote = byte; inArgument = true
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0b, 0x0c:
            if inArgument {
                arguments.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
                inArgument = false
            }
        default:
            current.append(byte); inArgument = true
        }
    }
    if inArgument { arguments.append(String(decoding: current, as: UTF8.self)) }
    return arguments
}

/// Why response files could not be expanded.
public enum ResponseFileError: Error, Equatable, Sendable {
    case unreadable(String)
    case tooDeep(String)
}

/// Expands `@file` arguments recursively with `read`, which returns a file's bytes or nil when it cannot be read.
/// A gcc driver leaves an unreadable `@file` as a literal argument; we report it so the launcher runs locally.
public func expandResponseFiles(_ arguments: [String], depth: Int = 0, read: (String) -> [UInt8]?) throws(ResponseFileError) -> [String] {
    var result: [String] = []
    for arg in arguments {
        guard arg.hasPrefix("@"), arg.count > 1 else { result.append(arg); continue }
        let path = String(arg.dropFirst())
        guard depth < 16 else { throw .tooDeep(path) }
        guard let bytes = read(path) else { throw .unreadable(path) }
        result.append(contentsOf: try expandResponseFiles(splitResponseFile(bytes), depth: depth + 1, read: read))
    }
    return result
}
