import Crypto
import Foundation
import Synchronization
import SystemSupport
import Wire

/// What a helper needs to rebuild the client's view of some paths: the files by content, and every symlink
/// met on the way, so the same path strings resolve to the same files in the helper's sandbox.
public struct ResolvedTree: Sendable {
    public var files: [FileEntry] = []
    public var symlinks: [SymlinkEntry] = []
    public var directories: [String] = []
    public var totalBytes: UInt64 = 0
    public init() {}
}

/// Why an input could not be resolved.
public struct ResolveError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// A file the compile's user could not read or reach: the daemon does not read it for them.
public struct AccessDenied: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// Resolves paths component by component (like the kernel does) and hashes file contents, caching hashes
/// by device, inode, size and modification time.
public final class FileResolver: Sendable {
    private struct Key: Hashable { let dev: UInt64, ino: UInt64, size: Int64, mtime: Int64, mtimeNsec: Int64 }
    private struct Caches {
        /// Digest of each physical path, valid while the key matches.
        var hashes: [String: (Key, String)] = [:]
        /// A physical path with each digest.
        var paths: [String: String] = [:]
    }
    private let caches = Mutex(Caches())
    /// The folder that stands for `/` (empty: this machine's own root): paths are resolved and read inside it,
    /// absolute links included, as another machine's files unpacked there (`swlaunch env create --root`).
    private let root: String

    public init(root: String = "") { self.root = root }

    /// Joins a possibly relative path to `directory` without resolving anything.
    public static func absolute(_ path: String, in directory: String) -> String {
        path.hasPrefix("/") ? path : directory + "/" + path
    }

    /// Resolves every symlink along `path`; returns the physical path and the links met. With a `caller`, every
    /// directory searched on the way must be searchable by that user.
    public func resolve(_ path: String, as caller: Caller? = nil) throws -> (String, [SymlinkEntry]) {
        var links: [SymlinkEntry] = []
        var pending = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).reversed() as [String]
        var current: [String] = []
        var hops = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." { _ = current.popLast(); continue }
            let candidate = "/" + (current + [component]).joined(separator: "/")
            if let caller, !caller.isRoot, !caller.maySearch(directory: "/" + current.joined(separator: "/")) {
                throw AccessDenied(path: path, reason: "not reachable by the compile's user (\(caller)) at /\(current.joined(separator: "/"))")
            }
            var info = stat()
            guard lstat(root + candidate, &info) == 0 else {
                throw ResolveError(path: path, reason: String(cString: strerror(errno)) + " (at \(candidate))")
            }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                hops += 1
                guard hops < 40 else { throw ResolveError(path: path, reason: "too many symbolic links") }
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(root + candidate, &buffer, buffer.count - 1)
                guard n >= 0 else { throw ResolveError(path: path, reason: "unreadable symbolic link \(candidate)") }
                let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                links.append(SymlinkEntry(path: candidate, target: target).relativized)
                if target.hasPrefix("/") { current = [] }
                pending.append(contentsOf: target.split(separator: "/").map(String.init).reversed())
            } else {
                current.append(component)
            }
        }
        return ("/" + current.joined(separator: "/"), links)
    }

    /// The SHA-256 of a file's contents (cached), and whether it is executable. The file is opened without
    /// following links (the path is physical); with a `caller`, only when that user could read it.
    public func hash(_ physicalPath: String, as caller: Caller? = nil) throws -> (String, Bool) {
        let (digest, executable, _) = try hashAndSize(physicalPath, as: caller)
        return (digest, executable)
    }

    /// ``hash(_:as:)`` and the file's size, from the same open.
    func hashAndSize(_ physicalPath: String, as caller: Caller?) throws -> (String, Bool, Int64) {
        let (fd, info) = try (caller ?? .daemon).openForReading(root + physicalPath)
        defer { close(fd) }
        let key = Key(dev: UInt64(info.st_dev), ino: UInt64(info.st_ino), size: Int64(info.st_size),
                      mtime: Int64(info.st_mtim.tv_sec), mtimeNsec: Int64(info.st_mtim.tv_nsec))
        let executable = (info.st_mode & 0o111) != 0
        if let (cachedKey, digest) = caches.withLock({ $0.hashes[physicalPath] }), cachedKey == key { return (digest, executable, key.size) }
        guard let bytes = Posix.readAll(fd) else { throw ResolveError(path: physicalPath, reason: "unreadable") }
        let digest = Self.digest(bytes)
        caches.withLock {
            $0.hashes[physicalPath] = (key, digest)
            $0.paths[digest] = physicalPath
        }
        return (digest, executable, key.size)
    }

    public static func digest(_ bytes: [UInt8]) -> String {
        hexString(SHA256.hash(data: bytes))
    }

    /// The size of the file last hashed with this digest, as it was then.
    public func size(ofHash digest: String) -> Int64? {
        caches.withLock { caches in caches.paths[digest].flatMap { caches.hashes[$0]?.0.size } }
    }

    /// Reads the contents of a file previously hashed, checking it still has that hash.
    public func contents(ofHash digest: String) -> [UInt8]? {
        let path = caches.withLock { $0.paths[digest] }
        guard let path, let (fd, _) = try? Caller.daemon.openForReading(root + path) else { return nil }
        defer { close(fd) }
        guard let bytes = Posix.readAll(fd), Self.digest(bytes) == digest else { return nil }
        return bytes
    }

    /// Resolves files (which must exist) and directories (skipped when missing) into a tree for a helper.
    public func tree(files: [String], directories: [String], in workingDirectory: String, as caller: Caller? = nil) throws -> ResolvedTree {
        var tree = ResolvedTree()
        var seenLinks = Set<String>()
        var seenFiles = Set<String>()
        func addLinks(_ links: [SymlinkEntry]) {
            for link in links where seenLinks.insert(link.path).inserted { tree.symlinks.append(link) }
        }
        // A compile's files share a few dozen folders: each folder is resolved (and its search checked) once.
        var folders: [String: Result<(String, [SymlinkEntry]), any Error>] = [:]
        func resolveFile(_ path: String) throws -> (String, [SymlinkEntry]) {
            guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return try resolve(path, as: caller) }
            let folder = String(path[..<slash]), name = String(path[path.index(after: slash)...])
            guard !name.isEmpty, name != ".", name != ".." else { return try resolve(path, as: caller) }
            let resolved = folders[folder] ?? {
                let result = Result { () throws -> (String, [SymlinkEntry]) in
                    let (physical, links) = try resolve(folder, as: caller)
                    // `resolve` checks the folders along the way; a file in it also needs the folder itself searchable.
                    if let caller, !caller.isRoot, !caller.maySearch(directory: physical) {
                        // The folder's error, kept for every file in it: it names the folder.
                        throw AccessDenied(path: folder, reason: "not reachable by the compile's user (\(caller)) at \(physical)")
                    }
                    return (physical, links)
                }
                folders[folder] = result
                return result
            }()
            let (physicalFolder, links) = try resolved.get()
            let candidate = (physicalFolder == "/" ? "" : physicalFolder) + "/" + name
            var info = stat()
            guard lstat(root + candidate, &info) == 0 else {
                throw ResolveError(path: path, reason: String(cString: strerror(errno)) + " (at \(candidate))")
            }
            // A link as the last component: the whole path the long way.
            if (info.st_mode & S_IFMT) == S_IFLNK { return try resolve(path, as: caller) }
            return (candidate, links)
        }
        for file in files {
            // A name from the scan that does not exist was never read (a marker-like line in a raw string).
            let physical: String, links: [SymlinkEntry]
            do {
                (physical, links) = try resolveFile(Self.absolute(file, in: workingDirectory))
            } catch let denied as AccessDenied {
                // A name the caller cannot reach is never skipped: the job is refused.
                throw denied
            } catch {
                continue
            }
            addLinks(links)
            guard seenFiles.insert(physical).inserted else { continue }
            let (digest, executable, size) = try hashAndSize(physical, as: caller)
            tree.files.append(FileEntry(path: physical, hash: digest, executable: executable))
            tree.totalBytes += UInt64(max(0, size))
        }
        for directory in directories {
            guard let (physical, links) = try? resolve(Self.absolute(directory, in: workingDirectory), as: caller) else { continue }
            addLinks(links)
            tree.directories.append(physical)
        }
        return tree
    }
}
