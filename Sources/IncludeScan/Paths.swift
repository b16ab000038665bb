#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Paths a scan looked at: folder, then each name in it (once), and whether something was there.
public typealias Probes = [String: [(name: String, existed: Bool)]]

/// What a scan saw of the folders it looked in, when it first looked: each one's `stat`, or that it was not there
/// (a folder that could not be stat'ed is in neither). A scan remembered with these is checked against the folders
/// as they were before it looked in them.
public struct FolderSightings: Sendable {
    /// The folders that were there (or something else by their name), each with its `stat`.
    public var stats: [String: stat] = [:]
    /// The folders that were not there.
    public var missing: Set<String> = []
    public init() {}
}

/// The folder of a path as the scan writes paths: `/` for a file at the root, `.` for a bare name.
func parentFolder(of path: String) -> String {
    guard let slash = lastSlash(in: path) else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
}

/// The last `/` of `path`, found in its UTF-8 bytes (a search by `Character` costs grapheme breaking per step).
func lastSlash(in path: String) -> String.Index? {
    path.utf8.lastIndex(of: UInt8(ascii: "/"))
}

/// Whether `path`'s UTF-8 bytes start with `prefix`'s: one `memcmp` over native strings' contiguous bytes (the
/// generic `starts(with:)` steps through both views byte by byte).
func hasBytePrefix(_ path: String, _ prefix: String) -> Bool {
    let fast = path.utf8.withContiguousStorageIfAvailable { whole in
        prefix.utf8.withContiguousStorageIfAvailable { start in
            start.count <= whole.count && (start.isEmpty || memcmp(whole.baseAddress!, start.baseAddress!, start.count) == 0)
        }
    }
    return (fast ?? nil) ?? path.utf8.starts(with: prefix.utf8)
}

/// The last component of `path` (all of it when there is no `/`).
func lastComponent(of path: String) -> String {
    guard let slash = lastSlash(in: path) else { return path }
    return String(path[path.utf8.index(after: slash)...])
}

/// `name` in `folder` (`/` and `.` included).
func childPath(_ name: String, of folder: String) -> String { folder == "/" ? "/" + name : folder + "/" + name }

/// 64-bit FNV-1a: the scan's fingerprints of contents, directives and keys (not a defence against anyone).
func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash
}
