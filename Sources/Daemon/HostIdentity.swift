import Foundation
import SystemSupport
import Toolchain

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
        let id = randomHexString(bytes: 16)
        // Written whole to a temporary name and renamed, so a crash never leaves half an id.
        if let code = Posix.writeFileAtomically(path, Array((id + "\n").utf8)) {
            throw ResolveError(path: path, reason: Posix.errorText(code))
        }
        return id
    }
}
