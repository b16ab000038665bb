import Foundation
import SystemSupport
import Wire

/// Builds directory trees that mirror paths of another machine, by hard links (or copies across file systems).
public enum SandboxTree {
    public static func ensureDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// Places `source` at `root + path`, as a hard link unless `copy` is set (or linking fails);
    /// an existing entry there is left alone.
    public static func place(file path: String, from source: String, under root: String, executable: Bool, copy: Bool = false) throws {
        let destination = root + path
        try ensureDirectory(parent(destination))
        if Posix.fileExists(destination) { return }
        if !copy, link(source, destination) == 0 || errno == EEXIST { return }
        guard let bytes = Posix.readFile(source) else { throw ResolveError(path: source, reason: "unreadable") }
        if let code = Posix.writeFileAtomically(destination, bytes, mode: executable ? 0o755 : 0o644) {
            throw ResolveError(path: destination, reason: Posix.errorText(code))
        }
    }

    public static func place(symlink: SymlinkEntry, under root: String) throws {
        let destination = root + symlink.path
        try ensureDirectory(parent(destination))
        if Glibc.symlink(symlink.target, destination) != 0, errno != EEXIST {
            throw ResolveError(path: destination, reason: "cannot create symbolic link: \(Posix.errorText(errno))")
        }
    }

    /// Hard-links every file of `source` tree into `root` (directories recreated, symlinks copied);
    /// files directly inside a directory of `copyInto` are copied, since the sandbox may write there.
    public static func linkTree(_ source: String, into root: String, copyInto: Set<String>) throws {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: source) else { return }
        while let relative = walker.nextObject() as? String {
            let from = source + "/" + relative
            let to = root + "/" + relative
            var info = stat()
            guard lstat(from, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try ensureDirectory(to)
            case S_IFLNK:
                let target = try fm.destinationOfSymbolicLink(atPath: from)
                if Glibc.symlink(target, to) != 0, errno != EEXIST {
                    throw ResolveError(path: to, reason: "cannot create symbolic link")
                }
            default:
                try place(file: "/" + relative, from: from, under: root, executable: (info.st_mode & 0o111) != 0,
                          copy: copyInto.contains(parent("/" + relative)))
            }
        }
    }
}

