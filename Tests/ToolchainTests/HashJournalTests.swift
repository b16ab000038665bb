import Foundation
import SystemSupport
import Testing
@testable import Toolchain

@Suite struct HashJournalTests {
    func digestOf(_ text: String) -> String { FileResolver.digest(Array(text.utf8)) }

    @Test func aRestartedResolverKnowsTheHashesAndAnEditedFileIsHashedAgain() throws {
        let dir = try scratchDirectory()
        let file = dir + "/header.h", other = dir + "/other.h", journalPath = dir + "/file-hashes"
        try "int a;\n".write(toFile: file, atomically: false, encoding: .utf8)
        try "int b;\n".write(toFile: other, atomically: false, encoding: .utf8)
        do {
            let resolver = FileResolver(journal: HashJournal(path: journalPath, settledSeconds: 0))
            #expect(try resolver.hash(file).0 == digestOf("int a;\n"))
            #expect(try resolver.hash(other).0 == digestOf("int b;\n"))
        }
        // The restarted daemon's resolver serves the contents of a hash it never computed itself.
        #expect(HashJournal(path: journalPath, settledSeconds: 0).takeLoaded().map(\.path) == [file, other])
        let journal = HashJournal(path: journalPath, settledSeconds: 0)
        let restarted = FileResolver(journal: journal)
        #expect(journal.takeLoaded().isEmpty, "taken by the resolver")
        #expect(restarted.contents(ofHash: digestOf("int a;\n")) == Array("int a;\n".utf8))
        #expect(try restarted.hash(file).0 == digestOf("int a;\n"))
        // Same size, new contents: the change time differs, so the journal's hash does not hold.
        try "int c;\n".write(toFile: file, atomically: false, encoding: .utf8)
        // (Within one clock tick of the first write the times could be equal; a real edit is seconds later.)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: file)
        #expect(try restarted.hash(file).0 == digestOf("int c;\n"))
        // The newest line per path is what a third start keeps.
        let third = HashJournal(path: journalPath, settledSeconds: 0)
        let kept = third.takeLoaded()
        #expect(kept.count == 2 && kept.first { $0.path == file }?.digest == digestOf("int c;\n"))
    }

    @Test func aFileChangedJustBeforeItWasReadIsNotWritten() throws {
        let dir = try scratchDirectory()
        let file = dir + "/fresh.h", journalPath = dir + "/file-hashes"
        try "int fresh;\n".write(toFile: file, atomically: false, encoding: .utf8)
        let resolver = FileResolver(journal: HashJournal(path: journalPath))
        #expect(try resolver.hash(file).0 == digestOf("int fresh;\n"))
        #expect(HashJournal(path: journalPath).takeLoaded().isEmpty, "a file changed within the last 2 s could change again unseen")
    }

    @Test func aLineCutShortAndAForeignFileAreDropped() throws {
        let dir = try scratchDirectory()
        let journalPath = dir + "/file-hashes"
        let digest = String(repeating: "ab", count: 32)
        let good = "\(digest) 1 2 3 4 5 /usr/include/stdio.h\n"
        try ("swlaunch file hashes 1\n" + good + "\(digest) 1 2 3 4").write(toFile: journalPath, atomically: false, encoding: .utf8)
        let journal = HashJournal(path: journalPath)
        let loaded = journal.takeLoaded()
        #expect(loaded.count == 1 && loaded[0].path == "/usr/include/stdio.h" && loaded[0].identity.changed == 5)
        #expect(Posix.readFile(journalPath) == Array(("swlaunch file hashes 1\n" + good).utf8), "compacted without the damaged line")
        try "something else\n\(good)".write(toFile: journalPath, atomically: false, encoding: .utf8)
        #expect(HashJournal(path: journalPath).takeLoaded().isEmpty)
        let bounded = dir + "/bounded"
        try ("swlaunch file hashes 1\n" + (1...10).map { "\(digest) 1 \($0) 3 4 5 /f\($0)\n" }.joined()).write(toFile: bounded, atomically: false, encoding: .utf8)
        #expect(HashJournal(path: bounded, maximumEntries: 4).takeLoaded().map(\.path) == ["/f7", "/f8", "/f9", "/f10"])
    }
}

@Suite struct KnownFileTests {
    /// `tree` takes a file unchanged since it was hashed from its `lstat` alone; what it hands out must still be
    /// what a full open would: the current contents' digest, and nothing the caller could not read.
    @Test func anUnchangedFileIsTakenFromItsStatAndNothingElseIs() throws {
        let dir = try scratchDirectory()
        chmod(dir, 0o755)
        let file = dir + "/known.h"
        try "int k;\n".write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o644)
        let resolver = FileResolver()
        let stranger = Caller(uid: 4242, gid: 4242, groups: [4242])
        func digest(as caller: Caller?) throws -> String? { try resolver.tree(files: [file], directories: [], in: dir, as: caller).files.first?.hash }
        #expect(try digest(as: nil) == FileResolver.digest(Array("int k;\n".utf8)))
        #expect(try digest(as: stranger) == FileResolver.digest(Array("int k;\n".utf8)), "readable by all: served from what is known")
        // Known to the resolver from root's job, but not readable by the stranger: refused.
        let secret = dir + "/secret.h"
        try "int s;\n".write(toFile: secret, atomically: false, encoding: .utf8)
        chmod(secret, 0o600)
        #expect(try resolver.tree(files: [secret], directories: [], in: dir, as: nil).files.first?.hash == FileResolver.digest(Array("int s;\n".utf8)))
        #expect(throws: AccessDenied.self) { try resolver.tree(files: [secret], directories: [], in: dir, as: stranger) }
        // Edited: hashed again, whoever asks.
        chmod(file, 0o644)
        try "int j;\n".write(toFile: file, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: file)
        #expect(try digest(as: stranger) == FileResolver.digest(Array("int j;\n".utf8)))
        // A folder on the way the stranger cannot search: refused before the file is looked at.
        chmod(dir, 0o700)
        #expect(throws: AccessDenied.self) { try digest(as: stranger) }
        chmod(dir, 0o755)
    }
}

@Suite struct ToolchainMemoryTests {
    /// A restarted daemon takes a compiler's files from its memory while the programs and the loader's cache are
    /// unchanged, and asks the driver and ldd again when one differs.
    @Test func aRememberedCompilerIsNotAskedAgainUntilAProgramChanges() throws {
        let dir = try scratchDirectory()
        let memoryPath = dir + "/toolchains", gcc = "/usr/bin/gcc"
        let first = try ToolchainRegistry(resolver: FileResolver(), platform: "x86_64-linux", memoryPath: memoryPath).native(compiler: gcc)
        let memory = ToolchainMemory(path: memoryPath)
        let entry = try #require(memory.read().first)
        #expect(entry.compiler == gcc && entry.files.count >= 4 && entry.stamps.contains { $0.path == "/etc/ld.so.cache" })
        #expect(try ToolchainRegistry(resolver: FileResolver(), platform: "x86_64-linux", memoryPath: memoryPath).native(compiler: gcc).id == first.id)

        // Proof that the memory is what answers: an entry listing only the driver is taken as it is.
        func write(_ entry: ToolchainMemory.Entry) { memory.write([entry]) }
        write(ToolchainMemory.Entry(compiler: gcc, stamps: entry.stamps, files: [gcc]))
        let short = try ToolchainRegistry(resolver: FileResolver(), platform: "x86_64-linux", memoryPath: memoryPath).native(compiler: gcc)
        #expect(short.files.count == 1)
        // A program whose identity is not the one remembered: found again, whole.
        var stale = entry.stamps
        stale[stale.count - 2].identity = HashJournal.Identity(dev: 1, ino: 2, size: 3, modified: 4, changed: 5)
        write(ToolchainMemory.Entry(compiler: gcc, stamps: stale, files: [gcc]))
        #expect(try ToolchainRegistry(resolver: FileResolver(), platform: "x86_64-linux", memoryPath: memoryPath).native(compiler: gcc).id == first.id)
        #expect(ToolchainMemory(path: memoryPath).read().first?.files == entry.files, "rewritten from what was found")
        // A damaged file is no memory at all.
        try "swlaunch toolchains 1\ncompiler \(gcc)\nstamp x\n".write(toFile: memoryPath, atomically: true, encoding: .utf8)
        #expect(ToolchainMemory(path: memoryPath).read().isEmpty)
    }
}

/// FolderHandles answers as `stat` and `lstat` do, each path's lstat taken once in a pass.
@Test func folderHandlesAnswerAsStatAndLstatDo() throws {
    let base = NSTemporaryDirectory() + "handles-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: base + "/d", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: base) }
    try "x".write(toFile: base + "/d/f", atomically: false, encoding: .utf8)
    symlink("f", base + "/d/l")
    var direct = stat()
    stat(base + "/d/f", &direct)
    let handles = FolderHandles()
    #expect(handles.lookUp(base + "/d/f")?.st_ino == direct.st_ino)
    #expect(handles.lookUp(base + "/d/l", followLinks: false).map { ($0.st_mode & S_IFMT) == S_IFLNK } == true)
    #expect(handles.lookUp(base + "/d/l")?.st_ino == direct.st_ino, "a link followed after its lstat was kept")
    #expect(handles.lookUp(base + "/d/l", followLinks: false).map { ($0.st_mode & S_IFMT) == S_IFLNK } == true)
    #expect(handles.lookUp(base + "/d").map { ($0.st_mode & S_IFMT) == S_IFDIR } == true)
    #expect(handles.lookUp(base + "/d/missing") == nil && errno == ENOENT)
    #expect(handles.lookUp(base + "/nofolder/f") == nil)
    // Within the pass a path's first answer stands (the pass is one compile's few milliseconds).
    unlink(base + "/d/f")
    #expect(handles.lookUp(base + "/d/f")?.st_ino == direct.st_ino)
    #expect(FolderHandles().lookUp(base + "/d/f") == nil)
}

/// A name asked in a folder answers as `stat` of the path they make (links followed), and is not kept for the pass.
@Test func folderHandlesAnswerANameInAFolderAsStatDoes() throws {
    let base = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: base) }
    try FileManager.default.createDirectory(atPath: base + "/d/sub", withIntermediateDirectories: true)
    try "x".write(toFile: base + "/d/f", atomically: false, encoding: .utf8)
    symlink("f", base + "/d/l")
    symlink("nowhere", base + "/d/dangling")
    var direct = stat()
    stat(base + "/d/f", &direct)
    let handles = FolderHandles()
    #expect(handles.lookUp("f", in: base + "/d")?.st_ino == direct.st_ino)
    #expect(handles.lookUp("l", in: base + "/d")?.st_ino == direct.st_ino, "a link is followed")
    #expect(handles.lookUp("dangling", in: base + "/d") == nil && errno == ENOENT)
    #expect(handles.lookUp("missing", in: base + "/d") == nil && errno == ENOENT)
    #expect(handles.lookUp("sub", in: base + "/d").map { ($0.st_mode & S_IFMT) == S_IFDIR } == true)
    #expect(handles.lookUp("f", in: base + "/nofolder") == nil && errno == ENOENT, "a folder that cannot be opened: the path is stat'ed")
    #expect(handles.lookUp("f", in: base + "/d/f") == nil && errno == ENOTDIR)
    #expect(handles.lookUp("tmp", in: "/").map { ($0.st_mode & S_IFMT) == S_IFDIR } == true)
    // Not kept: asked again after a change, the name answers anew.
    unlink(base + "/d/f")
    #expect(handles.lookUp("f", in: base + "/d") == nil)
}

/// A compiler path whose links are pointed at another compiler (`update-alternatives` switching `c++`) gets the
/// other compiler's toolchain from the same registry: the link named is unchanged, the file at the end is not.
@Test func aCompilerLinkPointedElsewhereIsPackedAgain() throws {
    let dir = try scratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    symlink(dir + "/alternative", dir + "/c++")
    symlink("/usr/bin/x86_64-linux-gnu-g++-12", dir + "/alternative")
    let registry = ToolchainRegistry(resolver: FileResolver(), platform: "x86_64-linux")
    let first = try registry.native(compiler: dir + "/c++")
    #expect(first.files.contains { $0.path == "/usr/bin/x86_64-linux-gnu-g++-12" })
    #expect(try registry.native(compiler: dir + "/c++").id == first.id, "unchanged: the same toolchain")
    // The alternative switched, as update-alternatives does it (a new link renamed over the old one).
    symlink("/usr/bin/x86_64-linux-gnu-gcc-12", dir + "/alternative.new")
    rename(dir + "/alternative.new", dir + "/alternative")
    let second = try registry.native(compiler: dir + "/c++")
    #expect(second.id != first.id)
    #expect(second.files.contains { $0.path == "/usr/bin/x86_64-linux-gnu-gcc-12" })
    #expect(!second.files.contains { $0.path == "/usr/bin/x86_64-linux-gnu-g++-12" })
}
