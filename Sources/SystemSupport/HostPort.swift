/// A malformed `HOST:PORT` value, naming the option it came from.
public struct AddressError: Error, CustomStringConvertible {
    public let option: String
    public let value: String
    public var description: String { "\(option): '\(value)' is not HOST:PORT with a port from 1 to 65535" }
}

/// Splits `HOST:PORT` (or `[v6]:PORT`).
public func parseHostPort(_ value: String, option: String) throws -> (String, Int) {
    guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]), (1...65535).contains(port) else {
        throw AddressError(option: option, value: value)
    }
    var host = String(value[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { throw AddressError(option: option, value: value) }
    return (host, port)
}

/// A `HOST:PORT` address.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// A comma-separated list of `HOST:PORT`, in order (a scheduler and its standbys, say).
    public static func list(_ value: String, option: String) throws -> [HostPort] {
        let parts = value.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else { throw AddressError(option: option, value: value) }
        return try parts.map { let (host, port) = try parseHostPort($0, option: option); return HostPort(host: host, port: port) }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
