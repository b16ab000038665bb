import CArchive
import Crypto
import Foundation
import SystemSupport
import Wire

/// What an environment archive says about itself (`.swlaunch/environment`, the first entry).
public struct EnvironmentManifest: Equatable, Sendable {
    /// Platform the toolchain runs on, for example `x86_64-linux`.
    public var platform: String
    /// Compiler drivers in the environment, by absolute path.
    public var compilers: [String]
    /// For a stand-in (`swlaunch env create --stand-in-for`): the client compilers it was checked against.
    public var standsInFor: [StandIn]

    /// The client's compiler a stand-in environment was made for, and that compiler's identity then.
    public struct StandIn: Equatable, Sendable, Codable {
        /// The client's compiler as `[toolchains]` names it (`g++`) or its path.
        public var compiler: String
        public var identity: CompilerIdentity
        /// The stand-in's own package version, which may differ (only the objects' `.comment` shows it).
        public var standInPackageVersion: String?
        public init(compiler: String, identity: CompilerIdentity, standInPackageVersion: String?) {
            self.compiler = compiler
            self.identity = identity
            self.standInPackageVersion = standInPackageVersion
        }
    }

    public init(platform: String, compilers: [String], standsInFor: [StandIn] = []) {
        self.platform = platform
        self.compilers = compilers
        self.standsInFor = standsInFor
    }

    var text: String {
        var text = "platform \(platform)\n" + compilers.map { "compiler \($0)\n" }.joined()
        for standIn in standsInFor {
            // Strings only, with JSON's escapes: encoding cannot fail, and it is one line.
            if let json = try? JSONEncoder().encode(standIn) { text += "stands-in-for " + String(decoding: json, as: UTF8.self) + "\n" }
        }
        return text
    }

    init?(text: String) {
        var platform: String?
        var compilers: [String] = []
        var standIns: [StandIn] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("platform ") { platform = String(line.dropFirst(9)) }
            if line.hasPrefix("compiler ") { compilers.append(String(line.dropFirst(9))) }
            if line.hasPrefix("stands-in-for ") {
                guard let decoded = try? JSONDecoder().decode(StandIn.self, from: Data(line.dropFirst(14).utf8)) else { return nil }
                standIns.append(decoded)
            }
        }
        guard let platform else { return nil }
        self.platform = platform
        self.compilers = compilers
        self.standsInFor = standIns
    }

    /// The environment's compiler that stands for a client's `compiler`: the same base name, else a cross compiler
    /// for it (`arm-linux-gnueabihf-g++` for `g++`).
    public func compiler(for compiler: String) -> String? {
        let name = compiler.split(separator: "/").last.map(String.init) ?? compiler
        if let same = compilers.first(where: { $0.split(separator: "/").last.map(String.init) == name }) { return same }
        let bare = name.split(separator: "-").last.map(String.init) ?? name
        return compilers.first { path in
            let base = path.split(separator: "/").last.map(String.init) ?? path
            return base.hasSuffix("-" + bare) || base == bare
        }
    }

    /// What the environment was checked against for a client's `compiler` (by base name).
    public func standIn(for compiler: String) -> StandIn? {
        let name = compiler.split(separator: "/").last.map(String.init) ?? compiler
        return standsInFor.first { ($0.compiler.split(separator: "/").last.map(String.init) ?? $0.compiler) == name }
    }
}

/// Why an archive was refused or could not be written.
public struct EnvironmentError: Error, Equatable, CustomStringConvertible {
    public let archive: String
    public let reason: String
    public init(archive: String, reason: String) {
        self.archive = archive
        self.reason = reason
    }
    public var description: String { "\(archive): \(reason)" }
}

/// libarchive's message for its last error. It may have none: the archive fuzz target found that a NULL here crashed.
func libarchiveError(_ archive: OpaquePointer) -> String {
    archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
}

/// Toolchain environments as `.tar.zst` archives: the files of a compiler and everything it loads, at
/// their paths, with the symlinks on the way. Archives are deterministic (sorted entries, no owners or
/// times), and their id is the toolchain id: a hash of the platform, every path and every file's content.
public enum EnvironmentArchive {
    public static let manifestPath = ".swlaunch/environment"
    /// Largest unpacked size accepted (a guard against decompression bombs).
    public static let maximumUnpackedSize: Int64 = 8 << 30

    /// The content id of a set of files and links running on `platform`.
    public static func identity(files: [FileEntry], symlinks: [SymlinkEntry], platform: String) -> String {
        var lines = ["platform \(platform)"]
        lines += files.sorted { $0.path < $1.path }.map { "F \($0.path) \($0.hash) \($0.executable)" }
        lines += symlinks.sorted { $0.path < $1.path }.map { "L \($0.path) \($0.target)" }
        return FileResolver.digest(Array(lines.joined(separator: "\n").utf8))
    }

    /// Writes the toolchain's files (read from this machine, under `sourceRoot` when given) into a `.tar.zst`
    /// at `output`, atomically.
    public static func write(_ toolchain: Toolchain, manifest: EnvironmentManifest, to output: String, sourceRoot: String = "") throws {
        let temporary = output + ".partial-" + UUID().uuidString.prefix(8)
        guard let archive = archive_write_new() else { throw EnvironmentError(archive: output, reason: "libarchive failed") }
        defer { archive_write_free(archive) }
        func check(_ rc: Int32) throws {
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN else {
                unlink(temporary)
                throw EnvironmentError(archive: output, reason: libarchiveError(archive))
            }
        }
        try check(archive_write_add_filter_zstd(archive))
        try check(archive_write_set_format_pax_restricted(archive))
        try check(archive_write_open_filename(archive, temporary))
        func add(_ path: String, type: mode_t, permissions: mode_t, contents: [UInt8] = [], target: String? = nil) throws {
            let entry = archive_entry_new()
            defer { archive_entry_free(entry) }
            archive_entry_set_pathname(entry, path)
            archive_entry_set_filetype(entry, UInt32(type))
            archive_entry_set_perm(entry, permissions)
            archive_entry_set_mtime(entry, 0, 0)
            archive_entry_set_size(entry, la_int64_t(contents.count))
            if let target { archive_entry_set_symlink(entry, target) }
            try check(archive_write_header(archive, entry))
            if !contents.isEmpty {
                let written = contents.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
                guard written == contents.count else { try check(ARCHIVE_FATAL); return }
            }
        }
        try add(manifestPath, type: S_IFREG, permissions: 0o644, contents: Array(manifest.text.utf8))
        var entries: [(String, () throws -> Void)] = []
        for file in toolchain.files {
            entries.append((file.path, {
                guard let bytes = Posix.readFile(sourceRoot + file.path), FileResolver.digest(bytes) == file.hash else {
                    throw EnvironmentError(archive: output, reason: "\(file.path) changed or vanished while packing")
                }
                try add(String(file.path.dropFirst()), type: S_IFREG, permissions: file.executable ? 0o755 : 0o644, contents: bytes)
            }))
        }
        for link in toolchain.symlinks {
            entries.append((link.path, { try add(String(link.path.dropFirst()), type: S_IFLNK, permissions: 0o777, target: link.relativized.target) }))
        }
        for (_, write) in entries.sorted(by: { $0.0 < $1.0 }) { try write() }
        try check(archive_write_close(archive))
        guard rename(temporary, output) == 0 else {
            unlink(temporary)
            throw EnvironmentError(archive: output, reason: "cannot rename into place: \(Posix.errorText(errno))")
        }
    }

    /// The manifest alone (the archive's first entry), without unpacking the rest.
    public static func manifest(of path: String) throws -> EnvironmentManifest {
        guard let archive = archive_read_new() else { throw EnvironmentError(archive: path, reason: "libarchive failed") }
        defer { archive_read_free(archive) }
        archive_read_support_filter_zstd(archive)
        archive_read_support_format_tar(archive)
        var entry: OpaquePointer?
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK, archive_read_next_header(archive, &entry) == ARCHIVE_OK,
              let entry, archive_entry_pathname(entry).map({ String(cString: $0) }) == manifestPath else {
            throw EnvironmentError(archive: path, reason: "not an environment archive (no \(manifestPath) first): " + libarchiveError(archive))
        }
        let size = archive_entry_size(entry)
        guard size >= 0, size <= 1 << 20 else { throw EnvironmentError(archive: path, reason: "\(manifestPath) is too large") }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let n = bytes.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
        guard n == Int(size), let manifest = EnvironmentManifest(text: String(decoding: bytes, as: UTF8.self)) else {
            throw EnvironmentError(archive: path, reason: "unreadable \(manifestPath)")
        }
        return manifest
    }

    /// Unpacks an archive into `directory` (which must not exist), refusing anything that could reach outside
    /// it: absolute paths, `..`, device files, hard links, links that point outside the environment, and
    /// paths that go through a symlink. On any refusal nothing is left behind.
    /// Returns the manifest and the toolchain as unpacked (paths as they will be inside a sandbox).
    public static func unpack(_ path: String, into directory: String) throws -> (EnvironmentManifest, Toolchain) {
        guard let archive = archive_read_new() else { throw EnvironmentError(archive: path, reason: "libarchive failed") }
        defer { archive_read_free(archive) }
        archive_read_support_filter_zstd(archive)
        archive_read_support_format_tar(archive)
        guard archive_read_open_filename(archive, path, 1 << 16) == ARCHIVE_OK else {
            throw EnvironmentError(archive: path, reason: "not a readable .tar.zst: " + libarchiveError(archive))
        }
        let fm = FileManager.default
        guard !fm.fileExists(atPath: directory) else { throw EnvironmentError(archive: path, reason: "\(directory) exists already") }
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            return try extract(archive, from: path, into: directory)
        } catch {
            try? fm.removeItem(atPath: directory)
            throw error
        }
    }

    private static func extract(_ archive: OpaquePointer, from path: String, into directory: String) throws -> (EnvironmentManifest, Toolchain) {
        func refuse(_ reason: String) -> EnvironmentError { EnvironmentError(archive: path, reason: reason) }
        var manifest: EnvironmentManifest?
        var files: [FileEntry] = []
        var links: [SymlinkEntry] = []
        var linkPaths = Set<String>()
        var total: Int64 = 0
        var entry: OpaquePointer?
        while true {
            let rc = archive_read_next_header(archive, &entry)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else {
                throw refuse("corrupt archive: " + libarchiveError(archive))
            }
            let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            let components = name.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
            guard !name.isEmpty, !components.isEmpty else { throw refuse("an entry has an empty name") }
            guard !name.hasPrefix("/") else { throw refuse("absolute path '\(name)'") }
            guard !components.contains(".."), !components.contains(".") else { throw refuse("'..' or '.' in '\(name)'") }
            guard archive_entry_hardlink(entry) == nil else { throw refuse("hard link '\(name)'") }
            for depth in 1..<max(components.count, 1) where linkPaths.contains(components[0..<depth].joined(separator: "/")) {
                throw refuse("'\(name)' goes through the symbolic link '\(components[0..<depth].joined(separator: "/"))'")
            }
            let relative = components.joined(separator: "/")
            let destination = directory + "/" + relative
            let type = mode_t(archive_entry_filetype(entry))
            switch type {
            case S_IFDIR:
                try SandboxTree.ensureDirectory(destination)
            case S_IFLNK:
                let target = archive_entry_symlink(entry).map { String(cString: $0) } ?? ""
                guard !target.hasPrefix("/") else { throw refuse("link '\(name)' -> '\(target)' has an absolute target") }
                guard !target.isEmpty, linkStaysInside(link: components, target: target) else {
                    throw refuse("link '\(name)' -> '\(target)' points outside the environment")
                }
                try SandboxTree.ensureDirectory(SandboxTree.parent(destination))
                guard symlink(target, destination) == 0 else { throw refuse("cannot create '\(name)': \(Posix.errorText(errno))") }
                linkPaths.insert(relative)
                if relative != manifestPath { links.append(SymlinkEntry(path: "/" + relative, target: target)) }
            case S_IFREG:
                // A header may claim any size (up to Int64.max): compared before it is added, so nothing overflows.
                let size = archive_entry_size(entry)
                guard size >= 0, size <= maximumUnpackedSize - total else { throw refuse("unpacks to more than \(maximumUnpackedSize) bytes") }
                total += size
                // Streamed to disk chunk by chunk, hashed on the way: nothing is held in memory.
                let executable = (archive_entry_perm(entry) & 0o111) != 0
                try SandboxTree.ensureDirectory(SandboxTree.parent(destination))
                let fd = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, executable ? 0o755 : 0o644)
                guard fd >= 0 else { throw refuse("cannot create '\(name)': \(Posix.errorText(errno))") }
                defer { close(fd) }
                var hasher = SHA256()
                var written: Int64 = 0
                var manifestBytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = chunk.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
                    if n == 0 { break }
                    guard n > 0 else { throw refuse("corrupt data in '\(name)': " + libarchiveError(archive)) }
                    written += Int64(n)
                    guard written <= size else { throw refuse("'\(name)' is longer than its header says") }
                    let piece = chunk[0..<n]
                    hasher.update(data: piece)
                    if relative == manifestPath {
                        guard manifestBytes.count + n <= 1 << 20 else { throw refuse("\(manifestPath) is too large") }
                        manifestBytes += piece
                    }
                    guard Posix.writeAll(fd, Array(piece)) else { throw refuse("cannot write '\(name)': \(Posix.errorText(errno))") }
                }
                if relative == manifestPath {
                    manifest = EnvironmentManifest(text: String(decoding: manifestBytes, as: UTF8.self))
                } else {
                    let digest = hexString(hasher.finalize())
                    files.append(FileEntry(path: "/" + relative, hash: digest, executable: executable))
                }
            default:
                throw refuse("'\(name)' is a device file, fifo or socket")
            }
        }
        guard let manifest else { throw refuse("no \(manifestPath): not a swlaunch environment") }
        let id = identity(files: files, symlinks: links, platform: manifest.platform)
        return (manifest, Toolchain(id: id, compiler: manifest.compilers.first ?? "", files: files, symlinks: links))
    }

    /// Whether a symlink at `link` (components relative to the environment root) with `target` resolves,
    /// lexically, to a place inside the root. Absolute targets count from the root, as in the sandbox.
    static func linkStaysInside(link: [String], target: String) -> Bool {
        var stack: [String] = target.hasPrefix("/") ? [] : Array(link.dropLast())
        for part in target.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                guard !stack.isEmpty else { return false }
                stack.removeLast()
            } else {
                stack.append(String(part))
            }
        }
        return true
    }
}
