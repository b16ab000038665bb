internal import CLinuxShims
import Foundation
import Synchronization
import SystemSupport
import Wire

/// A job or environment asked for something the tree refuses to build (a link with an absolute target, a path
/// through a link, a path that is not normalized): the job's own fault, not the host's.
public struct TreeRefusal: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// A directory tree that is built and read without ever following a symbolic link on the host.
///
/// A job's tree holds symlinks that a peer chose; the daemon creating a file or directory under one of them, or
/// reading an output through one, would act on the host outside the tree. Every operation here opens the parent
/// directory with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`
/// relative to the root, then acts on the last component with the `*at` calls and `O_NOFOLLOW`, so a path whose
/// prefix is a symlink (or `..`) fails instead of escaping.
public final class ConfinedTree: @unchecked Sendable {
    public let root: String
    private let rootFD: Int32
    /// Directories this tree made or found as directories (through no link) on the way to one: a file placed in
    /// one of them goes straight to its folder. The tree never removes a directory, so each stays one.
    private let madeDirectories = Mutex<Set<String>>([])
    static let resolve = SWL_RESOLVE_BENEATH | SWL_RESOLVE_NO_SYMLINKS | SWL_RESOLVE_NO_MAGICLINKS | SWL_RESOLVE_NO_XDEV

    /// Opens (creating it when missing) the root directory, which must not itself be reached through a symlink's last component.
    public init(root: String) throws {
        self.root = root
        try SandboxTree.ensureDirectory(root)
        rootFD = open(root, SWL_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { throw ResolveError(path: root, reason: "cannot open the tree's root: \(Posix.errorText(errno))") }
    }

    deinit { close(rootFD) }

    /// Splits an absolute, normalized path of the tree into its parent (relative to the root) and last name.
    static func split(_ path: String) throws -> (parent: String, name: String) {
        // On the UTF-8 bytes: every component between slashes non-empty and neither `.` nor `..`, no NUL.
        let bytes = path.utf8
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        var normalized = bytes.first == slash && bytes.count > 1
        var componentLength = 0, dots = 0
        var lastSlash = bytes.startIndex
        var index = bytes.index(after: bytes.startIndex)
        while normalized, index < bytes.endIndex {
            let byte = bytes[index]
            if byte == slash {
                normalized = componentLength > 0 && dots != componentLength
                lastSlash = index
                componentLength = 0
                dots = 0
            } else {
                normalized = byte != 0
                componentLength += 1
                if byte == dot, dots == componentLength - 1, componentLength <= 2 { dots += 1 }
            }
            index = bytes.index(after: index)
        }
        guard normalized, componentLength > 0, dots != componentLength else {
            throw TreeRefusal(path: path, reason: "not a normalized absolute path")
        }
        let parent = lastSlash == bytes.startIndex ? "." : String(path[bytes.index(after: bytes.startIndex)..<lastSlash])
        return (parent, String(path[bytes.index(after: lastSlash)...]))
    }

    /// The directory `relative` (to the root), opened without following any symlink.
    private func openDirectory(_ relative: String, forPath path: String) throws -> Int32 {
        let fd = swl_openat2(rootFD, relative, SWL_O_PATH | O_DIRECTORY | O_CLOEXEC, 0, Self.resolve)
        guard fd >= 0 else {
            if errno == ELOOP || errno == EXDEV || errno == ENOTDIR {
                throw TreeRefusal(path: path, reason: "a component is a symbolic link or not a directory (refused: the tree is never built through a link)")
            }
            throw ResolveError(path: path, reason: Posix.errorText(errno))
        }
        return fd
    }

    /// Creates `path` and its missing parents as directories (mode 0755); an existing directory is kept,
    /// anything else on the way (a symlink, a file) is an error.
    public func makeDirectories(_ path: String) throws {
        guard path != "/", !madeDirectories.withLock({ $0.contains(path) }) else { return }
        let components = try Self.components(path)
        var parentFD = try openDirectory(".", forPath: path)
        defer { close(parentFD) }
        var made: [String] = []
        var prefix = ""
        for component in components {
            if mkdirat(parentFD, component, 0o755) != 0, errno != EEXIST {
                throw ResolveError(path: path, reason: "cannot create directory \(component): \(Posix.errorText(errno))")
            }
            let next = swl_openat2(parentFD, component, SWL_O_PATH | O_DIRECTORY | O_CLOEXEC, 0, Self.resolve)
            guard next >= 0 else {
                throw TreeRefusal(path: path, reason: "\(component) is a symbolic link or not a directory (refused)")
            }
            close(parentFD)
            parentFD = next
            prefix += "/" + component
            made.append(prefix)
        }
        madeDirectories.withLock { $0.formUnion(made) }
    }

    static func components(_ path: String) throws -> [String] {
        _ = try split(path)
        return path.split(separator: "/").map(String.init)
    }

    /// Places a regular file at `path`: a hard link to `source` (a file the daemon owns, such as a blob) unless
    /// `copy` is set, when the contents are copied so that a write in the sandbox cannot reach the source.
    /// An existing entry is kept.
    public func placeFile(_ path: String, from source: String, executable: Bool, copy: Bool) throws {
        let (parent, name) = try Self.split(path)
        try makeDirectories(parent == "." ? "/" : "/" + parent)
        let directory = try openDirectory(parent, forPath: path)
        defer { close(directory) }
        if !copy {
            if linkat(AT_FDCWD, source, directory, name, 0) == 0 || errno == EEXIST { return }
        }
        let input = open(source, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard input >= 0 else { throw ResolveError(path: source, reason: "unreadable: \(Posix.errorText(errno))") }
        defer { close(input) }
        let output = openat(directory, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, executable ? 0o755 : 0o644)
        if output < 0, errno == EEXIST { return }
        guard output >= 0 else { throw ResolveError(path: path, reason: "cannot create: \(Posix.errorText(errno))") }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw ResolveError(path: source, reason: "read failed: \(Posix.errorText(errno))") }
            if n == 0 { break }
            var written = 0
            while written < n {
                let m = buffer.withUnsafeBytes { Glibc.write(output, $0.baseAddress! + written, n - written) }
                guard m > 0 else { throw ResolveError(path: path, reason: "write failed: \(Posix.errorText(errno))") }
                written += m
            }
        }
    }

    /// Places a symbolic link. Absolute targets are refused: every link of a job or an environment is relative,
    /// so that it means the same inside the sandbox and nothing at all on the host.
    public func placeSymlink(_ path: String, target: String) throws {
        guard !target.hasPrefix("/"), !target.isEmpty, !target.utf8.contains(0) else {
            throw TreeRefusal(path: path, reason: "symbolic link to \(target) refused: targets must be relative")
        }
        let (parent, name) = try Self.split(path)
        try makeDirectories(parent == "." ? "/" : "/" + parent)
        let directory = try openDirectory(parent, forPath: path)
        defer { close(directory) }
        if symlinkat(target, directory, name) != 0, errno != EEXIST {
            throw ResolveError(path: path, reason: "cannot create symbolic link: \(Posix.errorText(errno))")
        }
    }

    /// Removes a file or link at `path`, if there is one.
    public func remove(_ path: String) throws {
        let (parent, name) = try Self.split(path)
        guard let directory = try? openDirectory(parent, forPath: path) else { return }
        defer { close(directory) }
        unlinkat(directory, name, 0)
    }

    /// Reads the regular file at `path` without following any link; nil when it is missing or not a regular
    /// file. Throws when it is larger than `limit`.
    public func readRegularFile(_ path: String, limit: Int) throws -> [UInt8]? {
        let (parent, name) = try Self.split(path)
        guard let directory = try? openDirectory(parent, forPath: path) else { return nil }
        defer { close(directory) }
        let fd = swl_openat2(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0, Self.resolve)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        guard info.st_size <= limit else {
            throw ResolveError(path: path, reason: "output of \(info.st_size) bytes is over the limit of \(limit)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(done)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            done += n
        }
        return Array(bytes.prefix(done))
    }

    /// Bytes used by regular files under the directory `path` (not following links), for disk limits.
    public func usage(of path: String) -> Int64 {
        guard let relative = try? Self.split(path == "/" ? "/." : path) else { return 0 }
        let name = path == "/" ? "." : (relative.parent == "." ? relative.name : relative.parent + "/" + relative.name)
        let fd = swl_openat2(rootFD, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, Self.resolve)
        guard fd >= 0 else { return 0 }
        return Self.usage(directoryFD: fd, depth: 0)
    }

    private static func usage(directoryFD fd: Int32, depth: Int) -> Int64 {
        guard let stream = fdopendir(fd) else { close(fd); return 0 }
        defer { closedir(stream) }
        var total: Int64 = 0
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name == "." || name == ".." { continue }
            var info = stat()
            guard fstatat(dirfd(stream), name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFREG: total += Int64(info.st_blocks) * 512
            case S_IFDIR where depth < 64:
                let child = openat(dirfd(stream), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child >= 0 { total += usage(directoryFD: child, depth: depth + 1) }
            default: break
            }
        }
        return total
    }

    /// Copies an environment's tree (files, directories, relative links; nothing is followed) into this tree:
    /// files as hard links, except under `copyUnder`, where the sandbox may write and gets copies.
    public func mirror(_ source: String, copyUnder: [String]) throws {
        func isWritable(_ path: String) -> Bool {
            copyUnder.contains { path == $0 || path.hasPrefix($0 == "/" ? "/" : $0 + "/") }
        }
        func walk(_ relative: String) throws {
            guard let names = Posix.directoryEntries(source + relative) else { return }
            for name in names {
                let path = relative + "/" + name
                var info = stat()
                guard lstat(source + path, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    try makeDirectories(path)
                    try walk(path)
                case S_IFLNK:
                    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                    let n = readlink(source + path, &buffer, buffer.count - 1)
                    guard n >= 0 else { continue }
                    let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    try placeSymlink(path, target: target)
                case S_IFREG:
                    try placeFile(path, from: source + path, executable: (info.st_mode & 0o111) != 0, copy: isWritable(SandboxTree.parent(path)))
                default:
                    continue
                }
            }
        }
        try walk("")
    }
}
