import Foundation
import SystemSupport

/// Unpacked environments by id under one directory, with a size limit and least-recently-used eviction.
/// Each entry is `<id>/` (the environment's root) with `<id>.meta` beside it: size and platform.
public final class EnvironmentCache: @unchecked Sendable {
    public let directory: String
    public let limitBytes: Int64
    private let lock = NSLock()

    public struct Entry: Equatable, Sendable {
        public var id: String
        public var platform: String
        public var compilers: [String]
        public var bytes: Int64
        public var lastUsed: Date
    }

    public init(directory: String, limitBytes: Int64) throws {
        self.directory = directory
        self.limitBytes = limitBytes
        try SandboxTree.ensureDirectory(directory)
    }

    public func root(of id: String) -> String { directory + "/" + id }

    /// Unpacks `archive`, checks that its contents hash to `expectedID` (when given), and moves it into the
    /// cache; evicts the least recently used entries beyond the limit. Returns the entry's root.
    @discardableResult
    public func install(archive: String, expectedID: String? = nil) throws -> (String, Toolchain) {
        let staging = directory + "/.staging-" + UUID().uuidString
        let (manifest, toolchain) = try EnvironmentArchive.unpack(archive, into: staging)
        if let expectedID, toolchain.id != expectedID {
            try? FileManager.default.removeItem(atPath: staging)
            throw EnvironmentError(archive: archive, reason: "contents hash to \(toolchain.id), not the announced \(expectedID)")
        }
        let size = try treeSize(staging)
        lock.lock()
        defer { lock.unlock() }
        let final = root(of: toolchain.id)
        if FileManager.default.fileExists(atPath: final) {
            try? FileManager.default.removeItem(atPath: staging)
        } else {
            try FileManager.default.moveItem(atPath: staging, toPath: final)
            let meta = "bytes \(size)\nplatform \(manifest.platform)\n" + manifest.compilers.map { "compiler \($0)\n" }.joined()
            try meta.write(toFile: final + ".meta", atomically: true, encoding: .utf8)
        }
        touch(toolchain.id)
        evict(keeping: toolchain.id)
        return (final, toolchain)
    }

    /// Marks an entry used now (its place in the eviction order).
    public func touch(_ id: String) {
        let now = Date()
        try? FileManager.default.setAttributes([.modificationDate: now], ofItemAtPath: root(of: id) + ".meta")
    }

    public func contains(_ id: String) -> Bool { FileManager.default.fileExists(atPath: root(of: id) + ".meta") }

    /// Ids of the environments held, from the directory listing alone (cheap enough for every heartbeat).
    public func ids() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".meta") }.map { String($0.dropLast(5)) }
    }

    public func entries() -> [Entry] {
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".meta") }.compactMap { name in
            let id = String(name.dropLast(5))
            guard let text = try? String(contentsOfFile: directory + "/" + name, encoding: .utf8),
                  let attributes = try? fm.attributesOfItem(atPath: directory + "/" + name) else { return nil }
            var bytes: Int64 = 0, platform = "", compilers: [String] = []
            for line in text.split(separator: "\n") {
                if line.hasPrefix("bytes ") { bytes = Int64(line.dropFirst(6)) ?? 0 }
                if line.hasPrefix("platform ") { platform = String(line.dropFirst(9)) }
                if line.hasPrefix("compiler ") { compilers.append(String(line.dropFirst(9))) }
            }
            return Entry(id: id, platform: platform, compilers: compilers, bytes: bytes,
                         lastUsed: attributes[.modificationDate] as? Date ?? .distantPast)
        }.sorted { $0.lastUsed > $1.lastUsed }
    }

    /// Removes least recently used entries until the total fits the limit (never `keeping`).
    func evict(keeping: String) {
        var all = entries()
        var total = all.reduce(0) { $0 + $1.bytes }
        while total > limitBytes, let oldest = all.last, oldest.id != keeping {
            try? FileManager.default.removeItem(atPath: root(of: oldest.id) + ".meta")
            try? FileManager.default.removeItem(atPath: root(of: oldest.id))
            total -= oldest.bytes
            all.removeLast()
        }
    }

    func treeSize(_ path: String) throws -> Int64 {
        var total: Int64 = 0
        let walker = FileManager.default.enumerator(atPath: path)
        while let relative = walker?.nextObject() as? String {
            var info = stat()
            if lstat(path + "/" + relative, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { total += Int64(info.st_size) }
        }
        return total
    }
}
