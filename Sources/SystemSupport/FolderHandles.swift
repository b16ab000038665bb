#if canImport(Glibc)
import Glibc
#endif
internal import CLinuxShims

/// `stat`s of many paths that share a few folders, each folder opened once (`O_PATH`) and its entries asked with
/// `fstatat`: the kernel walks a folder's path once, not once per file in it. Each path's `lstat` is taken once in
/// the pass: asked again, with or without following links (a path that is no link), it answers from the first.
/// For one pass over a compile's inputs (its warm check, then its resolution); the folders are closed when it ends.
public final class FolderHandles {
    private var handles: [String: Int32] = [:]
    private var taken: [String: stat] = [:]

    public init() {}

    deinit { for fd in handles.values where fd >= 0 { close(fd) } }

    /// The `stat` of `path` (of a link itself when `followLinks` is false), or nil with `errno` set.
    public func lookUp(_ path: String, followLinks: Bool = true) -> stat? {
        let link = { (info: stat) in (info.st_mode & S_IFMT) == S_IFLNK }
        if let known = taken[path], !(followLinks && link(known)) { return known }
        // The folder's handle and the name in it; the whole path (at the cwd) for one without a folder to open.
        var fd = AT_FDCWD, name = path
        if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.startIndex, path.utf8.index(after: slash) != path.endIndex {
            let folder = String(path[..<slash])
            let opened = handles[folder] ?? {
                let opened = open(folder, SWL_O_PATH | O_DIRECTORY | O_CLOEXEC)
                handles[folder] = opened
                return opened
            }()
            if opened >= 0 { (fd, name) = (opened, String(path[path.utf8.index(after: slash)...])) }
        }
        var info = stat()
        guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        taken[path] = info
        guard followLinks, link(info) else { return info }
        return fstatat(fd, name, &info, 0) == 0 ? info : nil
    }
}
