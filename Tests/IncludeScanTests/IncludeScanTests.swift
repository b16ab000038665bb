import Foundation
import SystemSupport
import Testing
@testable import IncludeScan

/// The include scan must find at least every file gcc reads: each test compares with gcc's own list (`-M`).
@Suite struct IncludeScanTests {
    /// A scratch folder with `files` (path: contents).
    static func tree(_ files: [String: String]) throws -> String {
        let root = NSTemporaryDirectory() + "scan-" + randomHexString(bytes: 6)
        for (path, contents) in files {
            try FileManager.default.createDirectory(atPath: root + "/" + ((path as NSString).deletingLastPathComponent), withIntermediateDirectories: true)
            try contents.write(toFile: root + "/" + path, atomically: true, encoding: .utf8)
        }
        return root
    }

    /// The files gcc reads for a compile (`-M -MF`), resolved.
    static func gccReads(_ arguments: [String], in directory: String, compiler: String = "/usr/bin/g++") throws -> Set<String> {
        let out = directory + "/.deps"
        defer { Posix.removeFile(out) }
        let previous = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(directory)
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        #expect(Spawn.run(compiler, [compiler] + arguments + ["-M", "-MF", out], stdoutPath: "/dev/null", stderrPath: "/dev/null") == 0)
        let text = String(decoding: Posix.readFile(out) ?? [], as: UTF8.self).replacingOccurrences(of: "\\\n", with: " ")
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).dropFirst().map(String.init)
        return Set(words.map { Posix.realPath($0.hasPrefix("/") ? $0 : directory + "/" + $0) ?? $0 })
    }

    /// The compiler's own system folders, as swlaunchd learns them (`-E -v`).
    static func systemFolders(_ compiler: String = "/usr/bin/g++", language: String = "c++") -> [String] {
        let out = NSTemporaryDirectory() + "scan-v-" + randomHexString(bytes: 6)
        defer { Posix.removeFile(out) }
        _ = Spawn.run(compiler, [compiler, "-E", "-v", "-x", language, "/dev/null"], stdoutPath: "/dev/null", stderrPath: out)
        var folders: [String] = [], inList = false
        for line in String(decoding: Posix.readFile(out) ?? [], as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("#include <...> search starts here:") { inList = true; continue }
            if line.hasPrefix("End of search list.") { break }
            if inList, line.hasPrefix(" ") { folders.append(String(line.drop { $0 == " " })) }
        }
        return folders
    }

    /// Scans like swlaunchd does and checks the result holds everything gcc reads.
    func expectSuperset(_ arguments: [String], source: String, in root: String, language: String = "c++",
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> Set<String> {
        let options = try IncludeOptions.parse(arguments, workingDirectory: root).get()
        let outcome = IncludeScanner().scan(source: source, preincludes: options.preincludes, implicit: ["stdc-predef.h"],
                                            searchPath: options.searchPath(compilerSystem: Self.systemFolders(language: language)), workingDirectory: root)
        guard case let .files(files) = outcome else {
            Issue.record("the scan refused: \(outcome)", sourceLocation: sourceLocation)
            return []
        }
        let scanned = Set(files.map { Posix.realPath($0) ?? $0 })
        let read = try Self.gccReads(arguments + ["-c", source], in: root)
        let missing = read.subtracting(scanned)
        #expect(missing.isEmpty, "gcc reads what the scan did not find: \(missing.sorted())", sourceLocation: sourceLocation)
        return scanned
    }

    @Test func searchOrderAndEveryKindOfFolder() throws {
        let root = try Self.tree([
            "src/main.cpp": "#include \"local.h\"\n#include <angled.h>\n#include \"quoted.h\"\n#include <sys_only.h>\n#include <late.h>\n#include \"sub/deeper.h\"\n",
            "src/local.h": "#pragma once\nint local;\n",
            "src/sub/deeper.h": "#include \"sibling.h\"\n",
            "src/sub/sibling.h": "int sibling;\n",
            "inc/angled.h": "#include \"from_angled.h\"\n",
            "inc/from_angled.h": "int from_angled;\n",
            "quote/quoted.h": "int quoted;\n",
            "sys/sys_only.h": "#include <vector>\n",
            "after/late.h": "int late;\n",
            // A second angled.h later in the search: not read by gcc, shipped all the same (superset).
            "sys/angled.h": "int shadowed;\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scanned = try expectSuperset(["-Iinc", "-iquote", "quote", "-isystem", "sys", "-idirafter", "after"], source: "src/main.cpp", in: root)
        #expect(scanned.contains(Posix.realPath(root + "/sys/angled.h")!))
        #expect(scanned.contains { $0.hasSuffix("/c++/12/vector") })
    }

    /// A scan looks a name up in the search folders once, but a quoted name in each including file's own folder.
    @Test func aQuotedNameIsFoundBesideEachFileThatIncludesIt() throws {
        let root = try Self.tree([
            "main.cpp": "#include \"a/one.h\"\n#include \"b/two.h\"\n#include <c/three.h>\n",
            "a/one.h": "#include \"common.h\"\n",
            "a/common.h": "int a_common;\n",
            "b/two.h": "#include \"common.h\"\n",
            "b/common.h": "int b_common;\n",
            "inc/c/three.h": "#include \"common.h\"\n",
            "inc/c/common.h": "int c_common;\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scanned = try expectSuperset(["-Iinc"], source: "main.cpp", in: root)
        for header in ["a/common.h", "b/common.h", "inc/c/common.h"] {
            #expect(scanned.contains(Posix.realPath(root + "/" + header)!), "\(header)")
        }
    }

    @Test func conditionalsIncludeNextAndPreincludes() throws {
        let root = try Self.tree([
            "main.c": "#if 0\n#include \"never.h\"\n#endif\n#ifdef WANT\n#include \"wanted.h\"\n#endif\n#include <wrap.h>\n#include <stdio.h>\n",
            "never.h": "int never;\n",
            "wanted.h": "int wanted;\n",
            "first/wrap.h": "#include_next <wrap.h>\n",
            "second/wrap.h": "int wrapped;\n",
            "pre.h": "#define PRE 1\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scanned = try expectSuperset(["-x", "c", "-DWANT", "-Ifirst", "-Isecond", "-include", "pre.h"], source: "main.c", in: root, language: "c")
        #expect(scanned.contains(Posix.realPath(root + "/never.h")!), "a header behind #if 0 is shipped too")
        #expect(scanned.contains(Posix.realPath(root + "/pre.h")!))
    }

    /// A translation unit of the C++ standard library's headers, against the real libstdc++ and glibc.
    @Test func theStandardLibrary() throws {
        let root = try Self.tree(["all.cpp": """
            #include <algorithm>
            #include <atomic>
            #include <chrono>
            #include <filesystem>
            #include <iostream>
            #include <map>
            #include <memory>
            #include <regex>
            #include <string>
            #include <thread>
            #include <unordered_map>
            #include <vector>
            #include <cmath>
            #include <cstdio>
            #include <sys/stat.h>
            #include <pthread.h>
            """])
        defer { try? FileManager.default.removeItem(atPath: root) }
        _ = try expectSuperset(["-O2", "-std=gnu++17"], source: "all.cpp", in: root)
    }

    /// A scan takes the searches of the scans before it (``SearchMemory``) while their folders are unchanged: it finds
    /// the same files and records the same probes as a scanner that never scanned, and a header created since in a
    /// folder searched earlier is found.
    @Test func aLaterScanTakesEarlierSearchesOnlyWhileTheirFoldersAreUnchanged() throws {
        let sources = "#include <vector>\n#include <string>\n#include <a.h>\n#include \"local.h\"\n"
        let root = try Self.tree(["one.cpp": sources, "two.cpp": sources, "local.h": "#include <sub/b.h>\n",
                                  "second/a.h": "int a;\n", "second/sub/b.h": "int b;\n", "first/.keep": ""])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = IncludeScanner.SearchPath(quote: [], angled: [root + "/first", root + "/second"] + Self.systemFolders())
        func scan(_ source: String, with scanner: IncludeScanner) -> (files: [String], probes: [String]) {
            let (outcome, probes, _, _) = scanner.scanRecordingProbes(source: source, preincludes: [], implicit: ["stdc-predef.h"],
                                                                   searchPath: path, workingDirectory: root)
            guard case let .files(files) = outcome else { Issue.record("\(outcome)"); return ([], []) }
            return (files, probes.flatMap { folder, names in names.map { "\(folder)/\($0.name) \($0.existed)" } }.sorted())
        }
        // Folders changed in the last two seconds are not trusted (nor their answers kept): wait until they are.
        sleep(3)
        let shared = IncludeScanner()
        let first = scan("one.cpp", with: shared)
        #expect(first.files.contains(root + "/second/a.h") && first.files.contains(root + "/second/sub/b.h"))
        let again = scan("two.cpp", with: shared), fresh = scan("two.cpp", with: IncludeScanner())
        #expect(again.files == fresh.files)
        #expect(again.probes == fresh.probes, "a search taken from memory records the paths it looked at")
        #expect(fresh.probes.count > 1000)
        try "int shadow;\n".write(toFile: root + "/first/a.h", atomically: false, encoding: .utf8)
        #expect(scan("two.cpp", with: shared).files.contains(root + "/first/a.h"), "a new header in a folder just changed")
        sleep(3)
        let later = scan("one.cpp", with: shared)
        #expect(later.files.contains(root + "/first/a.h"), "a new header in a folder changed since (trusted again)")
        #expect(later == scan("one.cpp", with: IncludeScanner()))
        // A memory that fills during a scan is replaced for the next one; the scan under way keeps its own.
        let small = IncludeScanner(maximumSearches: 20, maximumStrings: 200)
        #expect(scan("one.cpp", with: small) == later && scan("two.cpp", with: small) == scan("two.cpp", with: IncludeScanner()))
    }

    /// An answer made while a folder it looked in was too fresh to trust (a build folder in a build's first seconds)
    /// is checked path by path while it stays so, and once the folder is trusted, checked once more and kept under
    /// its identity: later scans take it at once.
    @Test func anAnswerFromAFolderTooFreshToTrustIsTakenAtOnceWhenItIsTrusted() throws {
        let root = try Self.tree(["main.c": "#include <a.h>\n#include <b.h>\n", "second/a.h": "int a;\n", "second/b.h": "int b;\n",
                                  "first/.keep": ""])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scanner = IncludeScanner()
        let path = IncludeScanner.SearchPath(quote: [], angled: [root + "/first", root + "/second"])
        func scan() -> [String] {
            guard case let .files(files) = scanner.scan(source: "main.c", preincludes: [], searchPath: path, workingDirectory: root) else { return [] }
            return files
        }
        let expected = [root + "/main.c", root + "/second/b.h", root + "/second/a.h"]
        #expect(Set(scan()) == Set(expected))
        #expect(scanner.pathsCheckedAgain.load(ordering: .relaxed) == 0)
        #expect(Set(scan()) == Set(expected))
        let whileFresh = scanner.pathsCheckedAgain.load(ordering: .relaxed)
        #expect(whileFresh > 0, "the folders were just made: each path asked again")
        sleep(3)
        #expect(Set(scan()) == Set(expected))
        let onceTrusted = scanner.pathsCheckedAgain.load(ordering: .relaxed)
        #expect(onceTrusted > whileFresh, "trusted now, under another status than then: asked again once")
        #expect(Set(scan()) == Set(expected))
        #expect(scanner.pathsCheckedAgain.load(ordering: .relaxed) == onceTrusted, "kept under the trusted identity: taken at once")
    }

    /// A source without a single #include still reads gcc's implicit stdc-predef.h.
    @Test func theImplicitPreinclude() throws {
        let root = try Self.tree(["bare.c": "int f(void) { return 1; }\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scanned = try expectSuperset(["-x", "c"], source: "bare.c", in: root, language: "c")
        #expect(scanned.contains { $0.hasSuffix("/stdc-predef.h") })
    }

    @Test func whatTextCannotSettleIsRefused() throws {
        let root = try Self.tree([
            "computed.cpp": "#define HEADER <vector>\n#include HEADER\n",
            "pch.cpp": "#include \"big.h\"\n",
            "big.h": "int big;\n",
            "big.h.gch": "not really a precompiled header",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scanner = IncludeScanner()
        let path = IncludeScanner.SearchPath(quote: [], angled: [])
        #expect(scanner.scan(source: "computed.cpp", preincludes: [], searchPath: path, workingDirectory: root)
                == .cannot("computed #include at \(root)/computed.cpp:2"))
        #expect(scanner.scan(source: "pch.cpp", preincludes: [], searchPath: path, workingDirectory: root)
                == .cannot("precompiled header beside \(root)/big.h"))
        // Found first as an -include, then by an #include: still asked for its .gch.
        #expect(scanner.scan(source: "pch.cpp", preincludes: ["big.h"], searchPath: path, workingDirectory: root)
                == .cannot("precompiled header beside \(root)/big.h"))
        for refused in [["-I-"], ["-iprefix", "/x"], ["-I=/usr/include"], ["-isysroot", "/x"], ["-fmodules-ts"], ["-B/opt/gcc/"],
                        ["-specs=x.specs"], ["-imultiarch", "x86_64-linux-gnu"]] {
            #expect(throws: IncludeOptionError.self) { try IncludeOptions.parse(refused, workingDirectory: root).get() }
        }
    }

    @Test func directivesAsThePreprocessorSeesThem() {
        func names(_ text: String) -> [String]? {
            guard case let .known(list) = IncludeScanner.parse(Array(text.utf8)) else { return nil }
            return list.map { ($0.next ? "next:" : "") + ($0.quoted ? "\"\($0.name)\"" : "<\($0.name)>") }
        }
        #expect(names("#include <a.h>\n  #  include \"b.h\"\n#import <c.h>\n#include_next <d.h>\n")
                == ["<a.h>", "\"b.h\"", "<c.h>", "next:<d.h>"])
        // Comments and backslash-newlines between # and the name, digraphs, a directive after a comment's end.
        #expect(names("# /* c */ include <a.h>\n#\\\ninclude <b.h>\n%:include <c.h>\n/* long\n comment */ #include <d.h>\n")
                == ["<a.h>", "<b.h>", "<c.h>", "<d.h>"])
        // Comments and literals hide what looks like a directive; prose about #include at a comment's line start
        // is not a computed include; a raw string with quotes and comment marks inside ends where it ends.
        #expect(names("// see #include <e.h>\nconst char *s = \"#include <f.h>\"; /*\n   #include_next through\n */\nint x = 1'000;\n#include <g.h>\n")
                == ["<g.h>"])
        #expect(names("auto r = R\"x(a\"b/*)x\";\n#include <h.h>\nchar c = '\"'; char d = '\\'';\n#include <i.h>\n") == ["<h.h>", "<i.h>"])
        // A computed include at the start of a line, even after a comment.
        guard case .computed(line: 3) = IncludeScanner.parse(Array("int a;\n\n#include FOO\n".utf8)) else {
            Issue.record("computed include not seen"); return
        }
        guard case .computed(line: 2) = IncludeScanner.parse(Array("/* x\n */ #include BAR(x)\n".utf8)) else {
            Issue.record("computed include after a comment not seen"); return
        }
    }

    /// The directives of a file are read once per identity: an edited file is read again.
    @Test func directivesAreKeptByIdentity() throws {
        let root = try Self.tree(["a.h": "#include <one.h>\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let scanner = IncludeScanner()
        guard case let .known(first)? = scanner.directives(of: root + "/a.h") else { Issue.record("unreadable"); return }
        #expect(first.map(\.name) == ["one.h"])
        try "#include <one.h>\n#include <two.h>\n".write(toFile: root + "/a.h", atomically: true, encoding: .utf8)
        guard case let .known(second)? = scanner.directives(of: root + "/a.h") else { Issue.record("unreadable"); return }
        #expect(second.map(\.name) == ["one.h", "two.h"])
    }
}
