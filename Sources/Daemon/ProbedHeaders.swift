import CompilerArgs
import Foundation
import Synchronization
import SystemSupport
import Toolchain
import Wire

/// Headers a compile asks about with `__has_include` without including them. The scan lists only what the
/// preprocessor read, so such a header would be missing on the helper and the probe would answer otherwise there:
/// a different object without a word. Each shipped file's text is searched once (by content hash) for probes
/// with a literal name, and every file of that name in the compile's include directories is shipped too.
/// A probe whose argument is a macro is not resolved (rare; noted in docs/protocol.md).
final class ProbedHeaders: Sendable {
    struct Probe: Hashable, Sendable {
        let name: String
        let quoted: Bool
    }

    private let probesByHash = Mutex<[String: [Probe]]>([:])

    /// The probes in a file's text.
    static func probes(in bytes: [UInt8]) -> [Probe] {
        let needle = Array("__has_include".utf8)
        var found: [Probe] = []
        var i = 0
        while i + needle.count <= bytes.count {
            guard bytes[i] == needle[0], bytes[i..<(i + needle.count)].elementsEqual(needle) else { i += 1; continue }
            var j = i + needle.count
            if bytes[j..<min(bytes.count, j + 5)].elementsEqual(Array("_next".utf8)) { j += 5 }
            func skipSpaces() { while j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 } }
            skipSpaces()
            guard j < bytes.count, bytes[j] == UInt8(ascii: "(") else { i = j; continue }
            j += 1
            skipSpaces()
            guard j < bytes.count, bytes[j] == UInt8(ascii: "<") || bytes[j] == UInt8(ascii: "\"") else { i = j; continue }
            let quoted = bytes[j] == UInt8(ascii: "\"")
            let close = quoted ? UInt8(ascii: "\"") : UInt8(ascii: ">")
            let start = j + 1
            var end = start
            while end < bytes.count, bytes[end] != close, bytes[end] != 0x0a { end += 1 }
            if end < bytes.count, bytes[end] == close, end > start {
                found.append(Probe(name: String(decoding: bytes[start..<end], as: UTF8.self), quoted: quoted))
            }
            i = end
        }
        return found
    }

    /// The probes of a shipped file, searched once per content.
    func probes(ofHash hash: String, contents: () -> [UInt8]?) -> [Probe] {
        if let known = probesByHash.withLock({ $0[hash] }) { return known }
        let found = contents().map(Self.probes(in:)) ?? []
        probesByHash.withLock { $0[hash] = found }
        return found
    }

    /// The include directories named by a compile's options, in gcc's order of search: `-iquote` (quoted names
    /// only), `-I`, `-isystem`, then the compiler's own, then `-idirafter`. Relative ones are taken from `workingDirectory`.
    static func directories(arguments: [String], workingDirectory: String, system: [String]) -> (quote: [String], angled: [String]) {
        var quote: [String] = [], includes: [String] = [], isystem: [String] = [], after: [String] = []
        var i = 0
        func absolute(_ path: String) -> String { FileResolver.absolute(path, in: workingDirectory) }
        while i < arguments.count {
            let arg = arguments[i]
            for (option, list) in [("-iquote", 0), ("-isystem", 1), ("-idirafter", 2), ("-I", 3)] where arg.hasPrefix(option) {
                var value = String(arg.dropFirst(option.count))
                if value.isEmpty, i + 1 < arguments.count { value = arguments[i + 1]; i += 1 }
                guard !value.isEmpty, value != "-" else { break }
                switch list {
                case 0: quote.append(absolute(value))
                case 1: isystem.append(absolute(value))
                case 2: after.append(absolute(value))
                default: includes.append(absolute(value))
                }
                break
            }
            i += 1
        }
        let angled = includes + isystem + system + after
        return (quote + angled, angled)
    }
}
