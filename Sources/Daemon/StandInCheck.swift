import CompilerArgs
import Foundation
import Synchronization
import SystemSupport
import Toolchain

/// Keeps a stand-in environment from compiling for a client compiler it was not made for: the identity
/// `swlaunch env create --stand-in-for` recorded must still be the client compiler's (an upgraded or replaced
/// compiler is caught before it yields a different object). Identities are probed once per compiler file.
final class StandInCheck: Sendable {
    /// The client compiler's identity by its resolved path, with the size and change time it was probed at.
    private let identities = Mutex<[String: (stamp: [Int], identity: CompilerIdentity)]>([:])

    /// Throws when `standIn` of `environment` may not compile for `client`, naming both and what differs.
    func check(_ environment: MappedEnvironment, standIn: String, client: String) throws {
        guard let record = environment.manifest.standIn(for: client) else {
            throw MappedEnvironmentError(path: environment.path, reason: "\(baseName(of: standIn)) would stand in for \(client), but the environment "
                                         + "was not made for it: create it with `swlaunch env create --stand-in-for \(baseName(of: client)) ...`")
        }
        let identity = try identity(of: client)
        let differences = record.identity.differences(from: identity)
        guard differences.isEmpty else {
            throw MappedEnvironmentError(path: environment.path, reason: "\(baseName(of: standIn)) was made to stand in for \(record.identity.summary), "
                                         + "but \(client) is now \(identity.summary): " + differences.joined(separator: "; "))
        }
    }

    private func identity(of compiler: String) throws -> CompilerIdentity {
        let path = Posix.realPath(compiler) ?? compiler
        var info = stat()
        guard stat(path, &info) == 0 else { throw MappedEnvironmentError(path: compiler, reason: Posix.errorText(errno)) }
        let stamp = [Int(info.st_size), Int(info.st_ctim.tv_sec), Int(info.st_ctim.tv_nsec), Int(info.st_ino)]
        if let known = identities.withLock({ $0[path] }), known.stamp == stamp { return known.identity }
        let identity: CompilerIdentity
        do { identity = try CompilerIdentity.probe(compiler) } catch {
            throw MappedEnvironmentError(path: compiler, reason: error.reason)
        }
        identities.withLock { $0[path] = (stamp, identity) }
        return identity
    }
}
