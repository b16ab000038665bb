import Foundation
import SystemSupport

/// What decides the code a gcc driver generates: its version, target and code-generation configure options
/// (`-v`), its target options with their defaults (`-Q --help=target`) and its predefined macros (`-dM -E`).
/// Two drivers with equal identities (package revision aside) compile a preprocessed file to the same object,
/// which is what a cross compiler standing in for a client's native one must do.
public struct CompilerIdentity: Sendable, Equatable, Codable {
    /// `12.2.0`.
    public var version: String
    /// The distribution's package version from `gcc version 12.2.0 (Debian 12.2.0-14+deb12u1)`, if any.
    public var packageVersion: String?
    /// `Target:` of `-v`, for example `arm-linux-gnueabihf`.
    public var target: String
    /// The configure options that decide generated code (`--with-arch=armv7-a+fp`, `--enable-default-pie`, ...).
    public var generationOptions: [String]
    /// `-Q --help=target`: each target option with its default, one per line, spaces collapsed.
    public var targetDefaults: [String]
    /// `-dM -E` of an empty C++ file, sorted.
    public var macros: [String]

    public init(version: String, packageVersion: String?, target: String, generationOptions: [String], targetDefaults: [String], macros: [String]) {
        self.version = version; self.packageVersion = packageVersion; self.target = target
        self.generationOptions = generationOptions; self.targetDefaults = targetDefaults; self.macros = macros
    }

    /// One line for messages: `gcc 12.2.0 for arm-linux-gnueabihf (Debian 12.2.0-14+deb12u1)`.
    public var summary: String {
        "gcc \(version) for \(target)" + (packageVersion.map { " (\($0))" } ?? "")
    }

    /// Configure options that change what the compiler generates or predefines; the rest (paths, languages, the
    /// build and host machines, program names, checking) do not touch objects.
    static let generationPrefixes = [
        "--target=", "--with-arch", "--with-cpu", "--with-tune", "--with-fpu", "--with-float", "--with-mode", "--with-abi",
        "--with-schedule", "--with-specs", "--with-multilib-list", "--with-long-double", "--with-default-libstdcxx-abi",
        "--enable-default-pie", "--enable-default-ssp", "--enable-cet", "--enable-standard-branch-protection",
        "--with-glibc-version", "--enable-frame-pointer", "--with-stack-clash-protection", "--enable-initfini-array",
        "--with-dwarf2", "--enable-gnu-unique-object",
    ]

    /// Parses `-v` (standard error), `-Q --help=target` and `-dM -E` output.
    public init(verbose: String, targetHelp: String, macros: String) throws(CompilerIdentityError) {
        var version: String?, package: String?, target: String?, configure: [String] = []
        for line in verbose.split(separator: "\n") {
            if line.hasPrefix("Target: ") { target = String(line.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
            if line.hasPrefix("Configured with: ") { configure = line.dropFirst(17).split(separator: " ").map(String.init) }
            if line.hasPrefix("gcc version ") {
                let rest = line.dropFirst(12)
                version = rest.split(separator: " ").first.map(String.init)
                if let open = rest.firstIndex(of: "("), let close = rest.lastIndex(of: ")"), open < close {
                    package = String(rest[rest.index(after: open)..<close])
                }
            }
        }
        guard let version, let target else {
            throw CompilerIdentityError(reason: "its -v output names no gcc version and target (not gcc?)")
        }
        self.version = version
        self.packageVersion = package
        self.target = target
        generationOptions = configure.filter { option in Self.generationPrefixes.contains { option.hasPrefix($0) } }.sorted()
        targetDefaults = targetHelp.split(separator: "\n").filter { $0.hasPrefix("  -") }
            .map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
        self.macros = macros.split(separator: "\n").map(String.init).sorted()
    }

    /// Reads what a driver that cannot run here (an x86_64 cross compiler on a Pi) says of itself in its own
    /// file: the configure line `-v` prints and the version string. Target defaults and macros stay empty, and
    /// ``differences(from:)`` then compares version, target and configure options only (they decide the rest).
    public init(driverFile: [UInt8]) throws(CompilerIdentityError) {
        guard let (options, version) = Self.configureLine(in: driverFile) else {
            throw CompilerIdentityError(reason: "its file holds no gcc configure line and version (not a gcc driver?)")
        }
        let configure = options.joined(separator: " ")
        let target = options.first { $0.hasPrefix("--target=") }.map { String($0.dropFirst(9)) } ?? ""
        var package: String?
        if let start = configure.range(of: "--with-pkgversion='") {
            package = configure[start.upperBound...].split(separator: "'", maxSplits: 1).first.map(String.init)
        }
        self.init(version: version, packageVersion: package, target: target,
                  generationOptions: options.filter { option in Self.generationPrefixes.contains { option.hasPrefix($0) } }.sorted(),
                  targetDefaults: [], macros: [])
    }

    /// The configure line a gcc driver's `-v` prints (split at spaces) and its version, from the driver's file.
    static func configureLine(in driverFile: [UInt8]) -> (options: [String], version: String)? {
        var configure: String?, version: String?
        for piece in driverFile.split(separator: 0, omittingEmptySubsequences: true) where piece.count >= 5 && piece.count < 8192 {
            let text = String(decoding: piece, as: UTF8.self)
            if configure == nil, text.contains("/configure "), text.contains("--target=") { configure = text }
            if version == nil, text.split(separator: ".").count == 3, text.allSatisfy({ $0.isNumber || $0 == "." }) { version = text }
        }
        guard let configure, let version else { return nil }
        return (configure.split(separator: " ").map(String.init), version)
    }

    /// Whether the identity came from the driver's file alone (no target defaults or macros).
    public var isStatic: Bool { targetDefaults.isEmpty && macros.isEmpty }

    /// Asks `driver` (three runs; for a client's compiler under emulation, each takes a moment).
    public static func probe(_ driver: String) throws(CompilerIdentityError) -> CompilerIdentity {
        func run(_ arguments: [String], stream: Int) throws(CompilerIdentityError) -> String {
            guard let bytes = Spawn.output(driver, [driver] + arguments, stream: stream) else {
                throw CompilerIdentityError(reason: "\(driver) \(arguments.joined(separator: " ")) failed")
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        do {
            return try CompilerIdentity(verbose: try run(["-v"], stream: 2), targetHelp: try run(["-Q", "--help=target"], stream: 1),
                                        macros: try run(["-dM", "-E", "-x", "c++", "/dev/null"], stream: 1))
        } catch {
            throw CompilerIdentityError(reason: "\(driver): \(error.reason)")
        }
    }

    /// How `other` generates code differently, one line each; empty when it does not (a different package
    /// revision is not a difference: it shows only in the object's `.comment`).
    public func differences(from other: CompilerIdentity) -> [String] {
        var lines: [String] = []
        if version != other.version { lines.append("version \(version) against \(other.version)") }
        if target != other.target { lines.append("target \(target) against \(other.target)") }
        func compare(_ what: String, _ mine: [String], _ theirs: [String]) {
            let onlyMine = Set(mine).subtracting(theirs).sorted(), onlyTheirs = Set(theirs).subtracting(mine).sorted()
            if onlyMine.isEmpty && onlyTheirs.isEmpty { return }
            func few(_ items: [String]) -> String {
                items.isEmpty ? "none" : items.prefix(3).joined(separator: ", ") + (items.count > 3 ? " (and \(items.count - 3) more)" : "")
            }
            lines.append("\(what): \(few(onlyMine)) against \(few(onlyTheirs))")
        }
        compare("configure options", generationOptions, other.generationOptions)
        // A driver read from its file only (it cannot run here) has no defaults or macros to compare.
        if !isStatic && !other.isStatic {
            compare("target defaults", targetDefaults, other.targetDefaults)
            compare("predefined macros", macros, other.macros)
        }
        return lines
    }

    /// True when only the package revision tells the two apart.
    public func differsOnlyInRevision(from other: CompilerIdentity) -> Bool {
        differences(from: other).isEmpty && packageVersion != other.packageVersion
    }
}

/// A compiler whose identity could not be learnt.
public struct CompilerIdentityError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}
