import Foundation
import Testing
@testable import Toolchain
#if canImport(Glibc)
import Glibc
#endif

/// A job's tree is built and read without following a symlink on the host.
@Suite struct ConfinedTreeTests {
    let base: String
    let outside: String
    let tree: ConfinedTree

    init() throws {
        base = NSTemporaryDirectory() + "confined-" + UUID().uuidString.prefix(8)
        outside = base + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "secret".write(toFile: outside + "/secret", atomically: true, encoding: .utf8)
        try "blob".write(toFile: base + "/blob", atomically: true, encoding: .utf8)
        tree = try ConfinedTree(root: base + "/root")
    }

    func outsideEntries() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: outside).sorted() }

    @Test func absoluteLinkTargetsAreRefused() throws {
        #expect(throws: TreeRefusal.self) { try tree.placeSymlink("/work/evil", target: outside) }
        #expect(!FileManager.default.fileExists(atPath: tree.root + "/work/evil"))
    }

    @Test func nothingIsCreatedThroughARelativeLinkThatLeavesTheTree() throws {
        try tree.placeSymlink("/work/evil", target: "../../outside")
        #expect(throws: TreeRefusal.self) { try tree.placeFile("/work/evil/planted", from: base + "/blob", executable: false, copy: true) }
        #expect(throws: TreeRefusal.self) { try tree.placeFile("/work/evil/linked", from: base + "/blob", executable: false, copy: false) }
        #expect(throws: TreeRefusal.self) { try tree.makeDirectories("/work/evil/dir") }
        #expect(throws: TreeRefusal.self) { try tree.placeSymlink("/work/evil/l", target: "x") }
        try tree.remove("/work/evil/secret")
        #expect(try outsideEntries() == ["secret"])
        // A link inside the tree is not followed either, even though it would stay inside.
        try tree.makeDirectories("/inside")
        try tree.placeSymlink("/alias", target: "inside")
        #expect(throws: TreeRefusal.self) { try tree.placeFile("/alias/x", from: base + "/blob", executable: false, copy: true) }
    }

    /// The tree remembers the directories it made (a file's folder is not made again for every file): a link
    /// asked for at one's name later leaves it a directory, and files still land in the tree.
    @Test func aLinkCannotTakeTheNameOfADirectoryTheTreeMade() throws {
        try tree.placeFile("/w/d/first", from: base + "/blob", executable: false, copy: false)
        try tree.placeSymlink("/w/d", target: "../../outside")
        try tree.placeFile("/w/d/second", from: base + "/blob", executable: false, copy: true)
        var info = stat()
        #expect(lstat(tree.root + "/w/d", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tree.root + "/w/d").sorted() == ["first", "second"])
        #expect(try outsideEntries() == ["secret"])
    }

    @Test func outputsAreReadWithoutFollowingLinks() throws {
        try tree.makeDirectories("/out")
        try tree.placeSymlink("/out/a.o", target: "../../../outside/secret")
        #expect(try tree.readRegularFile("/out/a.o", limit: 1 << 20) == nil)
        try tree.placeSymlink("/via", target: "out")
        try tree.placeFile("/out/b.o", from: base + "/blob", executable: false, copy: true)
        #expect(try tree.readRegularFile("/out/b.o", limit: 1 << 20) == Array("blob".utf8))
        #expect(try tree.readRegularFile("/via/b.o", limit: 1 << 20) == nil)
        #expect(throws: ResolveError.self) { try tree.readRegularFile("/out/b.o", limit: 2) }
    }

    @Test func writableDirectoriesGetCopiesAndTheRestHardLinks() throws {
        let environment = base + "/env"
        try FileManager.default.createDirectory(atPath: environment + "/usr/lib/deep/er", withIntermediateDirectories: true)
        try "cc1".write(toFile: environment + "/usr/lib/cc1", atomically: true, encoding: .utf8)
        try "h".write(toFile: environment + "/usr/lib/deep/er/h.h", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: environment + "/lib", withDestinationPath: "usr/lib")
        try tree.mirror(environment, copyUnder: ["/usr/lib/deep"])
        func inode(_ path: String) -> ino_t { var info = stat(); lstat(path, &info); return info.st_ino }
        #expect(inode(tree.root + "/usr/lib/cc1") == inode(environment + "/usr/lib/cc1"))
        #expect(inode(tree.root + "/usr/lib/deep/er/h.h") != inode(environment + "/usr/lib/deep/er/h.h"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: tree.root + "/lib") == "usr/lib")
    }
}

/// The tree's paths: absolute and normalized, split into the parent (relative to the root) and the last name.
@Test(arguments: [
    ("/a", ".", "a"), ("/usr/include/stdio.h", "usr/include", "stdio.h"), ("/a/...", "a", "..."), ("/.a/b.", ".a", "b."),
    ("/..a/a..", "..a", "a.."), ("/é/ü.h", "é", "ü.h"),
])
func treePathsSplitIntoParentAndName(_ path: String, _ parent: String, _ name: String) throws {
    let split = try ConfinedTree.split(path)
    #expect(split.parent == parent && split.name == name)
}

@Test(arguments: ["", "/", "a/b", "/a/", "//a", "/a//b", "/.", "/..", "/a/./b", "/a/../b", "/a/.", "/a/..", "/a\0b"])
func treePathsThatAreNotNormalizedAreRefused(_ path: String) {
    #expect(throws: TreeRefusal.self) { try ConfinedTree.split(path) }
}
