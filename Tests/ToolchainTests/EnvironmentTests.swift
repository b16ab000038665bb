import CArchive
import Foundation
import SystemSupport
import Testing
import Wire
@testable import Toolchain

func scratchDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "env-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// One entry of a hand-made archive.
enum RawEntry {
    case file(String, String)
    case directory(String)
    case symlink(String, String)
    case hardlink(String, String)
    case device(String)
}

/// Writes a .tar.zst exactly as told, including what swlaunch would never write.
func writeRawArchive(_ path: String, _ entries: [RawEntry], manifest: Bool = true) {
    let a = archive_write_new()
    archive_write_add_filter_zstd(a)
    archive_write_set_format_pax_restricted(a)
    archive_write_open_filename(a, path)
    let all: [RawEntry] = (manifest ? [.file(EnvironmentArchive.manifestPath, "platform x86_64-linux\ncompiler /usr/bin/gcc\n")] : []) + entries
    for raw in all {
        let e = archive_entry_new()
        switch raw {
        case let .file(name, text):
            archive_entry_set_pathname(e, name); archive_entry_set_filetype(e, 0o100000); archive_entry_set_perm(e, 0o644)
            archive_entry_set_size(e, la_int64_t(text.utf8.count))
            archive_write_header(a, e)
            _ = Array(text.utf8).withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
        case let .directory(name):
            archive_entry_set_pathname(e, name); archive_entry_set_filetype(e, 0o040000); archive_entry_set_perm(e, 0o755)
            archive_write_header(a, e)
        case let .symlink(name, target):
            archive_entry_set_pathname(e, name); archive_entry_set_filetype(e, 0o120000); archive_entry_set_symlink(e, target)
            archive_write_header(a, e)
        case let .hardlink(name, target):
            archive_entry_set_pathname(e, name); archive_entry_set_filetype(e, 0o100000); archive_entry_set_hardlink(e, target)
            archive_write_header(a, e)
        case let .device(name):
            archive_entry_set_pathname(e, name); archive_entry_set_filetype(e, 0o020000); archive_entry_set_rdev(e, rawDevice(1, 3))
            archive_write_header(a, e)
        }
        archive_entry_free(e)
    }
    archive_write_close(a)
    archive_write_free(a)
}

func rawDevice(_ major: UInt32, _ minor: UInt32) -> dev_t { dev_t((major << 8) | minor) }

func nativeEnvironment(_ compilers: [String], in dir: String) throws -> (String, Toolchain) {
    let toolchain = try ToolchainRegistry(resolver: FileResolver(), platform: currentPlatform()).environment(compilers: compilers)
    let id = toolchain.id
    let path = dir + "/\(id).tar.zst"
    try EnvironmentArchive.write(toolchain, manifest: EnvironmentManifest(platform: currentPlatform(), compilers: compilers), to: path)
    return (path, toolchain)
}

@Test func gccEnvironmentHasTheDriverItsProgramsAndLibrariesAndAStableID() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (first, toolchain) = try nativeEnvironment(["/usr/bin/gcc", "/usr/bin/g++"], in: dir)
    let paths = Set(toolchain.files.map(\.path))
    #expect(paths.contains { $0.hasSuffix("/cc1") })
    #expect(paths.contains { $0.hasSuffix("/cc1plus") })
    #expect(paths.contains { $0.hasSuffix("-as") || $0.hasSuffix("/as") })
    #expect(paths.contains { $0.contains("libc.so") })
    #expect(paths.contains { $0.contains("ld-linux") })
    let bytes = try #require(Posix.readFile(first))
    let (again, same) = try nativeEnvironment(["/usr/bin/gcc", "/usr/bin/g++"], in: try scratchDirectory())
    #expect(same.id == toolchain.id)
    #expect(Posix.readFile(again) == bytes, "archives of the same toolchain should be byte-identical")
    // Unpacking gives back the same id, computed from what was unpacked.
    let cache = try EnvironmentCache(directory: dir + "/cache", limitBytes: 1 << 34)
    let (root, unpacked) = try cache.install(archive: first, expectedID: toolchain.id)
    #expect(unpacked.id == toolchain.id)
    #expect(Posix.isExecutableFile(root + "/usr/bin/gcc"))
}

@Test(.enabled(if: Posix.isExecutableFile("/opt/swift/usr/bin/clang"), "the toolchain's clang is not installed"))
func clangEnvironmentCarriesTheGCCInstallationMarker() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (_, toolchain) = try nativeEnvironment(["/opt/swift/usr/bin/clang", "/opt/swift/usr/bin/clang++"], in: dir)
    let paths = Set(toolchain.files.map(\.path))
    #expect(paths.contains { $0.hasSuffix("crtbegin.o") })
    #expect(paths.contains { $0.contains("clang") })
}

@Test func cacheEvictsTheLeastRecentlyUsed() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var ids: [String] = []
    for i in 0..<3 {
        let path = dir + "/e\(i).tar.zst"
        writeRawArchive(path, [.file("usr/bin/tool\(i)", String(repeating: "x", count: 1000))])
        let cache = try EnvironmentCache(directory: dir + "/cache", limitBytes: 2500)
        ids.append(try cache.install(archive: path).1.id)
        // Use times set outright (no sleeps): e0 at 1000 s, e1 at 2000 s after the epoch, e2 installed now.
        var times = [timeval(tv_sec: 1000 * (i + 1), tv_usec: 0), timeval(tv_sec: 1000 * (i + 1), tv_usec: 0)]
        if i < 2 { utimes(cache.root(of: ids[i]) + ".meta", &times) }
        if i == 1 { cache.touch(ids[0]) }  // e0 used after e1: e1 is now the oldest
    }
    let cache = try EnvironmentCache(directory: dir + "/cache", limitBytes: 2500)
    #expect(Set(cache.entries().map(\.id)) == [ids[0], ids[2]])
    #expect(Set(cache.ids()) == [ids[0], ids[2]])
    #expect(!FileManager.default.fileExists(atPath: cache.root(of: ids[1])))
}

@Test(arguments: [
    ([RawEntry.file("/etc/passwd", "x")], "absolute path '/etc/passwd'"),
    ([RawEntry.file("usr/../../escape", "x")], "'..' or '.' in 'usr/../../escape'"),
    ([RawEntry.device("dev/null")], "'dev/null' is a device file, fifo or socket"),
    ([RawEntry.file("a", "x"), .hardlink("b", "a")], "hard link 'b'"),
    ([RawEntry.symlink("usr/lib/evil", "../../../etc")], "link 'usr/lib/evil' -> '../../../etc' points outside the environment"),
    ([RawEntry.symlink("usr/lib", "../tmp"), .file("usr/lib/x", "x")], "'usr/lib/x' goes through the symbolic link 'usr/lib'"),
    ([RawEntry.symlink("usr/lib", "/tmp")], "link 'usr/lib' -> '/tmp' has an absolute target"),
])
func hostileArchivesAreRefusedAndLeaveNothing(_ entries: [RawEntry], _ reason: String) throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let outside = dir + "/outside"
    try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
    let path = dir + "/hostile.tar.zst"
    writeRawArchive(path, entries)
    let cache = try EnvironmentCache(directory: dir + "/cache", limitBytes: 1 << 30)
    #expect(throws: EnvironmentError(archive: path, reason: reason)) { try cache.install(archive: path) }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/cache") == [".opened"])
    #expect(try FileManager.default.contentsOfDirectory(atPath: outside) == [])
}

@Test func corruptTruncatedAndForeignArchivesAreRefused() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let cache = try EnvironmentCache(directory: dir + "/cache", limitBytes: 1 << 30)
    let good = dir + "/good.tar.zst"
    writeRawArchive(good, [.file("usr/bin/tool", String(repeating: "abc", count: 20000))])
    let bytes = try #require(Posix.readFile(good))
    let truncated = dir + "/truncated.tar.zst"
    _ = Posix.writeFileAtomically(truncated, Array(bytes.prefix(bytes.count / 2)))
    #expect(throws: EnvironmentError.self) { try cache.install(archive: truncated) }
    var flipped = bytes
    flipped[bytes.count / 2] ^= 0xff
    let corrupt = dir + "/corrupt.tar.zst"
    _ = Posix.writeFileAtomically(corrupt, flipped)
    #expect(throws: EnvironmentError.self) { try cache.install(archive: corrupt) }
    let noManifest = dir + "/plain.tar.zst"
    writeRawArchive(noManifest, [.file("usr/bin/tool", "x")], manifest: false)
    #expect(throws: EnvironmentError(archive: noManifest, reason: "no .swlaunch/environment: not a swlaunch environment")) {
        try cache.install(archive: noManifest)
    }
    #expect(throws: EnvironmentError.self) { try cache.install(archive: good, expectedID: String(repeating: "0", count: 64)) }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/cache") == [".opened"])
    #expect(try cache.install(archive: good).1.files.count == 1)
}

@Test(arguments: [
    (["usr", "bin", "cc"], "/etc/alternatives/cc", true),
    (["usr", "bin", "as"], "x86_64-linux-gnu-as", true),
    (["lib64", "ld.so"], "../lib/x86_64-linux-gnu/ld.so", true),
    (["lib64", "ld.so"], "../../etc/passwd", false),
    (["a"], "..", false),
])
func linkTargetsStayInside(_ link: [String], _ target: String, _ inside: Bool) {
    #expect(EnvironmentArchive.linkStaysInside(link: link, target: target) == inside)
}

/// Inputs the archive fuzz target (scripts/fuzz.sh FuzzArchive) found, kept as regression tests: each is a tar
/// that the target compressed; unpacking must refuse it (or unpack it) without crashing.
@Test(arguments: ["fuzz-crash-archive-size-overflow.tar"])
func fuzzFindingsAreRefusedWithoutCrashing(_ name: String) throws {
    let file = #filePath
    let fixture = String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures/" + name
    let tar = try #require(Posix.readFile(fixture))
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let archive = dir + "/in.tar.zst"
    #expect(Posix.writeFileAtomically(archive, Zstd.compress(tar)) == nil)
    #expect(throws: EnvironmentError.self) { try EnvironmentArchive.unpack(archive, into: dir + "/out") }
    #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
}

/// An environment left by an earlier run is checked on its first use (files and bytes against its meta file): one
/// that lost a file is removed and fetched again; a tree whose meta file a crash never wrote is replaced on install.
@Test func environmentsFromAnEarlierRunAreCheckedOnFirstUse() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var ids: [String] = []
    for i in 0..<2 {
        writeRawArchive(dir + "/e\(i).tar.zst", [.file("usr/bin/tool", "tool \(i)"), .file("usr/lib/lib.so", String(repeating: "l", count: 100 + i))])
    }
    let earlier = try EnvironmentCache(directory: dir + "/cache", limitBytes: 1 << 30)
    for i in 0..<2 { ids.append(try earlier.install(archive: dir + "/e\(i).tar.zst").1.id) }
    try FileManager.default.removeItem(atPath: earlier.root(of: ids[1]) + "/usr/lib/lib.so")
    usleep(20_000)
    let restarted = try EnvironmentCache(directory: dir + "/cache", limitBytes: 1 << 30)
    #expect(restarted.contains(ids[0]))
    #expect(!restarted.contains(ids[1]))
    #expect(!FileManager.default.fileExists(atPath: restarted.root(of: ids[1])))
    #expect(restarted.ids() == [ids[0]])
    // A crash between moving the tree in and writing its meta file: the next install replaces the tree.
    try FileManager.default.createDirectory(atPath: restarted.root(of: ids[1]) + "/partial", withIntermediateDirectories: true)
    let (root, _) = try restarted.install(archive: dir + "/e1.tar.zst", expectedID: ids[1])
    #expect(restarted.contains(ids[1]) && !FileManager.default.fileExists(atPath: root + "/partial"))
    #expect(FileManager.default.fileExists(atPath: root + "/usr/lib/lib.so"))
}
