#if canImport(Glibc)
import Glibc
#endif
internal import CLinuxShims

/// `stat`s of many paths that share a few folders, each folder opened once (`O_PATH`) and its entries asked with
/// `fstatat`: the kernel walks a folder's path once, not once per file in it. For one pass (a compile's inputs);
/// the folders are closed when it ends.
public final class FolderHandles {
    private var handles: [String: Int32] = [:]

    public init() {}

    deinit { for fd in handles.values where fd >= 0 { close(fd) } }

    /// The `stat` of `path` (of a link itself when `followLinks` is false), or nil with `errno` set.
    public func lookUp(_ path: String, followLinks: Bool = true) -> stat? {
        var info = stat()
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")), slash != path.startIndex,
              path.utf8.index(after: slash) != path.endIndex else {
            let rc = followLinks ? stat(path, &info) : lstat(path, &info)
            return rc == 0 ? info : nil
        }
        let folder = String(path[..<slash])
        let fd = handles[folder] ?? {
            let opened = open(folder, SWL_O_PATH | O_DIRECTORY | O_CLOEXEC)
            handles[folder] = opened
            return opened
        }()
        guard fd >= 0 else {
            let rc = followLinks ? stat(path, &info) : lstat(path, &info)
            return rc == 0 ? info : nil
        }
        let name = String(path[path.utf8.index(after: slash)...])
        return fstatat(fd, name, &info, followLinks ? 0 : AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }
}
