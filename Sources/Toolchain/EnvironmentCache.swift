import Foundation
import Synchronization
import SystemSupport

/// Unpacked environments by id under one directory, with a size limit and least-recently-used eviction.
/// Each entry is `<id>/` (the environment's root) with `<id>.meta` beside it: size, file count and platform.
/// The meta file is written last, so an entry without one is incomplete. Entries found at start-up are checked
/// lazily: the first use of each in a process compares the tree's files and bytes with its meta, and an entry
/// that does not match (a crash, a full disk, a hand that deleted files) is removed and fetched again.
public final class EnvironmentCache: Sendable {
    public let directory: String
    public let limitBytes: Int64
    /// Held while an entry is moved in or checked, so that two jobs never do it at once.
    private let lock = Mutex(())
    /// When this cache was opened: an entry whose meta file changed since (installed, touched or checked by this
    /// process) is trusted.
    private let opened: Int64

    public struct Entry: Equatable, Sendable {
        public var id: String
        public var platform: String
        public var compilers: [String]
        public var bytes: Int64
        public var lastUsed: Date
    }

    /// An entry's meta file: `bytes`, `files` (absent in entries from before it was recorded), `platform` and
    /// `compiler` lines.
    private struct Meta {
        var bytes: Int64?, files: Int?, platform = "", compilers: [String] = []

        init(_ text: String) {
            for line in text.split(separator: "\n") {
                if line.hasPrefix("bytes ") { bytes = Int64(line.dropFirst(6)) }
                if line.hasPrefix("files ") { files = Int(line.dropFirst(6)) }
                if line.hasPrefix("platform ") { platform = String(line.dropFirst(9)) }
                if line.hasPrefix("compiler ") { compilers.append(String(line.dropFirst(9))) }
            }
        }
    }

    public init(directory: String, limitBytes: Int64) throws {
        self.directory = directory
        self.limitBytes = limitBytes
        try SandboxTree.ensureDirectory(directory)
        // The file system's own clock, so that a change right after opening never looks older (without a marker,
        // everything is checked on every use).
        let marked = Posix.changeTimeNow(marker: directory + "/.opened")
        opened = marked > 0 ? marked : .max
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
        let (size, files) = try treeSize(staging)
        try lock.withLock { _ in try moveIn(staging, as: toolchain.id, manifest: manifest, size: size, files: files) }
        touch(toolchain.id)
        evict(keeping: toolchain.id)
        return (root(of: toolchain.id), toolchain)
    }

    /// Moves an unpacked tree into place and writes its meta file last (the lock is held).
    private func moveIn(_ staging: String, as id: String, manifest: EnvironmentManifest, size: Int64, files: Int) throws {
        let final = root(of: id)
        if FileManager.default.fileExists(atPath: final + ".meta") {
            try? FileManager.default.removeItem(atPath: staging)
        } else {
            // A tree without its meta file is what a crash left half done: replaced.
            try? FileManager.default.removeItem(atPath: final)
            try FileManager.default.moveItem(atPath: staging, toPath: final)
            let meta = "bytes \(size)\nfiles \(files)\nplatform \(manifest.platform)\n" + manifest.compilers.map { "compiler \($0)\n" }.joined()
            try meta.write(toFile: final + ".meta", atomically: true, encoding: .utf8)
        }
    }

    /// Marks an entry used now (its place in the eviction order).
    public func touch(_ id: String) {
        let now = Date()
        try? FileManager.default.setAttributes([.modificationDate: now], ofItemAtPath: root(of: id) + ".meta")
    }

    /// Whether the environment is here and whole (checked once per process, see the type's notes).
    public func contains(_ id: String) -> Bool {
        let meta = root(of: id) + ".meta"
        var info = stat()
        guard stat(meta, &info) == 0 else { return false }
        if Posix.nanos(info.st_ctim) >= opened { return true }
        return lock.withLock { _ in verify(id, meta: meta) }
    }

    /// Compares an entry left by an earlier run with its meta file; removes it when they differ (the lock is held).
    private func verify(_ id: String, meta: String) -> Bool {
        guard let text = try? String(contentsOfFile: meta, encoding: .utf8) else { return false }
        let recorded = Meta(text)
        if let (actualBytes, actualFiles) = try? treeSize(root(of: id)), actualBytes == recorded.bytes,
           recorded.files == nil || actualFiles == recorded.files {
            touch(id)
            return true
        }
        try? FileManager.default.removeItem(atPath: meta)
        try? FileManager.default.removeItem(atPath: root(of: id))
        return false
    }

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
            let meta = Meta(text)
            return Entry(id: id, platform: meta.platform, compilers: meta.compilers, bytes: meta.bytes ?? 0,
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

    /// Bytes and number of the regular files below `path`.
    func treeSize(_ path: String) throws -> (bytes: Int64, files: Int) {
        guard FileManager.default.fileExists(atPath: path) else { throw EnvironmentError(archive: path, reason: "no such tree") }
        var total: Int64 = 0, files = 0
        let walker = FileManager.default.enumerator(atPath: path)
        while let relative = walker?.nextObject() as? String {
            var info = stat()
            if lstat(path + "/" + relative, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                total += Int64(info.st_size)
                files += 1
            }
        }
        return (total, files)
    }
}
