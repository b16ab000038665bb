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

    /// The `stat` of `name` (one component) in `folder`, links followed, or nil with `errno` set: asked of the
    /// folder's handle, without making the path; not kept (a path asked once, as an include search's candidates).
    public func lookUp(_ name: String, in folder: String) -> stat? {
        var info = stat()
        let opened = handle(of: folder)
        guard opened >= 0 else { return stat(folder == "/" ? "/" + name : folder + "/" + name, &info) == 0 ? info : nil }
        return fstatat(opened, name, &info, 0) == 0 ? info : nil
    }

    /// The folder's `O_PATH` handle, opened the first time it is asked; negative when it cannot be opened.
    private func handle(of folder: String) -> Int32 {
        if let known = handles[folder] { return known }
        let opened = open(folder, SWL_O_PATH | O_DIRECTORY | O_CLOEXEC)
        handles[folder] = opened
        return opened
    }

    /// The `stat` of `path` (of a link itself when `followLinks` is false), or nil with `errno` set.
    public func lookUp(_ path: String, followLinks: Bool = true) -> stat? {
        let link = { (info: stat) in (info.st_mode & S_IFMT) == S_IFLNK }
        if let known = taken[path], !(followLinks && link(known)) { return known }
        // The folder's handle and the name in it; the whole path (at the cwd) for one without a folder to open.
        var fd = AT_FDCWD, name = path
        if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.startIndex, path.utf8.index(after: slash) != path.endIndex {
            let opened = handle(of: String(path[..<slash]))
            if opened >= 0 { (fd, name) = (opened, String(path[path.utf8.index(after: slash)...])) }
        }
        var info = stat()
        guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return nil }
        taken[path] = info
        guard followLinks, link(info) else { return info }
        return fstatat(fd, name, &info, 0) == 0 ? info : nil
    }
}
