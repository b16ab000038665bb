import CompilerArgs
import Foundation
import Synchronization
import SystemSupport
import Toolchain
import Wire

/// An environment archive the project's `[toolchains]` names for a platform, as the client daemon offers it.
struct MappedEnvironment: Sendable {
    let path: String
    let id: String
    let manifest: EnvironmentManifest
}

/// Why a `[toolchains]` environment cannot be used.
struct MappedEnvironmentError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    var description: String { "\(path): \(reason)" }
}

/// Environment archives from `[toolchains]`: their ids (worked out by unpacking them once into a scratch
/// directory, which also checks them the way a helper will) and where each id's archive lies, to send it to
/// helpers that ask. Cached by path, size and modification time.
final class MappedEnvironments: Sendable {
    private struct Known {
        var byPath: [String: (size: Int64, mtime: Int, environment: MappedEnvironment)] = [:]
        var pathsByID: [String: String] = [:]
    }
    private let scratch: String
    private let known = Mutex(Known())
    /// Held while an archive is unpacked, so that the jobs of a build's first moments unpack it once.
    private let unpacking = Mutex(())

    init(scratch: String) { self.scratch = scratch }

    /// The environment at `path`, which must be for `platform` (blocking I/O on first use).
    func environment(at path: String, for platform: String) throws -> MappedEnvironment {
        var info = stat()
        guard stat(path, &info) == 0 else { throw MappedEnvironmentError(path: path, reason: Posix.errorText(errno)) }
        let size = Int64(info.st_size), mtime = Int(info.st_mtim.tv_sec) * 1_000_000_000 + Int(info.st_mtim.tv_nsec)
        func cached() -> MappedEnvironment? {
            known.withLock {
                guard let entry = $0.byPath[path], entry.size == size, entry.mtime == mtime else { return nil }
                return entry.environment
            }
        }
        if let environment = cached() { return try checked(environment, for: platform) }
        let environment: MappedEnvironment = try unpacking.withLock { _ in
            if let environment = cached() { return environment }
            let directory = scratch + "/.inspect-" + UUID().uuidString
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let manifest: EnvironmentManifest, toolchain: Toolchain
            do {
                (manifest, toolchain) = try EnvironmentArchive.unpack(path, into: directory)
            } catch {
                throw MappedEnvironmentError(path: path, reason: "\(error)")
            }
            let environment = MappedEnvironment(path: path, id: toolchain.id, manifest: manifest)
            known.withLock {
                $0.byPath[path] = (size, mtime, environment)
                $0.pathsByID[toolchain.id] = path
            }
            return environment
        }
        return try checked(environment, for: platform)
    }

    private func checked(_ environment: MappedEnvironment, for platform: String) throws -> MappedEnvironment {
        guard environment.manifest.platform == platform else {
            throw MappedEnvironmentError(path: environment.path, reason: "runs on \(environment.manifest.platform), but [toolchains] lists it for \(platform)")
        }
        return environment
    }

    /// The archive of an environment offered before, by id.
    func archivePath(of id: String) -> String? { known.withLock { $0.pathsByID[id] } }

    /// The environment's compiler that stands for the client's `compiler`: the same base name, else a cross
    /// compiler for it (`arm-linux-gnueabihf-g++` for `g++`).
    static func compiler(in environment: MappedEnvironment, for compiler: String) throws -> String {
        if let standIn = environment.manifest.compiler(for: compiler) { return standIn }
        throw MappedEnvironmentError(path: environment.path, reason: "has no compiler for \(baseName(of: compiler)) (it has \(environment.manifest.compilers.joined(separator: ", ")))")
    }
}
