import Foundation
import SystemSupport

/// A daemon's stable identity: 128 random bits kept in `<state>/host-id`, made on first start.
///
/// The scheduler tells two daemons of one name apart by it: the same id reconnecting replaces its previous
/// connection (a reconnect race), another id under a live name is refused.
enum HostIdentity {
    static func load(stateDirectory: String) throws -> String {
        let path = stateDirectory + "/host-id"
        if let bytes = Posix.readFile(path) {
            let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.count == 32, text.allSatisfy(\.isHexDigit) { return text }
        }
        var generator = SystemRandomNumberGenerator()
        let id = hexString((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        // Written whole to a temporary name and renamed, so a crash never leaves half an id.
        let temporary = path + ".tmp-\(getpid())"
        try Data((id + "\n").utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        return id
    }
}
