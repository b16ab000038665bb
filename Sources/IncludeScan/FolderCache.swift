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
    struct Identity: Hashable, Sendable { var inode: UInt64, modified: Int64, changed: Int64 }
    struct Folder: Sendable { var identity: Identity, kinds: [String: PathKind] }

    private let folders = Mutex<[String: Folder]>([:])
    let maximumFolders = 50_000

    /// One scan's view: each folder stat'ed once, each path's answer kept (the scan's probes), by folder and name
    /// numbered in `memory` (the scan's numbering, from start to end).
    struct Lookup {
        enum Status: Hashable, Sendable { case missing, untrusted, trusted(Identity) }
        /// One path asked about: its key (folder and name numbers), its folder's status in this scan, what was there.
        struct Probe {
            let key: UInt64
            let folder: Int32
            let status: Status
            let kind: PathKind
        }
        let cache: FolderCache
        let memory: SearchMemory
        let now = Posix.wallSeconds()
        /// Each folder's status in this scan (stat'ed once), by its number.
        var statuses: [Int32: Status] = [:]
        /// The `stat` each folder's status was decided from, by its number (none for a folder that could not be
        /// stat'ed).
        var folderStats: [Int32: stat] = [:]
        /// Every path asked about (``SearchMemory/key(_:_:)``) and what was there, and the order they were asked in.
        var seen: [UInt64: PathKind] = [:]
        var order: [UInt64] = []
        /// The `stat` of each file the scan read, taken before reading it.
        var read: [String: stat] = [:]

        /// The scan's folder handles: each name is asked of its folder's handle (a build folder, untrusted while
        /// the build writes in it, is asked about every header name the compile searches for).
        let handles: FolderHandles

        /// `expectedFiles` and `expectedProbes`: how many files and paths the scan is likely to ask about (the last
        /// scan's), reserved at once.
        init(cache: FolderCache, memory: SearchMemory, handles: FolderHandles = FolderHandles(), expectedFiles: Int = 0,
             expectedProbes: Int = 0) {
            self.cache = cache
            self.memory = memory
            self.handles = handles
            read.reserveCapacity(expectedFiles)
            seen.reserveCapacity(expectedProbes)
            order.reserveCapacity(expectedProbes)
        }

        /// Every path asked about, by folder and name, and whether something was there; a folder that was absent
        /// with no names (nothing was there, and a change is its appearing).
        var probes: Probes {
            let strings = memory.strings()
            // Grouped by folder number first: each name is appended, not hashed.
            var byFolder: [Int32: [(name: String, existed: Bool)]] = [:]
            for key in order {
                byFolder[Int32(truncatingIfNeeded: key >> 32), default: []].append((strings[Int(key & 0xffff_ffff)], seen[key] != .absent))
            }
            var probes: Probes = [:]
            probes.reserveCapacity(byFolder.count + statuses.count)
            for (folder, names) in byFolder { probes[strings[Int(folder)]] = names }
            for folder in statuses.keys where isAbsent(folder) { probes[strings[Int(folder)]] = [] }
            return probes
        }

        /// Whether nothing is at the folder's path in this scan (not a folder, nor anything else: a file there keeps
        /// its probes, which a folder taking its place is checked against).
        func isAbsent(_ folder: Int32) -> Bool { statuses[folder] == .missing && folderStats[folder] == nil }

        /// What the scan saw of each folder it looked in (the folders of ``probes``), when it first looked: its
        /// `stat`, or that it was not there. A folder that could not be stat'ed is left out.
        var sightings: FolderSightings {
            let strings = memory.strings()
            var sightings = FolderSightings()
            for folder in statuses.keys {
                if let info = folderStats[folder] {
                    sightings.stats[strings[Int(folder)]] = info
                } else if isAbsent(folder) {
                    sightings.missing.insert(strings[Int(folder)])
                }
            }
            return sightings
        }

        mutating func kind(of path: String) -> PathKind {
            kind(of: lastComponent(of: path), in: parentFolder(of: path))
        }

        /// The kind of `name` (one component) in `folder`, as ``kind(of:)`` of the path they make.
        mutating func kind(of name: String, in folder: String) -> PathKind {
            probe(name, in: folder).kind
        }

        /// ``kind(of:in:)``, with the folder's status and the probe's key.
        mutating func probe(_ name: String, in folder: String) -> Probe {
            let (folderNumber, nameNumber) = memory.numbers(folder, name)
            let key = SearchMemory.key(folderNumber, nameNumber)
            let status = status(of: folderNumber, path: folder)
            if let kind = seen[key] { return Probe(key: key, folder: folderNumber, status: status, kind: kind) }
            let kind: PathKind
            switch status {
            case .missing:
                kind = .absent
                // Nothing at the folder's path: the folder stands for the paths in it (``probes``).
                if isAbsent(folderNumber) { return Probe(key: key, folder: folderNumber, status: status, kind: kind) }
            case .untrusted: kind = FolderCache.kind(of: name, in: folder, handles: handles)
            case let .trusted(identity): kind = cache.kind(of: name, in: folder, identity: identity, handles: handles)
            }
            record(key, kind)
            return Probe(key: key, folder: folderNumber, status: status, kind: kind)
        }

        /// Keeps a probe's answer as the scan's (the first answer stands). Paths in a folder absent in this scan
        /// are not asked to be kept: the folder stands for them (``probes``).
        mutating func record(_ key: UInt64, _ kind: PathKind) {
            if seen.updateValue(kind, forKey: key) == nil { order.append(key) }
        }

        /// The folder's status in this scan: stat'ed the first time it is asked.
        mutating func status(of folder: Int32, path: String) -> Status {
            if let known = statuses[folder] { return known }
            let seen = Self.look(at: path, now: now, handles: handles)
            if let info = seen.info { folderStats[folder] = info }
            statuses[folder] = seen.status
            return seen.status
        }

        /// A folder's status, from a `stat` of it.
        static func status(of folder: String, now: Double) -> Status {
            look(at: folder, now: now).status
        }

        /// A folder's status and the `stat` it was decided from (nil when the stat failed); asked of its parent's
        /// handle in `handles` (a search folder's subfolders, `bits` or `sys`, are asked in each search folder).
        static func look(at folder: String, now: Double, handles: FolderHandles? = nil) -> (status: Status, info: stat?) {
            let name = lastComponent(of: folder)
            let seen: stat?
            if let handles, !name.isEmpty, lastSlash(in: folder) != nil {
                seen = handles.lookUp(name, in: parentFolder(of: folder))
            } else {
                var info = stat()
                seen = stat(folder, &info) == 0 ? info : nil
            }
            guard let info = seen else { return (errno == ENOENT || errno == ENOTDIR ? .missing : .untrusted, nil) }
            return (status(of: info, now: now), info)
        }

        /// A folder's status from its `stat`.
        static func status(of info: stat, now: Double) -> Status {
            guard (info.st_mode & S_IFMT) == S_IFDIR else { return .missing }
            let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
            let changed = Double(info.st_ctim.tv_sec) + Double(info.st_ctim.tv_nsec) / 1e9
            guard now - max(modified, changed) > 2 else { return .untrusted }
            return .trusted(Identity(inode: UInt64(info.st_ino),
                                     modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                                     changed: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)))
        }
    }

    /// The kind of `folder/name`, from what was learnt under the folder's current identity, else asked of the
    /// folder's handle in `handles`.
    func kind(of name: String, in folder: String, identity: Identity, handles: FolderHandles) -> PathKind {
        let known: PathKind? = folders.withLock { folders in
            guard let entry = folders[folder], entry.identity == identity else { return nil }
            return entry.kinds[name]
        }
        if let known { return known }
        let kind = Self.kind(of: name, in: folder, handles: handles)
        folders.withLock { folders in
            if folders.count >= maximumFolders { folders.removeAll(keepingCapacity: true) }
            var entry = folders[folder] ?? Folder(identity: identity, kinds: [:])
            if entry.identity != identity { entry = Folder(identity: identity, kinds: [:]) }
            entry.kinds[name] = kind
            folders[folder] = entry
        }
        return kind
    }

    /// The kind of `name` in `folder`, asked of the folder's handle.
    static func kind(of name: String, in folder: String, handles: FolderHandles) -> PathKind {
        guard let info = handles.lookUp(name, in: folder) else { return .absent }
        return (info.st_mode & S_IFMT) == S_IFREG ? .file : .other
    }
}
