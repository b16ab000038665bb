import Synchronization

/// What include searches found, kept from one scan to the next: the scan ignores `#if`, so where a name is found
/// depends only on the folders searched and their entries, not on the compile that asks. A C++ compile asks a few
/// hundred names in a dozen folders (thousands of candidate paths); the compiles of a build ask nearly the same ones.
/// An answer follows from what was at each path the search looked at, so it is taken again when each of those paths
/// holds what it held: at once for a folder whose identity (inode, modification and change time, stat'ed once per
/// scan) is the trusted one it had then, path by path (a stat each) for a folder that changed since or changed too
/// recently to be trusted (``FolderCache``; a build folder while the build writes in it).
///
/// Paths and names are numbered here (the numbers key the scan's probes); at ``maximumStrings`` numbers or
/// ``maximumSearches`` answers (or shared folder sets) the scanner starts a new memory, and scans under way keep the one
/// they started with.
final class SearchMemory: Sendable {
    /// A search: `name` looked for in the folders of a list (numbered as its paths joined by NUL), and whether the
    /// `.gch` beside each header found was asked too.
    struct Search: Hashable, Sendable {
        let list: Int32
        let name: String
        let precompiled: Bool
    }

    /// A search's answer and what it was decided from.
    struct Answer: Sendable {
        /// The headers found, in the order of the folders.
        let found: [String]
        /// The first header found with a `.gch` (or folder of them) beside it, when the search asked.
        let precompiled: Int?
        /// The folders looked in, in the order asked, with their statuses then.
        let folders: Folders
        /// For each of `folders`, each name asked there (its probe key) and what was there.
        let probes: [[(key: UInt64, name: String, kind: PathKind)]]
    }

    /// Folders and their statuses, shared by the answers that looked in the same ones (most searches in a list look
    /// in its folders, each found trusted or missing), so that a scan checks them once for all those answers.
    final class Folders: Sendable {
        struct Key: Hashable, Sendable {
            let numbers: [Int32]
            let statuses: [FolderCache.Lookup.Status]
        }
        let key: Key
        let paths: [String]

        init(key: Key, paths: [String]) {
            self.key = key
            self.paths = paths
        }
    }

    let maximumStrings: Int
    let maximumSearches: Int
    private let numbering = Mutex<(numbers: [String: Int32], strings: [String])>(([:], []))
    private let answers = Mutex<[Search: Answer]>([:])
    private let sharedFolders = Mutex<[Folders.Key: Folders]>([:])

    init(maximumStrings: Int, maximumSearches: Int) {
        self.maximumStrings = maximumStrings
        self.maximumSearches = maximumSearches
    }

    /// A probe's key: its folder's number and its name's.
    static func key(_ folder: Int32, _ name: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: folder)) << 32 | UInt64(UInt32(bitPattern: name))
    }

    /// The number of a path or name (given the first time it is asked).
    func number(_ string: String) -> Int32 {
        numbering.withLock { Self.number(string, in: &$0) }
    }

    /// The numbers of two strings, under one lock.
    func numbers(_ first: String, _ second: String) -> (Int32, Int32) {
        numbering.withLock { numbering in
            let number = Self.number(first, in: &numbering)
            return (number, Self.number(second, in: &numbering))
        }
    }

    private static func number(_ string: String, in numbering: inout (numbers: [String: Int32], strings: [String])) -> Int32 {
        if let known = numbering.numbers[string] { return known }
        let number = Int32(numbering.strings.count)
        numbering.numbers[string] = number
        numbering.strings.append(string)
        return number
    }

    /// Every numbered string, by number (shared, not copied).
    func strings() -> [String] {
        numbering.withLock { $0.strings }
    }

    /// Whether a new memory should take over: too many numbers, answers, or shared folder sets (a set is made for each
    /// new combination of folders' statuses, answers replaced leave theirs behind).
    var isFull: Bool {
        numbering.withLock { $0.strings.count } >= maximumStrings || answers.withLock { $0.count } >= maximumSearches
            || sharedFolders.withLock { $0.count } >= maximumSearches
    }

    /// The shared ``Folders`` for these folders and statuses.
    func folders(_ key: Folders.Key, paths: [String]) -> Folders {
        sharedFolders.withLock { shared in
            if let known = shared[key] { return known }
            let folders = Folders(key: key, paths: paths)
            shared[key] = folders
            return folders
        }
    }

    func answer(_ search: Search) -> Answer? {
        answers.withLock { $0[search] }
    }

    func keep(_ answer: Answer, for search: Search) {
        answers.withLock { $0[search] = answer }
    }
}
