import Synchronization
import SystemSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What is at a path, for the include scan: nothing, a regular file, or something else (a folder of `.gch` files).
enum PathKind: Sendable { case absent, file, other }

/// What the scan learnt about folders' entries, kept while each folder is unchanged, so that a scan stats each folder
/// it searches once instead of every candidate path in it (a C++ compile looks at thousands of candidates in a few
/// dozen folders). A folder's entries are trusted while its identity (inode, modification and change time) is the
/// one they were learnt under; a file created, removed or renamed there changes it. A folder modified in the last
/// two seconds is not trusted at all: file times have a coarse clock, so a second change within the same tick
/// could keep its times.
final class FolderCache: Sendable {
    struct Identity: Equatable, Sendable { var inode: UInt64, modified: Int64, changed: Int64 }
    struct Folder: Sendable { var identity: Identity, kinds: [String: PathKind] }

    private let folders = Mutex<[String: Folder]>([:])
    let maximumFolders = 50_000

    /// One scan's view: each folder stat'ed once, each path's answer kept (the scan's probes), by folder.
    struct Lookup {
        enum Status { case missing, untrusted, trusted(Identity) }
        struct Folder {
            let status: Status
            /// Every name asked about in the folder, and what was there.
            var seen: [String: PathKind] = [:]
        }
        let cache: FolderCache
        let now = Posix.wallSeconds()
        var folders: [String: Folder] = [:]
        /// The `stat` of each file the scan read, taken before reading it.
        var read: [String: stat] = [:]

        init(cache: FolderCache) { self.cache = cache }

        /// Every path asked about, by folder and name, and whether something was there.
        var probes: Probes { folders.mapValues { $0.seen.mapValues { $0 != .absent } } }

        mutating func kind(of path: String) -> PathKind {
            kind(of: lastComponent(of: path), in: parentFolder(of: path))
        }

        /// The kind of `name` (one component) in `folder`, as ``kind(of:)`` of the path they make.
        mutating func kind(of name: String, in folder: String) -> PathKind {
            let index: Dictionary<String, Folder>.Index
            if let known = folders.index(forKey: folder) {
                index = known
                if let kind = folders.values[index].seen[name] { return kind }
            } else {
                folders[folder] = Folder(status: Self.status(of: folder, now: now))
                index = folders.index(forKey: folder)!
            }
            let kind: PathKind
            switch folders.values[index].status {
            case .missing: kind = .absent
            case .untrusted: kind = FolderCache.kind(of: childPath(name, of: folder))
            case let .trusted(identity): kind = cache.kind(of: name, in: folder, identity: identity)
            }
            folders.values[index].seen[name] = kind
            return kind
        }

        static func status(of folder: String, now: Double) -> Status {
            var info = stat()
            guard stat(folder, &info) == 0 else { return errno == ENOENT || errno == ENOTDIR ? .missing : .untrusted }
            guard (info.st_mode & S_IFMT) == S_IFDIR else { return .missing }
            let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
            let changed = Double(info.st_ctim.tv_sec) + Double(info.st_ctim.tv_nsec) / 1e9
            guard now - max(modified, changed) > 2 else { return .untrusted }
            return .trusted(Identity(inode: UInt64(info.st_ino),
                                     modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                                     changed: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)))
        }
    }

    /// The kind of `folder/name`, from what was learnt under the folder's current identity, else from a stat.
    func kind(of name: String, in folder: String, identity: Identity) -> PathKind {
        let known: PathKind? = folders.withLock { folders in
            guard let entry = folders[folder], entry.identity == identity else { return nil }
            return entry.kinds[name]
        }
        if let known { return known }
        let kind = Self.kind(of: childPath(name, of: folder))
        folders.withLock { folders in
            if folders.count >= maximumFolders { folders.removeAll(keepingCapacity: true) }
            var entry = folders[folder] ?? Folder(identity: identity, kinds: [:])
            if entry.identity != identity { entry = Folder(identity: identity, kinds: [:]) }
            entry.kinds[name] = kind
            folders[folder] = entry
        }
        return kind
    }

    static func kind(of path: String) -> PathKind {
        var info = stat()
        guard stat(path, &info) == 0 else { return .absent }
        return (info.st_mode & S_IFMT) == S_IFREG ? .file : .other
    }
}
