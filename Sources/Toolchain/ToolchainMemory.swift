import Foundation
import SystemSupport

/// Which files each compiler was found to load (``ToolchainRegistry``), kept in a file so that a restarted daemon
/// does not run the driver's `-print-prog-name` and `ldd` again. An entry holds while the driver, each program it
/// runs and the loader's cache (`/etc/ld.so.cache`) have the identities they had (device, inode, size,
/// modification and change time); the files' contents are hashed as always (``FileResolver``).
///
/// The file: `swlaunch toolchains 1`, then per compiler `compiler PATH`, `stamp DEV INODE SIZE MTIME_NS CTIME_NS PATH`
/// (or `stamp - PATH`) lines and `file PATH` lines, and `end`. Written atomically; a damaged file is ignored.
struct ToolchainMemory {
    static let header = "swlaunch toolchains 1"
    static let loaderCache = "/etc/ld.so.cache"
    let path: String

    struct Entry: Equatable {
        var compiler: String
        /// Each program's and the loader cache's identity when the files were found (nil: it did not exist).
        var stamps: [(path: String, identity: HashJournal.Identity?)]
        var files: [String]
        static func == (a: Entry, b: Entry) -> Bool {
            a.compiler == b.compiler && a.files == b.files && a.stamps.map(\.path) == b.stamps.map(\.path)
                && a.stamps.map(\.identity) == b.stamps.map(\.identity)
        }
    }

    /// The files remembered for `compiler`, when everything they were found from is unchanged.
    func files(of compiler: String) -> [String]? {
        guard let entry = read().first(where: { $0.compiler == compiler }),
              entry.stamps.allSatisfy({ HashJournal.Identity.following($0.path) == $0.identity }) else { return nil }
        return entry.files
    }

    /// Keeps `files` for `compiler`, found from `programs` (the driver and what it runs) and the loader's cache.
    func remember(_ compiler: String, files: [String], programs: [String]) {
        let stamps = (programs + [Self.loaderCache]).map { ($0, HashJournal.Identity.following($0)) }
        write(read().filter { $0.compiler != compiler } + [Entry(compiler: compiler, stamps: stamps, files: files)])
    }

    /// Replaces the file with `entries` (an entry with a line break in a path is left out).
    func write(_ entries: [Entry]) {
        var text = Self.header + "\n"
        for entry in entries where !([entry.compiler] + entry.files + entry.stamps.map(\.path)).contains(where: { $0.contains("\n") }) {
            text += "compiler \(entry.compiler)\n"
            for (path, identity) in entry.stamps {
                if let id = identity {
                    text += "stamp \(id.dev) \(id.ino) \(id.size) \(id.modified) \(id.changed) \(path)\n"
                } else {
                    text += "stamp - \(path)\n"
                }
            }
            for file in entry.files { text += "file \(file)\n" }
            text += "end\n"
        }
        _ = Posix.writeFileAtomically(path, Array(text.utf8), mode: 0o600)
    }

    func read() -> [Entry] {
        guard let bytes = Posix.readFile(path) else { return [] }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first.map(String.init) == Self.header else { return [] }
        var entries: [Entry] = []
        var current: Entry?
        for line in lines.dropFirst() where !line.isEmpty {
            if line.hasPrefix("compiler ") {
                guard current == nil else { return [] }
                current = Entry(compiler: String(line.dropFirst(9)), stamps: [], files: [])
            } else if line.hasPrefix("stamp - "), current != nil {
                current?.stamps.append((String(line.dropFirst(8)), nil))
            } else if line.hasPrefix("stamp "), current != nil {
                let fields = line.dropFirst(6).split(separator: " ", maxSplits: 5, omittingEmptySubsequences: false)
                guard fields.count == 6, let dev = UInt64(fields[0]), let ino = UInt64(fields[1]), let size = Int64(fields[2]),
                      let modified = Int64(fields[3]), let changed = Int64(fields[4]) else { return [] }
                current?.stamps.append((String(fields[5]), HashJournal.Identity(dev: dev, ino: ino, size: size, modified: modified, changed: changed)))
            } else if line.hasPrefix("file "), current != nil {
                current?.files.append(String(line.dropFirst(5)))
            } else if line == "end", let entry = current {
                entries.append(entry)
                current = nil
            } else {
                return []
            }
        }
        return current == nil ? entries : []
    }
}
