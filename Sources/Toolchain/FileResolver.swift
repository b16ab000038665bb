internal import CLinuxShims
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
/// by device, inode, size, modification and change time (kept across restarts in a ``HashJournal``).
public final class FileResolver: Sendable {
    private typealias Key = HashJournal.Identity
    /// What is known of a file while it keeps its identity: its digest, and whether it has an access ACL
    /// (nil: not looked at), which decides whether its mode bits alone say who may read it.
    private struct Known { var key: Key, digest: String, aclFree: Bool? }
    private struct Caches {
        /// What is known of each physical path, valid while the key matches.
        var hashes: [String: Known] = [:]
        /// A physical path with each digest.
        var paths: [String: String] = [:]
    }
    private let caches = Mutex(Caches())
    /// The folder that stands for `/` (empty: this machine's own root): paths are resolved and read inside it,
    /// absolute links included, as another machine's files unpacked there (`swlaunch env create --root`).
    private let root: String
    private let journal: HashJournal?

    /// `journal`: where hashes are kept across restarts (its entries are loaded now).
    public init(root: String = "", journal: HashJournal? = nil) {
        self.root = root
        self.journal = journal
        if let journal {
            caches.withLock { caches in
                for entry in journal.takeLoaded() {
                    caches.hashes[entry.path] = Known(key: entry.identity, digest: entry.digest, aclFree: nil)
                    caches.paths[entry.digest] = entry.path
                }
            }
        }
    }

    /// Joins a possibly relative path to `directory` without resolving anything.
    public static func absolute(_ path: String, in directory: String) -> String {
        path.hasPrefix("/") ? path : directory + "/" + path
    }

    /// Resolves every symlink along `path`; returns the physical path and the links met. With a `caller`, every
    /// directory searched on the way must be searchable by that user. `folders` looks at each path on the way once
    /// for all the paths of a job.
    public func resolve(_ path: String, as caller: Caller? = nil, folders: FolderHandles? = nil) throws -> (String, [SymlinkEntry]) {
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
            if let looked = folders?.lookUp(root + candidate, followLinks: false) {
                info = looked
            } else if folders != nil || lstat(root + candidate, &info) != 0 {
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
        let key = Key(info)
        let executable = (info.st_mode & 0o111) != 0
        // Opened as the caller, who may read it; whether it has an ACL is kept for `known` (for callers other
        // than root, whose reading it does not decide).
        let aclFree: Bool? = caller.map { !$0.isRoot } == true ? swl_has_access_acl(fd) == 0 : nil
        if let known = caches.withLock({ $0.hashes[physicalPath] }), known.key == key {
            if let aclFree, known.aclFree != aclFree { caches.withLock { $0.hashes[physicalPath]?.aclFree = aclFree } }
            return (known.digest, executable, key.size)
        }
        guard let digest = Self.digest(of: fd) else { throw ResolveError(path: physicalPath, reason: "unreadable") }
        caches.withLock {
            $0.hashes[physicalPath] = Known(key: key, digest: digest, aclFree: aclFree)
            $0.paths[digest] = physicalPath
        }
        if root.isEmpty { journal?.record(physicalPath, key, digest, readAt: Int64(time(nil))) }
        return (digest, executable, key.size)
    }

    /// The digest of a file known unchanged from its `lstat` (`info`), without opening it, when `caller` may
    /// read it by what is known: root; or the mode bits, for its owner or for a file without an access ACL.
    /// The folders above it are the caller's to check (``tree(files:directories:in:as:)`` does).
    private func known(_ physicalPath: String, _ info: stat, as caller: Caller?) -> (String, Bool, Int64)? {
        guard (info.st_mode & S_IFMT) == S_IFREG, let known = caches.withLock({ $0.hashes[physicalPath] }),
              known.key == Key(info) else { return nil }
        if let caller, !caller.isRoot {
            guard caller.may(.read, info), info.st_uid == caller.uid || known.aclFree == true else { return nil }
        }
        return (known.digest, (info.st_mode & 0o111) != 0, known.key.size)
    }

    /// The SHA-256 of what is left to read from `fd`, read in blocks (the contents are not kept).
    static func digest(of fd: Int32) -> String? {
        var hasher = SHA256()
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 17, alignment: 16)
        defer { block.deallocate() }
        while true {
            let n = read(fd, block.baseAddress, block.count)
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return hexString(hasher.finalize()) }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: block[0..<n]))
        }
    }

    public static func digest(_ bytes: [UInt8]) -> String {
        hexString(SHA256.hash(data: bytes))
    }

    /// The size of the file last hashed with this digest, as it was then.
    public func size(ofHash digest: String) -> Int64? {
        caches.withLock { caches in caches.paths[digest].flatMap { caches.hashes[$0]?.key.size } }
    }

    /// Reads the contents of a file previously hashed, checking it still has that hash.
    public func contents(ofHash digest: String) -> [UInt8]? {
        let path = caches.withLock { $0.paths[digest] }
        guard let path, let (fd, _) = try? Caller.daemon.openForReading(root + path) else { return nil }
        defer { close(fd) }
        guard let bytes = Posix.readAll(fd), Self.digest(bytes) == digest else { return nil }
        return bytes
    }

    /// Resolves files (which must exist) and directories (skipped when missing) into a tree for a helper; `folders`
    /// serves the files' lstats (one shared with a warm check just before answers from its own).
    public func tree(files: [String], directories: [String], in workingDirectory: String, as caller: Caller? = nil,
                     folders handles: FolderHandles = FolderHandles()) throws -> ResolvedTree {
        var tree = ResolvedTree()
        var seenLinks = Set<String>()
        var seenFiles = Set<String>()
        // Sized at once: a C++ compile has a few hundred files, and growing the set rehashes every path in it.
        seenFiles.reserveCapacity(files.count)
        tree.files.reserveCapacity(files.count)
        func addLinks(_ links: [SymlinkEntry]) {
            for link in links where seenLinks.insert(link.path).inserted { tree.symlinks.append(link) }
        }
        // A compile's files share a few dozen folders: each folder is resolved (and its search checked) once.
        var folders: [String: Result<(String, [SymlinkEntry]), any Error>] = [:]
        /// The physical path, the links met, and the file's `lstat` when taken on the way.
        func resolveFile(_ path: String) throws -> (String, [SymlinkEntry], stat?) {
            func theLongWay() throws -> (String, [SymlinkEntry], stat?) {
                let (physical, links) = try resolve(path, as: caller, folders: handles)
                return (physical, links, nil)
            }
            guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.startIndex else { return try theLongWay() }
            let folder = String(path[..<slash]), name = String(path[path.utf8.index(after: slash)...])
            guard !name.isEmpty, name != ".", name != ".." else { return try theLongWay() }
            let resolved = folders[folder] ?? {
                let result = Result { () throws -> (String, [SymlinkEntry]) in
                    let (physical, links) = try resolve(folder, as: caller, folders: handles)
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
            guard let info = handles.lookUp(root + candidate, followLinks: false) else {
                throw ResolveError(path: path, reason: String(cString: strerror(errno)) + " (at \(candidate))")
            }
            // A link as the last component: the whole path the long way.
            if (info.st_mode & S_IFMT) == S_IFLNK { return try theLongWay() }
            return (candidate, links, info)
        }
        for file in files {
            // A name from the scan that does not exist was never read (a marker-like line in a raw string).
            let physical: String, links: [SymlinkEntry], info: stat?
            do {
                (physical, links, info) = try resolveFile(Self.absolute(file, in: workingDirectory))
            } catch let denied as AccessDenied {
                // A name the caller cannot reach is never skipped: the job is refused.
                throw denied
            } catch {
                continue
            }
            addLinks(links)
            guard seenFiles.insert(physical).inserted else { continue }
            // A file unchanged since it was hashed is not opened again.
            let (digest, executable, size) = try info.flatMap { known(physical, $0, as: caller) } ?? hashAndSize(physical, as: caller)
            tree.files.append(FileEntry(path: physical, hash: digest, executable: executable))
            tree.totalBytes += UInt64(max(0, size))
        }
        for directory in directories {
            guard let (physical, links) = try? resolve(Self.absolute(directory, in: workingDirectory), as: caller, folders: handles) else { continue }
            addLinks(links)
            tree.directories.append(physical)
        }
        return tree
    }
}
