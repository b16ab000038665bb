import SystemSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a setting came from.
public enum ConfigSource: Equatable, Sendable, CustomStringConvertible {
    case file(String, line: Int)
    case environment(String)
    case builtIn

    public var description: String {
        switch self {
        case let .file(path, line): "\(path):\(line)"
        case let .environment(name): "environment \(name)"
        case .builtIn: "default"
        }
    }
}

public struct Setting: Equatable, Sendable {
    public var value: ConfigValue
    public var source: ConfigSource
}

/// A configuration mistake, naming the file and line (or variable) and the key.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    public var location: String
    public var key: String?
    public var message: String
    public var description: String { location + ": " + (key.map { "\($0): " } ?? "") + message }
}

/// Every mistake found while loading, in file order.
public struct ConfigErrors: Error, Equatable, Sendable, CustomStringConvertible {
    public var errors: [ConfigError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// The effective configuration: the system file, then the user's, then the project's `swlaunch.toml`
/// (found by walking up from the working directory), then `SWLAUNCH_*` variables, each over the last.
public struct Configuration: Sendable {
    public private(set) var settings: [String: Setting] = [:]
    /// The files read, in merge order.
    public private(set) var files: [String] = []

    public static let projectFileName = "swlaunch.toml"
    public static let systemFile = "/etc/swlaunch/config.toml"

    public init() {}

    /// The user's file: `$XDG_CONFIG_HOME/swlaunch/config.toml` or `~/.config/swlaunch/config.toml`.
    public static func userFile(environment: (String) -> String?) -> String? {
        if let xdg = environment("XDG_CONFIG_HOME"), !xdg.isEmpty { return xdg + "/swlaunch/config.toml" }
        if let home = environment("HOME"), !home.isEmpty { return home + "/.config/swlaunch/config.toml" }
        return nil
    }

    /// The closest `swlaunch.toml` in `directory` or above it.
    public static func projectFile(from directory: String) -> String? {
        var dir = directory
        while true {
            let candidate = (dir == "/" ? "" : dir) + "/" + projectFileName
            var info = stat()
            if stat(candidate, &info) == 0 { return candidate }
            guard dir != "/", let slash = dir.lastIndex(of: "/") else { return nil }
            dir = slash == dir.startIndex ? "/" : String(dir[..<slash])
        }
    }

    /// Loads and validates everything. Throws every mistake found.
    public static func load(workingDirectory: String, environment: (String) -> String?,
                            systemFile: String = systemFile, userFile: String?? = nil,
                            includeProject: Bool = true) throws(ConfigErrors) -> Configuration {
        var config = Configuration()
        var errors: [ConfigError] = []
        for spec in configKeys {
            if let value = spec.defaultValue { config.settings[spec.key] = Setting(value: value, source: .builtIn) }
        }
        let user = userFile ?? Self.userFile(environment: environment)
        var layers: [(String, Bool)] = [(systemFile, false)]
        if let user { layers.append((user, false)) }
        if includeProject, let project = projectFile(from: workingDirectory) { layers.append((project, true)) }
        for (path, isProject) in layers {
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            if isProject, let problem = ownershipProblem(info) {
                errors.append(ConfigError(location: path, key: nil, message: problem))
                continue
            }
            guard let bytes = Posix.readFile(path) else {
                errors.append(ConfigError(location: path, key: nil, message: "cannot read: \(String(cString: strerror(errno)))"))
                continue
            }
            config.files.append(path)
            do {
                for assignment in try TOMLSubsetParser.parse(bytes, file: path) {
                    let location = "\(path):\(assignment.line)"
                    let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
                    for (key, value) in flatten(assignment) {
                        do throws(ConfigError) {
                            let checked = try validate(key: key, value: value, location: location, relativeTo: directory)
                            config.settings[key] = Setting(value: checked, source: .file(path, line: assignment.line))
                        } catch {
                            errors.append(error)
                        }
                    }
                }
            } catch {
                errors.append(ConfigError(location: "\(error.file):\(error.line)", key: nil, message: error.message))
            }
        }
        for spec in configKeys {
            guard let name = spec.environment, let raw = environment(name), !raw.isEmpty else { continue }
            let value: ConfigValue
            switch spec.kind {
            case .integer:
                guard let n = Int(raw) else {
                    errors.append(ConfigError(location: "environment \(name)", key: spec.key, message: "'\(raw)' is not an integer"))
                    continue
                }
                value = .integer(n)
            case .boolean:
                value = .boolean(["1", "true", "yes", "on"].contains(raw.lowercased()))
            default:
                value = .string(raw)
            }
            do throws(ConfigError) {
                let checked = try validate(key: spec.key, value: value, location: "environment \(name)", relativeTo: workingDirectory)
                config.settings[spec.key] = Setting(value: checked, source: .environment(name))
            } catch {
                errors.append(error)
            }
        }
        guard errors.isEmpty else { throw ConfigErrors(errors: errors) }
        return config
    }

    /// The project-file rule (as ccache has it): a file that names programs to run must belong to the user
    /// or root and must not be writable by anyone else.
    static func ownershipProblem(_ info: stat) -> String? {
        let uid = getuid()
        if info.st_uid != uid && info.st_uid != 0 {
            return "refused: owned by uid \(info.st_uid), not by you (uid \(uid)) or root"
        }
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            return "refused: writable by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod go-w on it"
        }
        return nil
    }

    static func flatten(_ assignment: ConfigAssignment) -> [(String, ConfigValue)] {
        let key = assignment.key.joined(separator: ".")
        if case let .table(fields) = assignment.value, assignment.key.first != "toolchains" {
            return fields.map { (key + "." + $0.0, $0.1) }
        }
        return [(key, assignment.value)]
    }

    static func validate(key: String, value: ConfigValue, location: String, relativeTo directory: String) throws(ConfigError) -> ConfigValue {
        func fail(_ message: String) -> ConfigError { ConfigError(location: location, key: key, message: message) }
        let kind: KeyKind
        if let spec = configKeys.first(where: { $0.key == key }) {
            kind = spec.kind
        } else if key.hasPrefix("toolchains."), key.count > "toolchains.".count {
            kind = .toolchainTable
        } else {
            throw fail("unknown key" + (suggestion(for: key).map { " (did you mean '\($0)'?)" } ?? ""))
        }
        switch kind {
        case .string:
            guard case .string = value else { throw fail("must be a string, not \(value.typeName)") }
            return value
        case let .path(mustExist):
            guard case let .string(path) = value, !path.isEmpty else { throw fail("must be a path (a string), not \(value.typeName)") }
            let absolute = path.hasPrefix("/") ? path : directory + "/" + path
            if mustExist, !Posix.fileExists(absolute) { throw fail("'\(path)' does not exist") }
            return .string(absolute)
        case .address:
            guard case let .string(text) = value else { throw fail("must be \"HOST:PORT\", not \(value.typeName)") }
            guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
                  let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
                throw fail("'\(text)' is not HOST:PORT with a port from 1 to 65535")
            }
            return value
        case .addressList:
            guard case let .string(text) = value else { throw fail("must be \"HOST:PORT[,HOST:PORT...]\", not \(value.typeName)") }
            do { _ = try HostPort.list(text, option: key) } catch { throw fail("'\(text)' is not HOST:PORT[,HOST:PORT...] with ports from 1 to 65535") }
            return value
        case let .integer(range):
            guard case let .integer(n) = value else { throw fail("must be an integer, not \(value.typeName)") }
            guard range.contains(n) else { throw fail("\(n) is out of range \(range.lowerBound)...\(range.upperBound)") }
            return value
        case .boolean:
            guard case .boolean = value else { throw fail("must be true or false, not \(value.typeName)") }
            return value
        case let .choice(options):
            guard case let .string(text) = value, options.contains(text) else {
                throw fail("must be one of \(options.map { "\"\($0)\"" }.joined(separator: ", ")), not \(value.rendered)")
            }
            return value
        case .toolchainTable:
            guard case let .table(fields) = value else {
                throw fail("must be a table of platform = \"environment archive\", for example { x86_64-linux = \"envs/arm-on-x86_64.tar.zst\" }")
            }
            var checked: [(String, ConfigValue)] = []
            for (platform, entry) in fields {
                guard case let .string(path) = entry else { throw fail("\(platform) must be a path (a string), not \(entry.typeName)") }
                let absolute = path.hasPrefix("/") ? path : directory + "/" + path
                guard Posix.fileExists(absolute) else { throw fail("\(platform): '\(path)' does not exist") }
                checked.append((platform, .string(absolute)))
            }
            return .table(checked)
        }
    }

    // MARK: Typed accessors

    public func string(_ key: String) -> String? {
        if case let .string(s)? = settings[key]?.value { return s }
        return nil
    }

    public func integer(_ key: String) -> Int? {
        if case let .integer(n)? = settings[key]?.value { return n }
        return nil
    }

    public func boolean(_ key: String) -> Bool? {
        if case let .boolean(b)? = settings[key]?.value { return b }
        return nil
    }

    /// Whether infrastructure failures fail the compile instead of compiling locally.
    public var failsOnInfrastructureErrors: Bool { string("jobs.fallback") == "fail" }

    /// Environment archives per platform for a compiler (its base name), from `[toolchains]`.
    public func toolchains(for compiler: String) -> [String: String] {
        guard case let .table(fields)? = settings["toolchains." + compiler]?.value else { return [:] }
        var result: [String: String] = [:]
        for (platform, value) in fields { if case let .string(path) = value { result[platform] = path } }
        return result
    }
}
