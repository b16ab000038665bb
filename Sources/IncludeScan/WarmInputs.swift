import Synchronization
import SystemSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The include scan's results kept across compiles and daemon restarts, so that a warm tree (the same sources built
/// again, into a new build folder too, or rebuilt after an edit elsewhere) is not scanned again.
///
/// An entry is keyed by what the scan read from the command line (the source, the `-include` files, the search
/// folders, the implicit headers; not macros, which a superset scan does not follow, nor outputs) and holds the
/// files it found and a fingerprint of what decided them: the identity (inode, size, modification and change
/// time) of every file found; every path the scan looked at for a header (each search folder's candidate, and the
/// `.gch` beside each header found), with whether it existed; and the identity of each folder those paths are in.
/// A header edited, replaced or removed changes its identity; a folder whose identity moved (a file created,
/// renamed or removed there) has its looked-at paths checked again, one by one: a new header that shadows an old
/// one, a `.gch` beside one, a header that a `__has_include` probe finds now. A file saved by renaming changes its
/// folder but none of the other paths, so the compiles that only searched that folder stay warm. Paths in the
/// compile's working folder (a build folder) are kept relative to it, and its files checked by their contents,
/// so a new build folder with the same generated headers is warm too. Entries live in memory and as one small
/// file each under `directory` (written atomically); at most ``maximumEntries`` are kept in memory.
public final class WarmInputs: Sendable {
    /// What identifies a scan's inputs. Paths inside the compile's working folder (a build folder: generated
    /// headers, `-I .`) are written relative to it, so the same sources built in a new build folder find the entry.
    public struct Key: Sendable, Hashable {
        public let text: String
        /// The compile's working folder (not part of the key's identity).
        public let workingDirectory: String

        public init(source: String, preincludes: [String], implicit: [String], searchPath: IncludeScanner.SearchPath,
                    workingDirectory: String = "/") {
            let relocate = Relocation(workingDirectory)
            text = (["source " + relocate.stored(source)] + preincludes.map { "include " + relocate.stored($0) }
                + implicit.map { "implicit " + $0 } + searchPath.quote.map { "quote " + relocate.stored($0) }
                + searchPath.angled.map { "angled " + relocate.stored($0) }).joined(separator: "\n")
            self.workingDirectory = workingDirectory
        }

        public static func == (a: Key, b: Key) -> Bool { a.text == b.text }
        public func hash(into hasher: inout Hasher) { hasher.combine(text) }

        /// A file name for the key: 128 bits of FNV-1a, in hex (the file holds the whole key, checked on reading).
        var fileName: String {
            var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x8422_2325_cbf2_9ce4
            for byte in text.utf8 {
                a = (a ^ UInt64(byte)) &* 0x100_0000_01b3
                b = (b ^ UInt64(byte)) &* 0x100_0000_01b3 &+ 1
            }
            return hexString(withUnsafeBytes(of: a.bigEndian) { Array($0) } + withUnsafeBytes(of: b.bigEndian) { Array($0) })
        }
    }

    /// Paths inside a working folder, stored relative to it (`./x`), and back.
    struct Relocation {
        let prefix: String
        init(_ workingDirectory: String) { prefix = workingDirectory.hasSuffix("/") ? workingDirectory : workingDirectory + "/" }
        /// Whether `path` is the working folder or inside it (compared byte by byte: a path is asked for each file
        /// and folder of every remembered scan).
        func isInside(_ path: String) -> Bool { prefix != "/" && (hasBytePrefix(path, prefix) || isWorkingFolder(path)) }
        func isWorkingFolder(_ path: String) -> Bool { path.utf8.count + 1 == prefix.utf8.count && hasBytePrefix(prefix, path) }
        func stored(_ path: String) -> String {
            guard isInside(path) else { return path }
            return isWorkingFolder(path) ? "." : "./" + path[path.utf8.index(path.startIndex, offsetBy: prefix.utf8.count)...]
        }
        func resolved(_ path: String) -> String {
            if path == "." { return String(prefix.dropLast()) }
            return path.hasPrefix("./") ? prefix + path[path.utf8.index(path.startIndex, offsetBy: 2)...] : path
        }
    }

    /// A path's identity; nil for a path that does not exist. A file in the working folder carries a hash of its
    /// contents (its identity differs in another build folder, its contents need not).
    struct Identity: Equatable, Sendable {
        var inode: UInt64, size: Int64, modified: Int64, changed: Int64
        /// For a file in the working folder: FNV-1a of its contents.
        var content: UInt64?

        /// `content`: hash a file's contents too (remembering); a lookup hashes them only when the identity differs.
        init?(path: String, content: Bool = false) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            self.init(info, path: path, content: content)
        }

        /// The identity `info` shows (a `stat` of `path`).
        init(_ info: stat, path: String, content: Bool = false) {
            inode = UInt64(info.st_ino)
            let folder = (info.st_mode & S_IFMT) == S_IFDIR
            size = folder ? 0 : Int64(info.st_size)
            modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
            self.content = !folder && content ? Self.contentHash(path) : nil
        }

        init(inode: UInt64, size: Int64, modified: Int64, changed: Int64, content: UInt64? = nil) {
            self.inode = inode; self.size = size; self.modified = modified; self.changed = changed; self.content = content
        }

        /// Whether `path` is still what this identity recorded: the same file or folder, or a file with the same
        /// contents (when they were hashed).
        func matches(_ path: String, folders: FolderHandles) -> Bool {
            guard let info = folders.lookUp(path) else { return false }
            let now = Identity(info, path: path)
            if now.inode == inode, now.size == size, now.modified == modified, now.changed == changed { return true }
            if let content { return now.size == size && Self.contentHash(path) == content }
            return false
        }

        static func exists(_ path: String, folders: FolderHandles) -> Bool {
            folders.lookUp(path) != nil
        }

        static func contentHash(_ path: String) -> UInt64? {
            Posix.readFile(path).map(fnv1a)
        }
    }

    struct Entry: Sendable, Equatable {
        var files: [String]
        /// Every file found and every folder of a looked-at path, with its identity then (nil: it did not exist).
        var checks: [(path: String, identity: Identity?)]
        /// Every path looked at in a folder that existed, by folder (the form stored, relative in the working folder),
        /// with whether it existed.
        var probes: [String: [(name: String, existed: Bool)]]
        /// The source's directive fingerprint (``IncludeScanner/directiveFingerprint(of:)``): a source edited without
        /// touching its `#include` lines keeps the entry (the edit-compile loop).
        var sourceDirectives: UInt64?

        static func == (a: Entry, b: Entry) -> Bool {
            a.files == b.files && a.checks.map(\.path) == b.checks.map(\.path) && a.checks.map(\.identity) == b.checks.map(\.identity)
                && a.probeList.map(\.path) == b.probeList.map(\.path) && a.probeList.map(\.existed) == b.probeList.map(\.existed)
                && a.sourceDirectives == b.sourceDirectives
        }

        /// Whether everything it was decided from is as it was (paths in the working folder taken from `relocation`):
        /// every file the same; every folder the same, or else each path looked at there existing as it did.
        func isCurrent(_ relocation: Relocation, directives: (String) -> UInt64?, folders: FolderHandles) -> Bool {
            var moved: [String] = []
            // A few dozen folders hold every file checked: each is opened once, its entries asked by name.
            for (stored, identity) in checks {
                let path = relocation.resolved(stored)
                if let identity {
                    if identity.matches(path, folders: folders) { continue }
                    // The source itself edited: still the same compile's inputs when its directives are the same.
                    if stored == files.first, let known = sourceDirectives, directives(path) == known { continue }
                } else if !Identity.exists(path, folders: folders) {
                    continue
                }
                // A file that changed is a change; a folder that changed has its looked-at paths checked (one that
                // was missing and now exists has none kept: a change).
                guard probes[stored] != nil else { return false }
                moved.append(stored)
            }
            return moved.allSatisfy { folder in
                probes[folder, default: []].allSatisfy { name, existed in
                    Identity.exists(relocation.resolved(childPath(name, of: folder)), folders: folders) == existed
                }
            }
        }

        /// The probes as paths, sorted (for the file and for comparing).
        var probeList: [(path: String, existed: Bool)] {
            probes.flatMap { folder, names in names.map { (childPath($0.name, of: folder), $0.existed) } }.sorted { $0.path < $1.path }
        }

        /// Entries of probes, grouped by folder.
        static func grouped(_ probes: [(path: String, existed: Bool)]) -> [String: [(name: String, existed: Bool)]] {
            var grouped: [String: [(name: String, existed: Bool)]] = [:]
            for (path, existed) in probes {
                grouped[parentFolder(of: path), default: []].append((lastComponent(of: path), existed))
            }
            return grouped
        }
    }

    let directory: String?
    public let maximumEntries: Int
    /// The entry files kept in `directory`: past this many (checked at start and after each quarter of it written)
    /// the least recently written go, down to three quarters of it.
    public let maximumFiles: Int
    private let memory = Mutex<[Key: Entry]>([:])
    /// Entry files written since the folder was last trimmed.
    private let written = Mutex(0)

    /// `directory` keeps the entries across restarts (created when missing, trimmed to `maximumFiles`); nil keeps
    /// them in memory only.
    public init(directory: String?, maximumEntries: Int = 20_000, maximumFiles: Int = 4_000) {
        self.directory = directory
        self.maximumEntries = maximumEntries
        self.maximumFiles = maximumFiles
        if let directory {
            mkdir(directory, 0o700)
            trim(directory)
        }
    }

    /// Removes the least recently written entry files until at most three quarters of `maximumFiles` are left,
    /// when there are more than `maximumFiles`.
    func trim(_ directory: String) {
        var files: [(name: String, written: Int64)] = []
        for name in Posix.directoryEntries(directory) ?? [] where !name.hasPrefix(".") {
            var info = stat()
            if stat(directory + "/" + name, &info) == 0 { files.append((name, Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))) }
        }
        guard files.count > maximumFiles else { return }
        for file in files.sorted(by: { $0.written < $1.written }).prefix(files.count - maximumFiles * 3 / 4) {
            unlink(directory + "/" + file.name)
        }
    }

    /// The files of the scan `key` names, when nothing that decided them has changed since it was remembered.
    /// `directives` gives a file's directive fingerprint (``IncludeScanner/directiveFingerprint(of:)``), for a
    /// source edited since; without it, any edit of the source means a new scan.
    /// `folders` serves the stats (and keeps them for the caller's next look at the same files).
    public func files(for key: Key, directives: (String) -> UInt64? = { _ in nil }, folders: FolderHandles = FolderHandles()) -> [String]? {
        let entry = memory.withLock { $0[key] } ?? load(key)
        let relocation = Relocation(key.workingDirectory)
        guard let entry, entry.isCurrent(relocation, directives: directives, folders: folders) else { return nil }
        return entry.files.map(relocation.resolved)
    }

    /// Remembers a scan's result: `files` found, `probes` (every path looked at, by folder, and whether something
    /// was there), `read` (the scan's `stat` of the files it read, taken before reading them) and `sightings` (what
    /// it saw of the folders of `probes` before looking in them); the identities of the others are taken now, so a
    /// change made during the scan itself is seen at the next lookup only if it came after this call: callers
    /// remember right after scanning, and a file changed in between is caught by the content hashing that ships it.
    /// The entry is kept in memory at once; its file is written now, or with `writeLater` returned for the caller
    /// to write.
    @discardableResult
    public func remember(_ key: Key, files: [String], probes: Probes, read: [String: stat] = [:], sightings: FolderSightings = FolderSightings(),
                         sourceDirectives: UInt64? = nil, writeLater: Bool = false) -> PendingWrite? {
        let relocation = Relocation(key.workingDirectory)
        func folderIdentity(_ folder: String) -> Identity? {
            if let info = sightings.stats[folder] { return Identity(info, path: folder) }
            return sightings.missing.contains(folder) ? nil : Identity(path: folder)
        }
        let folderChecks = probes.keys.sorted().map { (folder: $0, identity: folderIdentity($0)) }
        var checks: [(path: String, identity: Identity?)] = []
        checks.reserveCapacity(files.count + folderChecks.count)
        for file in files {
            let inside = relocation.isInside(file)
            checks.append((relocation.stored(file), read[file].map { Identity($0, path: file, content: inside) } ?? Identity(path: file, content: inside)))
        }
        for (folder, identity) in folderChecks { checks.append((relocation.stored(folder), identity)) }
        // The names looked at where nothing was are not kept (more than half of a C++ compile's, in the search
        // folders that have no `bits`, `sys`, ...): should a folder appear there, the entry is refused. A file in
        // a folder's place keeps them: a folder replacing it is checked name by name.
        var stored: Probes = [:]
        stored.reserveCapacity(probes.count)
        for (folder, identity) in folderChecks where identity != nil { stored[relocation.stored(folder)] = probes[folder] }
        let entry = Entry(files: files.map(relocation.stored), checks: checks, probes: stored, sourceDirectives: sourceDirectives)
        keep(key, entry)
        guard let directory else { return nil }
        let pending = PendingWrite(inputs: self, directory: directory, key: key, entry: entry)
        guard writeLater else {
            pending.run()
            return nil
        }
        return pending
    }

    /// The file of an entry already kept in memory (lookups see it at once), for the caller to write when it suits:
    /// after the compile's reply, off the path to its helper.
    public struct PendingWrite: Sendable {
        fileprivate let inputs: WarmInputs
        fileprivate let directory: String
        fileprivate let key: Key
        fileprivate let entry: Entry

        /// Writes the entry's file (atomically), and trims the folder when due.
        public func run() {
            _ = Posix.writeFileAtomically(directory + "/" + key.fileName, WarmInputs.encode(key, entry), mode: 0o600)
            // A quarter of the bound written since the last trim: trim again (one listing per so many scans).
            let due = inputs.written.withLock { count in
                count += 1
                guard count >= max(1, inputs.maximumFiles / 4) else { return false }
                count = 0
                return true
            }
            if due { inputs.trim(directory) }
        }
    }

    private func keep(_ key: Key, _ entry: Entry) {
        memory.withLock { entries in
            if entries.count >= maximumEntries { entries.removeAll(keepingCapacity: true) }
            entries[key] = entry
        }
    }

    private func load(_ key: Key) -> Entry? {
        guard let directory, let bytes = Posix.readFile(directory + "/" + key.fileName),
              let entry = Self.decode(String(decoding: bytes, as: UTF8.self), key: key) else { return nil }
        keep(key, entry)
        return entry
    }

    /// The file: the key's lines, a line `--`, then `file PATH` lines and `check INODE SIZE MTIME CTIME PATH` or
    /// `check - PATH` lines (a relocated file's with its content hash after CTIME, `C` and hex), for each folder looked
    /// in an `in FOLDER` line followed by `+ NAME` or `- NAME` lines (looked at, existed or not), and a last line
    /// `end` (a file cut short is refused).
    static func encode(_ key: Key, _ entry: Entry) -> [UInt8] {
        var out = EntryText(capacity: key.text.utf8.count + 80 * (entry.files.count + entry.checks.count) + 64 * entry.probes.count)
        let newline = UInt8(ascii: "\n"), space = UInt8(ascii: " ")
        out.put(key.text); out.put("\n--\n")
        for file in entry.files { out.put("file "); out.put(file); out.put(newline) }
        for (path, identity) in entry.checks {
            if let id = identity {
                out.put("check "); out.put(number: id.inode); out.put(space); out.put(number: id.size); out.put(space)
                out.put(number: id.modified); out.put(space); out.put(number: id.changed); out.put(space)
                if let content = id.content { out.put("C"); out.put(number: content, radix: 16); out.put(space) }
            } else {
                out.put("check - ")
            }
            out.put(path); out.put(newline)
        }
        // Folder by folder, as kept: the folder once, then its names (a folder's path is not repeated per name).
        for (folder, names) in entry.probes {
            out.put("in "); out.put(folder); out.put(newline)
            for (name, existed) in names { out.put(existed ? "+ " : "- "); out.put(name); out.put(newline) }
        }
        if let directives = entry.sourceDirectives { out.put("directives "); out.put(number: directives, radix: 16); out.put(newline) }
        out.put("end\n")
        return out.bytes
    }

    /// An entry file's text as it is put together: each string's bytes copied at once, numbers spelt in place.
    struct EntryText {
        private(set) var bytes: [UInt8] = []

        init(capacity: Int) { bytes.reserveCapacity(capacity) }

        mutating func put(_ text: String) {
            var text = text
            text.withUTF8 { bytes.append(contentsOf: $0) }
        }

        mutating func put(_ byte: UInt8) { bytes.append(byte) }

        mutating func put(number: some BinaryInteger, radix: Int = 10) { WarmInputs.appendDigits(of: number, radix: radix, to: &bytes) }
    }

    /// Appends `number` as `String(number, radix:)` spells it (lower-case hex), without making the string: an
    /// entry has a few numbers per input file, and a cold job's entry is written while the build goes on.
    static func appendDigits(of number: some BinaryInteger, radix: Int, to out: inout [UInt8]) {
        precondition(radix >= 2 && radix <= 16)
        if number < 0 { out.append(UInt8(ascii: "-")) }
        let magnitude = UInt64(number.magnitude)
        // Entries spell numbers in radix 10 and 16: constant divisors, a multiplication and a shift per digit, not a
        // division.
        switch radix {
        case 10: appendDigits(of: magnitude, base: 10, to: &out)
        case 16: appendDigits(of: magnitude, base: 16, to: &out)
        default: appendDigits(of: magnitude, base: UInt64(radix), to: &out)
        }
    }

    @inline(__always)
    private static func appendDigits(of magnitude: UInt64, base: UInt64, to out: inout [UInt8]) {
        // 64 binary digits at most; spelt from the end of a buffer on the stack, then appended at once.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { digits in
            var magnitude = magnitude, start = digits.count
            repeat {
                let digit = UInt8(truncatingIfNeeded: magnitude % base)
                start -= 1
                digits[start] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
                magnitude /= base
            } while magnitude > 0
            out.append(contentsOf: UnsafeMutableBufferPointer(rebasing: digits[start...]))
        }
    }

    /// The entry of a file written by ``encode(_:_:)`` for `key`; nil for another key's or a damaged file.
    static func decode(_ text: String, key: Key) -> Entry? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let separator = lines.firstIndex(of: "--"), lines[..<separator].joined(separator: "\n") == key.text else { return nil }
        var body = lines[(separator + 1)...].filter { !$0.isEmpty }
        guard body.last == "end" else { return nil }
        body.removeLast()
        var entry = Entry(files: [], checks: [], probes: [:], sourceDirectives: nil)
        var probes: [(path: String, existed: Bool)] = []
        var folder: String?
        for line in body {
            if line.hasPrefix("+ ") || line.hasPrefix("- ") {
                guard let folder else { return nil }
                entry.probes[folder, default: []].append((String(line.dropFirst(2)), line.hasPrefix("+ ")))
                continue
            }
            folder = nil
            if line.hasPrefix("in ") {
                folder = String(line.dropFirst(3))
            } else if line.hasPrefix("directives ") {
                guard let hash = UInt64(line.dropFirst(11), radix: 16) else { return nil }
                entry.sourceDirectives = hash
            } else if line.hasPrefix("probe + ") || line.hasPrefix("probe - ") {
                probes.append((String(line.dropFirst(8)), line.hasPrefix("probe + ")))
            } else if line.hasPrefix("file ") {
                entry.files.append(String(line.dropFirst(5)))
            } else if line.hasPrefix("check - ") {
                entry.checks.append((String(line.dropFirst(8)), nil))
            } else if line.hasPrefix("check ") {
                var fields = line.dropFirst(6).split(separator: " ", maxSplits: 4, omittingEmptySubsequences: false)
                guard fields.count == 5, let inode = UInt64(fields[0]), let size = Int64(fields[1]), let modified = Int64(fields[2]),
                      let changed = Int64(fields[3]) else { return nil }
                var content: UInt64?
                // A relocated file's content hash comes before the path (which starts with "/" or ".").
                if fields[4].hasPrefix("C") {
                    let rest = fields[4].split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                    guard rest.count == 2, let hash = UInt64(rest[0].dropFirst(), radix: 16) else { return nil }
                    content = hash
                    fields[4] = rest[1]
                }
                entry.checks.append((String(fields[4]), Identity(inode: inode, size: size, modified: modified, changed: changed,
                                                                 content: content)))
            } else {
                return nil
            }
        }
        // (`probe ± PATH` lines: the form of earlier versions.)
        for (folder, names) in Entry.grouped(probes) { entry.probes[folder, default: []] += names }
        // Every file found is checked: a list without its fingerprint is no entry.
        return entry.files.isEmpty || !Set(entry.files).isSubset(of: entry.checks.map(\.path)) ? nil : entry
    }
}
