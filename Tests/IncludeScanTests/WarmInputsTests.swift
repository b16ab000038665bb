import Foundation
import SystemSupport
import Testing
@testable import IncludeScan

/// A warm tree is not scanned again, and every change that could change what a compile reads is seen: each test
/// scans, remembers, changes one thing, and expects the remembered list to be refused (and a new scan to differ
/// where it should).
@Suite struct WarmInputsTests {
    struct Fixture {
        let root: String
        let scanner = IncludeScanner()
        let warm: WarmInputs
        let searchPath: IncludeScanner.SearchPath

        init(_ files: [String: String], folders: [String] = ["first", "second"]) throws {
            let root = try IncludeScanTests.tree(files)
            for folder in folders { try FileManager.default.createDirectory(atPath: root + "/" + folder, withIntermediateDirectories: true) }
            self.root = root
            warm = WarmInputs(directory: root + "/.warm")
            searchPath = IncludeScanner.SearchPath(quote: [], angled: folders.map { root + "/" + $0 })
        }

        var key: WarmInputs.Key { WarmInputs.Key(source: root + "/main.c", preincludes: [], implicit: [], searchPath: searchPath) }

        /// Scans main.c and remembers the result; the files found.
        @discardableResult
        func scan() -> [String] {
            scan(between: {})
        }

        /// ``scan()``, running `change` after the scan and before the result is remembered.
        @discardableResult
        func scan(between change: () throws -> Void) rethrows -> [String] {
            let (outcome, probes, read, sightings) = scanner.scanRecordingProbes(source: "main.c", preincludes: [], searchPath: searchPath,
                                                                                workingDirectory: root)
            guard case let .files(files) = outcome else { Issue.record("\(outcome)"); return [] }
            try change()
            warm.remember(key, files: files, probes: probes, read: read, sightings: sightings)
            return files
        }

        func write(_ path: String, _ text: String) throws {
            try FileManager.default.createDirectory(atPath: ((root + "/" + path) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: root + "/" + path, atomically: true, encoding: .utf8)
        }
    }

    @Test func anUnchangedTreeIsNotScannedAgainEvenAfterARestart() throws {
        let tree = try Fixture(["main.c": "#include <a.h>\n#include \"local.h\"\n", "second/a.h": "#include <sub/b.h>\n",
                                "second/sub/b.h": "int b;\n", "local.h": "int l;\n"])
        let files = tree.scan()
        #expect(Set(files) == Set(["main.c", "second/a.h", "second/sub/b.h", "local.h"].map { tree.root + "/" + $0 }))
        #expect(tree.warm.files(for: tree.key) == files)
        // A new daemon (the same state folder): the list is read back from its file.
        let restarted = WarmInputs(directory: tree.root + "/.warm")
        #expect(restarted.files(for: tree.key) == files)
        // Another key (another search path) has no entry.
        let other = WarmInputs.Key(source: tree.root + "/main.c", preincludes: [], implicit: [],
                                   searchPath: .init(quote: [], angled: [tree.root + "/second"]))
        #expect(restarted.files(for: other) == nil)
    }

    @Test func aNewHeaderThatShadowsAnOldOneInAnEarlierFolder() throws {
        let tree = try Fixture(["main.c": "#include <a.h>\n", "second/a.h": "int a;\n"])
        tree.scan()
        try tree.write("first/a.h", "int shadow;\n")
        #expect(tree.warm.files(for: tree.key) == nil)
    }

    /// A folder is remembered as the scan saw it before looking in it: a header created there while the scan's
    /// result was on its way to being remembered (a build step generating headers beside the compile) is seen.
    @Test func aHeaderCreatedBetweenTheScanAndItsRememberingIsSeen() throws {
        let tree = try Fixture(["main.c": "#include <a.h>\n", "second/a.h": "int a;\n"])
        let files = try tree.scan(between: {
            // Past the file-time clock's tick, so that the folder's times move.
            usleep(20_000)
            try tree.write("first/a.h", "int shadow;\n")
        })
        #expect(files == [tree.root + "/main.c", tree.root + "/second/a.h"])
        #expect(tree.warm.files(for: tree.key) == nil)
        #expect(tree.scan().contains(tree.root + "/first/a.h"))
        #expect(tree.scan().contains(tree.root + "/first/a.h"))
    }

    @Test func aNewHeaderInAFolderThatDidNotExist() throws {
        // <sub/b.h> is looked for in first/sub, which does not exist yet.
        let tree = try Fixture(["main.c": "#include <sub/b.h>\n", "second/sub/b.h": "int b;\n"])
        tree.scan()
        // The missing folder is checked, and the names looked for there are not kept.
        let text = try #require(Posix.readFile(tree.root + "/.warm/" + tree.key.fileName))
        let entry = try #require(WarmInputs.decode(String(decoding: text, as: UTF8.self), key: tree.key))
        #expect(entry.checks.contains { $0.path == tree.root + "/first/sub" && $0.identity == nil })
        #expect(entry.probes[tree.root + "/first/sub"] == nil && entry.probes[tree.root + "/second/sub"] != nil)
        try tree.write("first/sub/b.h", "int shadow;\n")
        #expect(tree.warm.files(for: tree.key) == nil)
        #expect(tree.scan().contains(tree.root + "/first/sub/b.h"))
    }

    @Test func aFileInPlaceOfASearchedFolderReplacedByAFolder() throws {
        // <sub/b.h> is looked for in first/sub, a regular file at first: then a folder with b.h takes its place.
        let tree = try Fixture(["main.c": "#include <sub/b.h>\n", "first/sub": "not a folder\n", "second/sub/b.h": "int b;\n"])
        #expect(tree.scan() == [tree.root + "/main.c", tree.root + "/second/sub/b.h"])
        try FileManager.default.removeItem(atPath: tree.root + "/first/sub")
        try tree.write("first/sub/b.h", "int shadow;\n")
        #expect(tree.warm.files(for: tree.key) == nil)
        #expect(tree.scan().contains(tree.root + "/first/sub/b.h"))
    }

    @Test func anEditedInclude() throws {
        let tree = try Fixture(["main.c": "#include <a.h>\n", "second/a.h": "int a;\n", "second/c.h": "int c;\n"])
        tree.scan()
        // Rewritten in place (same inode): size and times change.
        try "#include <a.h>\n#include <c.h>\n".write(toFile: tree.root + "/main.c", atomically: false, encoding: .utf8)
        #expect(tree.warm.files(for: tree.key) == nil)
        #expect(tree.scan().contains(tree.root + "/second/c.h"))
    }

    @Test func anEditKeepingTheSizeAndTheModificationTime() throws {
        let tree = try Fixture(["main.c": "#include <a.h>\n", "second/a.h": "int a;\n", "second/b.h": "int b;\n"])
        tree.scan()
        let path = tree.root + "/main.c"
        var before = stat()
        stat(path, &before)
        try "#include <b.h>\n".write(toFile: path, atomically: false, encoding: .utf8)
        // The old modification time put back (as `touch -r` or a careless tool would): the change time still moves.
        var times = [before.st_atim, before.st_mtim]
        utimensat(AT_FDCWD, path, &times, 0)
        #expect(tree.warm.files(for: tree.key) == nil)
    }

    /// The edit-compile loop: a source edited without touching its `#include` lines keeps its entry; an edit of an
    /// `#include` line does not.
    @Test func aSourceEditedBelowItsIncludesStaysWarm() throws {
        let tree = try Fixture(["main.c": "#include <a.h>\nint f(void) { return 1; }\n", "second/a.h": "int a;\n", "second/b.h": "int b;\n"])
        let (outcome, probes, read, sightings) = tree.scanner.scanRecordingProbes(source: "main.c", preincludes: [], searchPath: tree.searchPath,
                                                                                 workingDirectory: tree.root)
        guard case let .files(files) = outcome else { Issue.record("\(outcome)"); return }
        tree.warm.remember(tree.key, files: files, probes: probes, read: read, sightings: sightings, sourceDirectives: tree.scanner.directiveFingerprint(of: tree.root + "/main.c"))
        try "#include <a.h>\nint f(void) { return 2; } // edited\n".write(toFile: tree.root + "/main.c", atomically: true, encoding: .utf8)
        #expect(tree.warm.files(for: tree.key, directives: tree.scanner.directiveFingerprint(of:)) == files)
        #expect(tree.warm.files(for: tree.key) == nil, "without the fingerprint, any edit means a scan")
        try "#include <b.h>\nint f(void) { return 2; }\n".write(toFile: tree.root + "/main.c", atomically: true, encoding: .utf8)
        #expect(tree.warm.files(for: tree.key, directives: tree.scanner.directiveFingerprint(of:)) == nil)
    }

    @Test func aMacroThatSelectsAnotherHeader() throws {
        // The scan takes both branches: whichever the macro selects is in the list, and a change to the header
        // that defines it is a change of a listed file.
        let tree = try Fixture(["main.c": "#include <config.h>\n#if USE_FAST\n#include <fast.h>\n#else\n#include <slow.h>\n#endif\n",
                                "second/config.h": "#define USE_FAST 0\n", "second/fast.h": "int f;\n", "second/slow.h": "int s;\n"])
        let files = tree.scan()
        #expect(files.contains(tree.root + "/second/fast.h") && files.contains(tree.root + "/second/slow.h"))
        try tree.write("second/config.h", "#define USE_FAST 1\n")
        #expect(tree.warm.files(for: tree.key) == nil)
    }

    @Test func aHasIncludeProbeOfAHeaderThatAppears() throws {
        // A probe reads no file, but it looks in the folders: a header created there changes a searched folder.
        let tree = try Fixture(["main.c": "#include <a.h>\n", "second/a.h": "#if __has_include(<opt.h>)\n#include <opt.h>\n#endif\n"])
        tree.scan()
        try tree.write("first/opt.h", "int opt;\n")
        #expect(tree.warm.files(for: tree.key) == nil)
        #expect(tree.scan().contains(tree.root + "/first/opt.h"))
    }

    @Test func aHeaderSavedByRenamingKeepsTheOtherCompilesWarm() throws {
        // Editors save by writing a new file and renaming it over the old one: the folder's times change, its
        // listing does not, so a compile that searched the folder without reading that header stays warm.
        let tree = try Fixture(["main.c": "#include <a.h>\n", "second/a.h": "int a;\n", "second/other.h": "int o;\n"])
        tree.scan()
        try "int o2;\n".write(toFile: tree.root + "/second/other.h", atomically: true, encoding: .utf8)
        #expect(tree.warm.files(for: tree.key) != nil)
        #expect(WarmInputs(directory: tree.root + "/.warm").files(for: tree.key) != nil, "also read back from its file")
    }

    @Test func aRemovedOrReplacedHeader() throws {
        let tree = try Fixture(["main.c": "#include <a.h>\n", "second/a.h": "int a;\n"])
        tree.scan()
        // Replaced by rename, as editors save: a new inode.
        try "int a2;\n".write(toFile: tree.root + "/second/a.h", atomically: true, encoding: .utf8)
        #expect(tree.warm.files(for: tree.key) == nil)
        tree.scan()
        try FileManager.default.removeItem(atPath: tree.root + "/second/a.h")
        #expect(tree.warm.files(for: tree.key) == nil)
    }

    /// A build folder with a generated header (`-I build`, the compile's working folder): the same sources built
    /// in a new build folder are warm when the generated header is the same, and not when it differs.
    @Test func aNewBuildFolderWithTheSameGeneratedHeaderIsWarm() throws {
        let root = try IncludeScanTests.tree(["src/main.c": "#include <export.h>\n#include <lib.h>\n", "include/lib.h": "int l;\n",
                                               "build-a/export.h": "#define API\n", "build-b/export.h": "#define API\n",
                                               "build-c/export.h": "#define API __attribute__((visibility(\"default\")))\n"])
        let warm = WarmInputs(directory: root + "/.warm")
        let scanner = IncludeScanner()
        func key(_ build: String) -> WarmInputs.Key {
            WarmInputs.Key(source: root + "/src/main.c", preincludes: [], implicit: [],
                           searchPath: .init(quote: [], angled: [root + "/" + build, root + "/include"]), workingDirectory: root + "/" + build)
        }
        let (outcome, probes, read, sightings) = scanner.scanRecordingProbes(source: root + "/src/main.c", preincludes: [],
                                                              searchPath: .init(quote: [], angled: [root + "/build-a", root + "/include"]),
                                                              workingDirectory: root + "/build-a")
        guard case let .files(files) = outcome else { Issue.record("\(outcome)"); return }
        warm.remember(key("build-a"), files: files, probes: probes, read: read, sightings: sightings)
        #expect(key("build-a") == key("build-b"), "the key does not name the build folder")
        #expect(warm.files(for: key("build-b")) == [root + "/src/main.c", root + "/build-b/export.h", root + "/include/lib.h"])
        #expect(WarmInputs(directory: root + "/.warm").files(for: key("build-b"))?.contains(root + "/build-b/export.h") == true)
        #expect(warm.files(for: key("build-c")) == nil, "another generated header is another compile")
        try FileManager.default.removeItem(atPath: root + "/build-b/export.h")
        #expect(warm.files(for: key("build-b")) == nil)
    }

    @Test func numbersAreWrittenAsStringSpellsThem() {
        let values: [Int64] = [0, 1, -1, 9, 10, 15, 16, 255, 1_700_000_000_123_456_789, -5, .max, .min]
        for radix in [10, 16] {
            for value in values {
                var out: [UInt8] = [UInt8(ascii: "x")]
                WarmInputs.appendDigits(of: value, radix: radix, to: &out)
                #expect(String(decoding: out, as: UTF8.self) == "x" + String(value, radix: radix), "\(value) radix \(radix)")
            }
            var out: [UInt8] = []
            WarmInputs.appendDigits(of: UInt64.max, radix: radix, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == String(UInt64.max, radix: radix))
        }
    }

    @Test func anEntryReadsBackAsWritten() throws {
        let key = WarmInputs.Key(source: "/w/src/a.c", preincludes: [], implicit: [], searchPath: .init(quote: [], angled: ["/usr/include"]),
                                 workingDirectory: "/w/build")
        let entry = WarmInputs.Entry(
            files: ["/w/src/a.c", "./gen.h"],
            checks: [("/w/src/a.c", .init(inode: 12, size: 300, modified: 1_700_000_000_123_456_789, changed: -5)),
                     ("./gen.h", .init(inode: 7, size: 0, modified: 1, changed: 2, content: 0xdead_beef_0123_4567)),
                     ("/usr/include", nil)],
            probes: ["/": [("top.h", false)], ".": [("gen.h", true), ("gen.h.gch", false)], "/usr/include": [("stdio.h", true)]],
            sourceDirectives: UInt64.max)
        let text = String(decoding: WarmInputs.encode(key, entry), as: UTF8.self)
        #expect(text.contains("in /\n- top.h\n") && text.contains("in /usr/include\n+ stdio.h\n") && text.contains("check 7 0 1 2 Cdeadbeef01234567 ./gen.h\n"))
        #expect(WarmInputs.decode(text, key: key) == entry, "\(text)")
        // The form of earlier versions (a path per probe) reads as the same entry.
        var old = text
        for (folder, lines) in [("/", "in /\n- top.h\n"), (".", "in .\n"), ("/usr/include", "in /usr/include\n+ stdio.h\n")] {
            _ = folder
            old = old.replacingOccurrences(of: lines, with: "")
        }
        old = old.replacingOccurrences(of: "+ gen.h\n", with: "").replacingOccurrences(of: "- gen.h.gch\n", with: "")
            .replacingOccurrences(of: "- gen.h.gch\n", with: "").replacingOccurrences(of: "end\n", with:
                "probe - /top.h\nprobe + ./gen.h\nprobe - ./gen.h.gch\nprobe + /usr/include/stdio.h\nend\n")
        #expect(!old.contains("\nin ") && WarmInputs.decode(old, key: key) == entry, "\(old)")
        #expect(WarmInputs.decode(text.replacingOccurrences(of: "in /usr/include\n", with: ""), key: key) != entry)
    }

    @Test func theFolderKeepsAtMostItsBoundOfEntryFiles() throws {
        let root = try IncludeScanTests.tree(["main.c": "int main;\n"])
        let warm = WarmInputs(directory: root + "/.warm", maximumFiles: 8)
        for i in 0..<9 {
            let key = WarmInputs.Key(source: root + "/main.c", preincludes: ["/nowhere/\(i).h"], implicit: [], searchPath: .init(quote: [], angled: []),
                                     workingDirectory: root)
            warm.remember(key, files: [root + "/main.c"], probes: [:])
        }
        // Checked after each quarter of the bound written (two files): at most a quarter over it between checks.
        let left = try FileManager.default.contentsOfDirectory(atPath: root + "/.warm").filter { !$0.hasPrefix(".") }
        #expect(left.count == 9, "\(left.count) entry files")
        warm.remember(WarmInputs.Key(source: root + "/main.c", preincludes: ["/nowhere/last.h"], implicit: [], searchPath: .init(quote: [], angled: []),
                                     workingDirectory: root), files: [root + "/main.c"], probes: [:])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/.warm").filter { !$0.hasPrefix(".") }.count == 6,
                "10 files, over the bound of 8: trimmed to three quarters of it")
        _ = WarmInputs(directory: root + "/.warm", maximumFiles: 4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/.warm").filter { !$0.hasPrefix(".") }.count == 3,
                "a start trims to three quarters of the bound")
    }

    @Test func aDamagedOrForeignEntryFileIsIgnored() throws {
        let tree = try Fixture(["main.c": "int main;\n"])
        tree.scan()
        let entries = try FileManager.default.contentsOfDirectory(atPath: tree.root + "/.warm")
        #expect(entries.count == 1)
        let file = tree.root + "/.warm/" + entries[0]
        let text = String(decoding: Posix.readFile(file) ?? [], as: UTF8.self)
        #expect(WarmInputs.decode(text, key: tree.key) != nil)
        for damaged in [String(text.prefix(text.count / 2)) + "check x y\n", text.replacingOccurrences(of: "source ", with: "source /elsewhere"), "--\n"] {
            try damaged.write(toFile: file, atomically: true, encoding: .utf8)
            #expect(WarmInputs(directory: tree.root + "/.warm").files(for: tree.key) == nil, "\(damaged)")
        }
    }
}

/// The scan's folder cache: a folder's entries are reused while it is unchanged (and not just changed), and a file
/// created there is seen at once.
@Suite struct FolderCacheTests {
    @Test func aHeaderCreatedInACachedFolderIsSeen() throws {
        let root = try IncludeScanTests.tree(["main.c": "#include <a.h>\n", "second/a.h": "int a;\n"])
        try FileManager.default.createDirectory(atPath: root + "/first", withIntermediateDirectories: true)
        let scanner = IncludeScanner()
        let path = IncludeScanner.SearchPath(quote: [], angled: [root + "/first", root + "/second"])
        func scan() -> [String] {
            guard case let .files(files) = scanner.scan(source: "main.c", preincludes: [], searchPath: path, workingDirectory: root) else { return [] }
            return files
        }
        // Folders changed in the last two seconds are not trusted: wait until they are, then fill the cache.
        sleep(3)
        #expect(scan() == [root + "/main.c", root + "/second/a.h"])
        #expect(scan() == [root + "/main.c", root + "/second/a.h"])
        try "int shadow;\n".write(toFile: root + "/first/a.h", atomically: false, encoding: .utf8)
        #expect(scan().contains(root + "/first/a.h"), "a new header in a cached folder")
        try FileManager.default.removeItem(atPath: root + "/second/a.h")
        #expect(!scan().contains(root + "/second/a.h"), "a removed header")
    }

    @Test func aFolderIsTrustedOnlyWhenItHasNotJustChanged() {
        let now = Posix.wallSeconds()
        switch FolderCache.Lookup.status(of: "/usr/include", now: now) {
        case .trusted: break
        default: Issue.record("/usr/include, unchanged for long, is trusted")
        }
        switch FolderCache.Lookup.status(of: "/usr/include", now: 0) {
        case .untrusted: break
        default: Issue.record("a folder changed 'after now' is not trusted")
        }
        switch FolderCache.Lookup.status(of: "/no/such/folder", now: now) {
        case .missing: break
        default: Issue.record("a missing folder holds nothing")
        }
    }
}
