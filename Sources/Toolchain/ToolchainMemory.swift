import Foundation
import SystemSupport

/// Which files each compiler was found to load (``ToolchainRegistry``), kept in a file so that a restarted daemon
/// does not run the driver's `-print-prog-name` and `ldd` again. An entry holds while the driver, each program it
/// runs and the loader's cache (`/etc/ld.so.cache`) have the identities they had (device, inode, size,
/// modification and change time); the files' contents are hashed as always (``FileResolver``).
///
/// The file: `swlaunch toolchains 1`, then per compiler `compiler PATH`, `stamp DEV INODE SIZE MTIME_NS CTIME_NS PATH`
/// lines and `file PATH` lines, and `end`. Written atomically; a damaged file is ignored.
struct ToolchainMemory {
    static let header = "swlaunch toolchains 1"
    static let loaderCache = "/etc/ld.so.cache"
    let path: String

    struct Entry: Equatable {
        var compiler: String
        var stamps: [(path: String, stamp: String)]
        var files: [String]
        static func == (a: Entry, b: Entry) -> Bool {
            a.compiler == b.compiler && a.files == b.files && a.stamps.map(\.path) == b.stamps.map(\.path) && a.stamps.map(\.stamp) == b.stamps.map(\.stamp)
        }
    }

    /// The identity of `path` (links followed), or `-` when it does not exist.
    static func stamp(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "-" }
        return "\(info.st_dev) \(info.st_ino) \(info.st_size) \(Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)) "
            + "\(Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))"
    }

    /// The files remembered for `compiler`, when everything they were found from is unchanged.
    func files(of compiler: String) -> [String]? {
        guard let entry = read().first(where: { $0.compiler == compiler }),
              entry.stamps.allSatisfy({ Self.stamp($0.path) == $0.stamp }) else { return nil }
        return entry.files
    }

    /// Keeps `files` for `compiler`, found from `programs` (the driver and what it runs) and the loader's cache.
    func remember(_ compiler: String, files: [String], programs: [String]) {
        let stamps = (programs + [Self.loaderCache]).map { ($0, Self.stamp($0)) }
        let entries = read().filter { $0.compiler != compiler } + [Entry(compiler: compiler, stamps: stamps, files: files)]
        var text = Self.header + "\n"
        for entry in entries where !([entry.compiler] + entry.files + entry.stamps.map(\.path)).contains(where: { $0.contains("\n") }) {
            text += "compiler \(entry.compiler)\n"
            for (path, stamp) in entry.stamps { text += "stamp \(stamp) \(path)\n" }
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
                current?.stamps.append((String(line.dropFirst(8)), "-"))
            } else if line.hasPrefix("stamp "), current != nil {
                let fields = line.dropFirst(6).split(separator: " ", maxSplits: 5, omittingEmptySubsequences: false)
                guard fields.count == 6, fields[..<5].allSatisfy({ Int64($0) != nil || UInt64($0) != nil }) else { return [] }
                current?.stamps.append((String(fields[5]), fields[..<5].joined(separator: " ")))
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
