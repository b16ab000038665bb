import Synchronization
import SystemSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Finds the files a compile may read through `#include`, without running the compiler: every `#include`,
/// `#include_next` and `#import` of the source and of each header it reaches, whatever `#if` surrounds it, is
/// resolved the way gcc searches (the including file's folder for `"..."`, then `-iquote`, then `-I`, `-isystem`,
/// the compiler's own folders and `-idirafter`), and followed. The result is a superset of what the compiler reads
/// (a header behind a false `#if` is shipped all the same; one found nowhere is left out, as the compiler would
/// fail on it too), so a helper with these files compiles as the client would. What text cannot settle, the
/// scanner refuses, and the compiler's own scan runs instead: a computed `#include MACRO`, a precompiled header
/// beside a header. Each file's directives are read once and kept by the file's identity (device, inode, size,
/// modification time), so a header shared by a build's compiles is read once for all of them.
public final class IncludeScanner: Sendable {
    /// One `#include`-like line.
    struct Directive: Equatable, Sendable {
        var name: String
        var quoted: Bool
        var next: Bool
    }

    /// A file's directives, or where it has a computed include.
    enum Directives: Sendable {
        case known([Directive])
        case computed(line: Int)
    }

    private struct Identity: Hashable { let dev: UInt64, ino: UInt64, size: Int64, mtime: Int64, mtimeNsec: Int64 }
    private let cache = Mutex<[Identity: Directives]>([:])
    /// Folders' entries, learnt once per folder identity.
    private let folderCache = FolderCache()
    /// Searches' answers, kept for the next scans (replaced whole when full).
    private let searchMemory: Mutex<SearchMemory>
    /// Paths of earlier answers asked again one by one (their folder changed or was too fresh to trust).
    let pathsCheckedAgain = Atomic<Int>(0)
    /// The sizes of the last scan's collections (files, searches, paths asked), reserved up front by the next: the
    /// compiles of a build read about as many files, and growing the tables on the way rehashes every path in them.
    private let lastFiles = Atomic<Int>(0), lastSearches = Atomic<Int>(0), lastProbes = Atomic<Int>(0)

    /// The memory a scan starting now works with.
    private func currentSearchMemory() -> SearchMemory {
        searchMemory.withLock { memory in
            if memory.isFull { memory = SearchMemory(maximumStrings: memory.maximumStrings, maximumSearches: memory.maximumSearches) }
            return memory
        }
    }

    /// A scanner whose searches' answers are kept up to `maximumSearches` (and paths and names numbered up to
    /// `maximumStrings`) before a new memory starts.
    public init(maximumSearches: Int = 50_000, maximumStrings: Int = 500_000) {
        searchMemory = Mutex(SearchMemory(maximumStrings: maximumStrings, maximumSearches: maximumSearches))
    }

    /// Where gcc looks for headers, in order.
    public struct SearchPath: Sendable, Equatable {
        /// `-iquote` folders: searched for `"..."` after the including file's folder.
        public var quote: [String]
        /// `-I`, `-isystem`, the compiler's system folders and `-idirafter`, in that order.
        public var angled: [String]
        public init(quote: [String], angled: [String]) {
            self.quote = quote
            self.angled = angled
        }
    }

    /// The outcome of a scan: the files (the source first, as paths the compiler would open), or why the
    /// compiler must scan instead.
    public enum Outcome: Sendable, Equatable {
        case files([String])
        case cannot(String)
    }

    /// The closure of `source`, of the `-include`/`-imacros` files `preincludes` (paths resolved against
    /// `workingDirectory` like the compiler does) and of the headers the compiler includes by itself (`implicit`,
    /// gcc's `stdc-predef.h`), found in the angled folders.
    public func scan(source: String, preincludes: [String], implicit: [String] = [], searchPath: SearchPath,
                     workingDirectory: String) -> Outcome {
        scanRecordingProbes(source: source, preincludes: preincludes, implicit: implicit, searchPath: searchPath,
                             workingDirectory: workingDirectory).outcome
    }

    /// ``scan(source:preincludes:implicit:searchPath:workingDirectory:)``, with every path it looked at for a header
    /// (found there or not, and the `.gch` beside each found) and whether something was there: what a file created,
    /// renamed or removed could change; and the `stat` of each file it read, taken before reading it.
    /// The files it reads are `stat`ed through `folders` (the job's pass over its inputs, which keeps each answer);
    /// `sightings` has what it saw of the folders it looked in.
    public func scanRecordingProbes(source: String, preincludes: [String], implicit: [String] = [], searchPath: SearchPath,
                                    workingDirectory: String, folders: FolderHandles = FolderHandles())
        -> (outcome: Outcome, probes: Probes, read: [String: stat], sightings: FolderSightings) {
        var lookup = FolderCache.Lookup(cache: folderCache, memory: currentSearchMemory(), handles: folders,
                                        expectedFiles: lastFiles.load(ordering: .relaxed), expectedProbes: lastProbes.load(ordering: .relaxed))
        let outcome = scan(source: source, preincludes: preincludes, implicit: implicit, searchPath: searchPath,
                           workingDirectory: workingDirectory, lookup: &lookup, folders: folders)
        return (outcome, lookup.probes, lookup.read, lookup.sightings)
    }

    /// A name searched for in the angled folders, or in the `-iquote` folders and then the angled ones.
    private struct Search: Hashable {
        let name: String
        let quoted: Bool
    }

    private func scan(source: String, preincludes: [String], implicit: [String], searchPath: SearchPath,
                      workingDirectory: String, lookup: inout FolderCache.Lookup, folders handles: FolderHandles) -> Outcome {
        func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : workingDirectory + "/" + path }
        func isFile(_ path: String) -> Bool { lookup.kind(of: path) == .file }
        let memory = lookup.memory
        /// Every folder's match of `name` (the headers, in the folders' order), and when `precompiled`, the first of
        /// them with a `.gch` beside it: the answer a scan before this one kept, while its folders are as they were.
        func all(_ name: String, in folders: [String], list: Int32, precompiled: Bool = false) -> (found: [String], precompiled: Int?) {
            let search = SearchMemory.Search(list: list, name: name, precompiled: precompiled)
            if let known = memory.answer(search), holds(known, for: search) {
                // The scan's probes, but in folders absent now (the folder stands for them).
                let absent = absentFolders(of: known.folders)
                for (index, probes) in known.probes.enumerated() where !absent[index] {
                    for probe in probes { lookup.record(probe.key, probe.kind) }
                }
                return (known.found, known.precompiled)
            }
            // Each candidate asked by folder and last component, without making and splitting its path.
            let slash = lastSlash(in: name)
            let base = slash.map { String(name[name.utf8.index(after: $0)...]) } ?? name
            let within = slash.map { String(name[..<$0]) }
            var found: [String] = []
            var firstPrecompiled: Int?
            var numbers: [Int32] = [], statuses: [FolderCache.Lookup.Status] = [], paths: [String] = []
            var probes: [[(key: UInt64, name: String, kind: PathKind)]] = []
            func ask(_ name: String, in folder: String) -> PathKind {
                let probe = lookup.probe(name, in: folder)
                if let index = numbers.lastIndex(of: probe.folder) {
                    probes[index].append((probe.key, name, probe.kind))
                } else {
                    numbers.append(probe.folder); statuses.append(probe.status); paths.append(folder)
                    probes.append([(probe.key, name, probe.kind)])
                }
                return probe.kind
            }
            for folder in folders {
                let candidateFolder = within.map { childPath($0, of: folder) } ?? folder
                guard ask(base, in: candidateFolder) == .file else { continue }
                found.append(childPath(base, of: candidateFolder))
                // gcc uses `x.h.gch` (a file or a folder of them) in place of `x.h` when it is valid: the compiler
                // decides. The search stops being asked at the first one (the scan stops there).
                if precompiled, firstPrecompiled == nil, ask(base + ".gch", in: candidateFolder) != .absent {
                    firstPrecompiled = found.count - 1
                }
            }
            let looked = memory.folders(.init(numbers: numbers, statuses: statuses), paths: paths)
            memory.keep(SearchMemory.Answer(found: found, precompiled: firstPrecompiled, folders: looked, probes: probes), for: search)
            return (found, firstPrecompiled)
        }
        /// Whether each shared set of folders is as it was (every one still missing, or trusted with the same
        /// identity), checked once per scan. A set's identity names it for the whole scan: the memory keeps every
        /// set it made while it is in use (``SearchMemory/folders(_:paths:)``).
        var unchanged: [ObjectIdentifier: Bool] = [:]
        /// Which folders of each shared set have nothing at their path in this scan, decided once per scan (the
        /// answers taken from the memory share a few sets, and each replays its probes).
        var absent: [ObjectIdentifier: [Bool]] = [:]
        func absentFolders(of folders: SearchMemory.Folders) -> [Bool] {
            let id = ObjectIdentifier(folders)
            if let known = absent[id] { return known }
            let decided = folders.key.numbers.indices.map { index in
                let number = folders.key.numbers[index]
                _ = lookup.status(of: number, path: folders.paths[index])
                return lookup.isAbsent(number)
            }
            absent[id] = decided
            return decided
        }
        /// Whether every path an earlier answer looked at holds what it held: a folder trusted with the same identity
        /// as then holds the same entries; in any other, each path is asked again. An answer that holds after such
        /// checks is kept again under the folders' statuses of this scan, when none is untrusted, so that the next
        /// scans take it at once (an answer first made while the build folder was too fresh to trust, for one).
        func holds(_ answer: SearchMemory.Answer, for search: SearchMemory.Search) -> Bool {
            let folders = answer.folders
            let id = ObjectIdentifier(folders)
            func status(_ index: Int) -> FolderCache.Lookup.Status {
                lookup.status(of: folders.key.numbers[index], path: folders.paths[index])
            }
            /// Still missing, or trusted with the same identity (an untrusted folder never is as it was).
            func isUnchanged(_ status: FolderCache.Lookup.Status, _ index: Int) -> Bool {
                status != .untrusted && status == folders.key.statuses[index]
            }
            if unchanged[id] == nil {
                unchanged[id] = folders.key.numbers.indices.allSatisfy { isUnchanged(status($0), $0) }
            }
            if unchanged[id] == true { return true }
            var statuses = folders.key.statuses
            for index in folders.key.numbers.indices {
                let now = status(index)
                if isUnchanged(now, index) { continue }
                pathsCheckedAgain.add(answer.probes[index].count, ordering: .relaxed)
                for probe in answer.probes[index] where lookup.probe(probe.name, in: folders.paths[index]).kind != probe.kind {
                    return false
                }
                statuses[index] = now
            }
            if !statuses.contains(.untrusted) {
                let current = memory.folders(.init(numbers: folders.key.numbers, statuses: statuses), paths: folders.paths)
                memory.keep(SearchMemory.Answer(found: answer.found, precompiled: answer.precompiled, folders: current, probes: answer.probes),
                            for: search)
            }
            return true
        }
        let angledList = memory.number(searchPath.angled.joined(separator: "\u{0}"))
        let quotedFolders = searchPath.quote + searchPath.angled
        let quotedList = memory.number(quotedFolders.joined(separator: "\u{0}"))
        // What each name's search found: a header that many files include is looked for once per scan.
        var searched: [Search: (found: [String], precompiled: Int?)] = [:]
        searched.reserveCapacity(lastSearches.load(ordering: .relaxed))
        func search(_ name: String, quoted: Bool) -> (found: [String], precompiled: Int?) {
            let key = Search(name: name, quoted: quoted)
            if let known = searched[key] { return known }
            let answer = quoted ? all(name, in: quotedFolders, list: quotedList, precompiled: true)
                : all(name, in: searchPath.angled, list: angledList, precompiled: true)
            searched[key] = answer
            return answer
        }
        var files: [String] = []
        var seen = Set<String>()
        let expectedFiles = lastFiles.load(ordering: .relaxed)
        files.reserveCapacity(expectedFiles)
        seen.reserveCapacity(expectedFiles)
        var queue: [String] = []
        defer {
            lastFiles.store(files.count, ordering: .relaxed)
            lastSearches.store(searched.count, ordering: .relaxed)
            lastProbes.store(lookup.order.count, ordering: .relaxed)
        }
        func visit(_ path: String) {
            guard seen.insert(path).inserted else { return }
            files.append(path)
            queue.append(path)
        }
        visit(absolute(source))
        for file in preincludes {
            // gcc looks for -include files in the working directory first, then as for #include "...".
            let inFolders = file.hasPrefix("/") ? [] : all(file, in: quotedFolders, list: quotedList).found
            for found in [absolute(file)].filter(isFile) + inFolders {
                visit(found)
            }
        }
        for name in implicit {
            for found in all(name, in: searchPath.angled, list: angledList).found { visit(found) }
        }
        while let path = queue.popLast() {
            let directives: [Directive]
            switch self.directives(of: path, read: &lookup.read, folders: handles) {
            case nil: continue
            case let .computed(line)?: return .cannot("computed #include at \(path):\(line)")
            case let .known(list)?: directives = list
            }
            let folder = parentFolder(of: path)
            for directive in directives {
                if directive.name.hasPrefix("/") {
                    if isFile(directive.name) { visit(directive.name) }
                    continue
                }
                // Every folder's match, not only the first: a superset whatever order and duplicate rules gcc
                // applies to the folders. For `_next`, every match too: which folder the including file came from
                // is not tracked; a quoted name is looked for in the including file's folder first.
                let answers = directive.quoted && !directive.next
                    ? [all(directive.name, in: [folder], list: memory.number(folder), precompiled: true), search(directive.name, quoted: true)]
                    : [search(directive.name, quoted: directive.quoted)]
                for answer in answers {
                    for (index, path) in answer.found.enumerated() {
                        if index == answer.precompiled { return .cannot("precompiled header beside \(path)") }
                        visit(path)
                    }
                }
            }
        }
        return .files(files)
    }

    /// A fingerprint of a file's `#include`-like directives (names, quoting, `_next`, in order), or of where it has a
    /// computed one; nil when it cannot be read. An edit that keeps them keeps what the file makes the compiler read.
    public func directiveFingerprint(of path: String) -> UInt64? {
        guard let directives = directives(of: path) else { return nil }
        var text: String
        switch directives {
        case let .known(list): text = list.map { "\($0.quoted ? "q" : "a")\($0.next ? "n" : "-")\($0.name)" }.joined(separator: "\u{0}")
        case let .computed(line): text = "computed \(line)"
        }
        return fnv1a(text.utf8)
    }

    /// The directives of a file (cached by its identity); nil when it cannot be read.
    func directives(of path: String) -> Directives? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return directives(of: path, info: info)
    }

    /// ``directives(of:)``, keeping the file's `stat` (asked through `folders`) in `read`.
    func directives(of path: String, read: inout [String: stat], folders: FolderHandles) -> Directives? {
        guard let info = folders.lookUp(path) else { return nil }
        read[path] = info
        return directives(of: path, info: info)
    }

    /// The directives of the file at `path` whose `stat` is `info`.
    private func directives(of path: String, info: stat) -> Directives? {
        let identity = Identity(dev: UInt64(info.st_dev), ino: UInt64(info.st_ino), size: Int64(info.st_size),
                                mtime: Int64(info.st_mtim.tv_sec), mtimeNsec: Int64(info.st_mtim.tv_nsec))
        if let known = cache.withLock({ $0[identity] }) { return known }
        guard let bytes = Posix.readFile(path) else { return nil }
        let directives = Self.parse(bytes)
        cache.withLock { $0[identity] = directives }
        return directives
    }

    /// The `#include`, `#include_next` and `#import` directives of a file's text, as the preprocessor sees them:
    /// comments (`/* */`, `//`), string, character and raw string literals are skipped, backslash-newlines join
    /// lines, and a directive is a `#` (or `%:`) that starts a line. Directives inside `#if` blocks are all taken.
    /// A directive whose name is not `"name"` or `<name>` is a computed include.
    static func parse(_ bytes: [UInt8]) -> Directives {
        var directives: [Directive] = []
        let count = bytes.count
        func at(_ i: Int) -> UInt8 { i < count ? bytes[i] : 0 }
        func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0c || byte == 0x0b || byte == 0x0d }
        func isIdentifier(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5f
        }
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        func lineNumber(_ i: Int) -> Int { 1 + bytes[..<i].reduce(0) { $0 + ($1 == 0x0a ? 1 : 0) } }
        /// Past a block comment that starts at `i`.
        func skipBlockComment(_ start: Int) -> Int {
            var i = start + 2
            while i < count, !(bytes[i] == 0x2a && at(i + 1) == 0x2f) { i += 1 }
            return min(count, i + 2)
        }
        /// Past blanks, backslash-newlines and block comments on the line from `i`.
        func skipBlanks(_ start: Int) -> Int {
            var i = start
            while i < count {
                if isBlank(bytes[i]) { i += 1; continue }
                if bytes[i] == 0x5c, at(i + 1) == 0x0a { i += 2; continue }
                if bytes[i] == 0x2f, at(i + 1) == 0x2a { i = skipBlockComment(i); continue }
                break
            }
            return i
        }
        /// Past a quoted literal whose opening quote is at `i` (it ends at its closing quote or at the line's end).
        func skipQuoted(_ start: Int, _ quote: UInt8) -> Int {
            var i = start + 1
            while i < count, bytes[i] != quote, bytes[i] != 0x0a {
                i += bytes[i] == 0x5c ? 2 : 1
            }
            return min(count, i + (at(i) == quote ? 1 : 0))
        }
        /// Past a raw string `R"delimiter( ... )delimiter"` whose quote is at `i`.
        func skipRaw(_ start: Int) -> Int {
            var i = start + 1
            while i < count, bytes[i] != 0x28, bytes[i] != 0x0a, i - start <= 17 { i += 1 }
            guard at(i) == 0x28 else { return skipQuoted(start, 0x22) }
            let closing = [0x29] + Array(bytes[(start + 1)..<i]) + [0x22]
            var j = i + 1
            while j + closing.count <= count {
                if bytes[j] == 0x29, bytes[j..<(j + closing.count)].elementsEqual(closing) { return j + closing.count }
                j += 1
            }
            return count
        }
        var index = 0
        var lineStart = true
        while index < count {
            let byte = bytes[index]
            if byte == 0x0a { lineStart = true; index += 1; continue }
            if isBlank(byte) { index += 1; continue }
            if byte == 0x5c, at(index + 1) == 0x0a { index += 2; continue }
            if byte == 0x2f, at(index + 1) == 0x2a { index = skipBlockComment(index); continue }
            if byte == 0x2f, at(index + 1) == 0x2f {
                while index < count, bytes[index] != 0x0a { index += bytes[index] == 0x5c && at(index + 1) == 0x0a ? 2 : 1 }
                continue
            }
            let hash = byte == 0x23 ? 1 : (byte == 0x25 && at(index + 1) == 0x3a ? 2 : 0)
            if lineStart, hash > 0 {
                lineStart = false
                var i = skipBlanks(index + hash)
                let wordStart = i
                while i < count, isIdentifier(bytes[i]) { i += 1 }
                let word = bytes[wordStart..<i]
                let next = word.elementsEqual("include_next".utf8)
                guard next || word.elementsEqual("include".utf8) || word.elementsEqual("import".utf8) else { index = i; continue }
                i = skipBlanks(i)
                let open = at(i)
                guard open == 0x22 || open == 0x3c else { return .computed(line: lineNumber(index)) }
                let close: UInt8 = open == 0x22 ? 0x22 : 0x3e
                var end = i + 1
                while end < count, bytes[end] != close, bytes[end] != 0x0a { end += 1 }
                guard at(end) == close, end > i + 1 else { return .computed(line: lineNumber(index)) }
                directives.append(Directive(name: String(decoding: bytes[(i + 1)..<end], as: UTF8.self), quoted: close == 0x22, next: next))
                index = end + 1
                continue
            }
            lineStart = false
            if byte == 0x22 {
                // R"(...)", also after an encoding prefix (u8R, uR, UR, LR).
                let raw = index > 0 && bytes[index - 1] == 0x52 && (index < 2 || !isIdentifier(bytes[index - 2]) || [0x38, 0x75, 0x55, 0x4c].contains(bytes[index - 2]))
                index = raw ? skipRaw(index) : skipQuoted(index, 0x22)
                continue
            }
            if byte == 0x27 {
                // After a digit, a digit separator (1'000'000), not a character literal.
                index = index > 0 && isDigit(bytes[index - 1]) ? index + 1 : skipQuoted(index, 0x27)
                continue
            }
            index += 1
        }
        return .known(directives)
    }
}

/// The include options of a gcc command line, in the order gcc searches them.
public struct IncludeOptions: Sendable, Equatable {
    public var quote: [String] = []
    public var bracket: [String] = []
    public var system: [String] = []
    public var after: [String] = []
    /// `-include` and `-imacros` files.
    public var preincludes: [String] = []
    /// `-nostdinc`: no system folders of the compiler's.
    public var noStandardIncludes = false

    /// Reads `arguments` (relative folders against `workingDirectory`); nil with the reason when an option
    /// changes the search in a way the scanner does not follow (`-I-`, `-iprefix`, sysroot-relative `=dir`, ...).
    public static func parse(_ arguments: [String], workingDirectory: String) -> Result<IncludeOptions, IncludeOptionError> {
        var options = IncludeOptions()
        func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : workingDirectory + "/" + path }
        let unsupported = ["-I-", "-iprefix", "-imultilib", "-imultiarch", "-isysroot", "-iframework", "-include-pch", "-cxx-isystem",
                           "-isystem-after", "-B", "-specs", "--specs", "-iplugindir"]
        let unsupportedPrefixes = ["-iwithprefix", "-fmodule", "-F", "--include", "--system-header", "-B", "-specs=", "--specs=", "-iplugindir="]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let next = index + 1 < arguments.count ? arguments[index + 1] : nil
            var matched = false
            for (option, keyPath) in [("-iquote", \IncludeOptions.quote), ("-isystem", \.system), ("-idirafter", \.after), ("-I", \.bracket),
                                      ("-include", \.preincludes), ("-imacros", \.preincludes)] where argument.hasPrefix(option) {
                if option == "-include", argument.hasPrefix("-include-pch") { break }
                if option == "-isystem", argument.hasPrefix("-isystem-after") { break }
                let value = argument == option ? next : String(argument.dropFirst(option.count))
                guard let value, !value.isEmpty else { return .failure(IncludeOptionError(option: argument)) }
                if value.hasPrefix("=") || argument == "-I-" { return .failure(IncludeOptionError(option: argument)) }
                options[keyPath: keyPath].append(keyPath == \IncludeOptions.preincludes ? value : absolute(value))
                if argument == option { index += 1 }
                matched = true
                break
            }
            if !matched {
                if argument == "-nostdinc" { options.noStandardIncludes = true }
                if unsupported.contains(argument) || unsupportedPrefixes.contains(where: { argument.hasPrefix($0) }) {
                    return .failure(IncludeOptionError(option: argument))
                }
            }
            index += 1
        }
        return .success(options)
    }

    /// The search path with the compiler's own system folders (`-E -v`) in their place.
    public func searchPath(compilerSystem: [String]) -> IncludeScanner.SearchPath {
        IncludeScanner.SearchPath(quote: quote, angled: bracket + system + (noStandardIncludes ? [] : compilerSystem) + after)
    }
}

/// An option the scanner does not follow.
public struct IncludeOptionError: Error, Equatable, CustomStringConvertible {
    public let option: String
    public var description: String { "the include scan does not follow \(option)" }
}
