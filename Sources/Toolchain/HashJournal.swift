import Foundation
import Synchronization
import SystemSupport

/// The file hashes a ``FileResolver`` learnt, kept on disk so a restarted daemon does not read and hash its
/// compilers and system headers again: an append-only file of lines
/// `DIGEST DEV INODE SIZE MTIME_NS CTIME_NS PATH` (later lines win), compacted when it opens; a run appends at
/// most `maximumEntries` lines.
///
/// Only hashes of files that had not changed for `settledSeconds` when they were read are written: a file
/// changed again within its timestamps' granularity could keep its size and times with other contents.
public final class HashJournal: Sendable {
    /// A file's identity when it was hashed; its hash holds while the file still has it.
    public struct Identity: Hashable, Sendable {
        public var dev: UInt64, ino: UInt64, size: Int64, modified: Int64, changed: Int64
        public init(dev: UInt64, ino: UInt64, size: Int64, modified: Int64, changed: Int64) {
            self.dev = dev; self.ino = ino; self.size = size; self.modified = modified; self.changed = changed
        }
        init(_ info: stat) {
            self.init(dev: UInt64(info.st_dev), ino: UInt64(info.st_ino), size: Int64(info.st_size),
                      modified: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                      changed: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
        }

        /// The identity of the file `path` leads to (links followed); nil when there is none. A program's: what is
        /// run when its path is, whichever links (`update-alternatives`) lead there.
        public static func following(_ path: String) -> Identity? {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            return Identity(info)
        }
    }

    static let header = "swlaunch file hashes 1"
    let path: String
    /// At most this many entries are kept when the file is compacted (the most recently written).
    let maximumEntries: Int
    /// One hash the file held.
    public typealias Entry = (path: String, identity: Identity, digest: String)
    /// What the file held when it was opened, oldest first, one entry per path, until taken.
    private let opened: Mutex<[Entry]>
    private let descriptor: Int32
    let settledSeconds: Int64
    /// Lines written since the file was opened: at most `maximumEntries` more until the next compaction.
    private let appended = Atomic<Int>(0)

    /// Opens (creating) the journal at `path` and compacts it to one line per path, the newest.
    public init(path: String, maximumEntries: Int = 200_000, settledSeconds: Int64 = 2) {
        self.path = path
        self.settledSeconds = settledSeconds
        self.maximumEntries = maximumEntries
        var seen = Set<String>()
        var newestFirst: [Entry] = []
        for entry in Self.read(path).reversed() where newestFirst.count < maximumEntries && seen.insert(entry.0).inserted {
            newestFirst.append(entry)
        }
        let loaded = Array(newestFirst.reversed())
        opened = Mutex(loaded)
        var text = Self.header + "\n"
        for entry in loaded { text += Self.line(entry.path, entry.identity, entry.digest) }
        _ = Posix.writeFileAtomically(path, Array(text.utf8), mode: 0o600)
        descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// What the file held when it was opened (oldest first, one entry per path); empty after the first call, so
    /// the entries live on only where they were taken.
    public func takeLoaded() -> [Entry] {
        opened.withLock { entries in
            defer { entries = [] }
            return entries
        }
    }

    /// Records that `path` had `digest` when it had `identity`, read at `readAt` (seconds since the epoch);
    /// skipped when the file had changed too shortly before.
    public func record(_ path: String, _ identity: Identity, _ digest: String, readAt: Int64) {
        guard descriptor >= 0, readAt - identity.changed / 1_000_000_000 >= settledSeconds,
              readAt - identity.modified / 1_000_000_000 >= settledSeconds,
              !path.contains("\n"), appended.add(1, ordering: .relaxed).newValue <= maximumEntries else { return }
        // One write with O_APPEND: lines from concurrent jobs do not interleave.
        _ = Posix.writeAll(descriptor, Array(Self.line(path, identity, digest).utf8))
    }

    static func line(_ path: String, _ id: Identity, _ digest: String) -> String {
        "\(digest) \(id.dev) \(id.ino) \(id.size) \(id.modified) \(id.changed) \(path)\n"
    }

    /// The entries of a journal file, in order; a damaged line (a write cut short) ends the reading.
    static func read(_ path: String) -> [(String, Identity, String)] {
        guard let bytes = Posix.readFile(path) else { return [] }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first.map(String.init) == header else { return [] }
        var entries: [(String, Identity, String)] = []
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ", maxSplits: 6, omittingEmptySubsequences: false)
            guard fields.count == 7, isSHA256Hex(fields[0]),
                  let dev = UInt64(fields[1]), let ino = UInt64(fields[2]), let size = Int64(fields[3]),
                  let modified = Int64(fields[4]), let changed = Int64(fields[5]), fields[6].hasPrefix("/") else { break }
            entries.append((String(fields[6]), Identity(dev: dev, ino: ino, size: size, modified: modified, changed: changed), String(fields[0])))
        }
        return entries
    }
}
