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
