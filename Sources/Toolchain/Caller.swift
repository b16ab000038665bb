internal import CLinuxShims
import Foundation
import SystemSupport

/// The user a local launcher runs as (from `SO_PEERCRED`), and what that user may do with a file.
///
/// A daemon acts for a local launcher only within that user's rights: it reads a file for a job only when
/// the user could (every directory on the way searchable, the file readable, by mode bits; a file with an ACL
/// only when the user owns it), and it packs or runs only compilers that no user but root can change.
public struct Caller: Sendable, Equatable, CustomStringConvertible {
    public let uid: uid_t
    public let gid: gid_t
    /// Supplementary groups, as the user's login would have them.
    public let groups: Set<gid_t>

    public init(uid: uid_t, gid: gid_t, groups: Set<gid_t>) {
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    /// The caller with the groups `getgrouplist` gives for `uid` (not the calling process's, whose pid could be
    /// reused by then).
    public static func user(uid: uid_t, gid: gid_t) -> Caller {
        var groups: Set<gid_t> = [gid]
        if let entry = getpwuid(uid), let name = entry.pointee.pw_name {
            var count: Int32 = 64
            var list = [gid_t](repeating: 0, count: Int(count))
            if getgrouplist(name, gid, &list, &count) < 0, count > 64 {
                list = [gid_t](repeating: 0, count: Int(count))
                _ = getgrouplist(name, gid, &list, &count)
            }
            groups.formUnion(list.prefix(Int(max(count, 0))))
        }
        return Caller(uid: uid, gid: gid, groups: groups)
    }

    /// The daemon reading for itself (its own toolchains, contents it hashed before): every check passes.
    public static let daemon = Caller(uid: 0, gid: 0, groups: [])

    public var isRoot: Bool { uid == 0 }
    public var description: String { "uid \(uid)" }

    public enum Access { case read, search, execute }

    /// Whether mode bits give this caller `access` to a file with `info`.
    public func may(_ access: Access, _ info: stat) -> Bool {
        if isRoot { return access != .execute || (info.st_mode & 0o111) != 0 }
        let bit: mode_t = access == .read ? 4 : 1
        if info.st_uid == uid { return (info.st_mode >> 6) & bit != 0 }
        if groups.contains(info.st_gid) { return (info.st_mode >> 3) & bit != 0 }
        return info.st_mode & bit != 0
    }

    /// Whether the caller may search the directory at `path` (a physical path, no links), by mode bits; a
    /// directory with an ACL only when the caller owns it.
    public func maySearch(directory path: String) -> Bool {
        if isRoot { return true }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, may(.search, info) else { return false }
        return info.st_uid == uid || swl_has_access_acl(fd) == 0
    }

    /// Whether every directory above `physicalPath` (no links in it) is searchable by the caller.
    public func maySearchParents(of physicalPath: String) -> Bool {
        if isRoot { return true }
        var directory = ""
        for component in physicalPath.split(separator: "/").dropLast() {
            guard maySearch(directory: directory.isEmpty ? "/" : directory) else { return false }
            directory += "/" + component
        }
        return maySearch(directory: directory.isEmpty ? "/" : directory)
    }

    /// Opens a regular file at a physical path (no symbolic link anywhere in it) for reading, when the caller
    /// could read it. Returns the descriptor and its status; throws a ``ResolveError`` naming why not.
    public func openForReading(_ physicalPath: String) throws -> (Int32, stat) {
        let fd = swl_openat2(AT_FDCWD, physicalPath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0,
                             SWL_RESOLVE_NO_SYMLINKS | SWL_RESOLVE_NO_MAGICLINKS)
        guard fd >= 0 else { throw ResolveError(path: physicalPath, reason: Posix.errorText(errno)) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ResolveError(path: physicalPath, reason: "not a regular file")
        }
        guard isRoot || (may(.read, info) && (info.st_uid == uid || swl_has_access_acl(fd) == 0) && maySearchParents(of: physicalPath)) else {
            close(fd)
            throw AccessDenied(path: physicalPath, reason: "not readable by the compile's user (\(self)): the daemon reads nothing for a user that the user could not")
        }
        return (fd, info)
    }

    /// Why a program may not be packed or run for this caller, or nil when it may: it and every directory
    /// above it belong to root and no one else can write them, and the caller may execute it.
    public func programRefusal(_ path: String) -> String? {
        guard let physical = Posix.realPath(path) else { return "\(path) does not exist" }
        var info = stat()
        guard stat(physical, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return "\(path) is not a regular file" }
        guard may(.execute, info), maySearchParents(of: physical) else { return "\(path) is not executable by the compile's user (\(self))" }
        var current = physical
        while true {
            guard lstat(current, &info) == 0 else { return "\(current): \(Posix.errorText(errno))" }
            if info.st_uid != 0 || (info.st_mode & 0o022) != 0 {
                return "\(path): \(current) is not owned by root or is writable by others; only compilers that no user but root can change are sent to helpers"
            }
            if current == "/" { return nil }
            current = SandboxTree.parent(current)
        }
    }
}

/// Socket option numbers Swift's Glibc module does not export.
public enum SWLSocketOptions {
    /// `SO_PEERCRED`: the pid, uid and gid of a Unix socket's peer.
    public static let peerCredentials = SWL_SO_PEERCRED
}
