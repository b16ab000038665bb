import Testing
@testable import CompilerArgs

func distributable(_ args: [String]) -> DistributableCompile? {
    if case let .distribute(compile) = classify(args) { return compile }
    return nil
}

func localReason(_ args: [String]) -> String? {
    if case let .local(reason) = classify(args) { return reason }
    return nil
}

/// Every row of the decision table, written out: the spelling as a user would type it, whether it takes the next
/// argument as its value, and the classification of an otherwise distributable compile with it (nil: it stays
/// distributable and reaches the scan). The expectations are data of their own, so a change to the table or to
/// the matching shows here; a new row without an expectation fails `everyRowHasAWrittenExpectation`.
let tableExpectations: [(spelling: String, takesValue: Bool, expected: Classification?)] = [
    ("-E", false, .local(reason: "preprocess-only")),
    ("-S", false, .local(reason: "assembly-output")),
    ("-fsyntax-only", false, .local(reason: "syntax-only")),
    ("-M", false, .local(reason: "dependencies-only")),
    ("-MM", false, .local(reason: "dependencies-only")),
    ("-MG", false, .local(reason: "generated-headers")),
    ("-Wp,x", false, .local(reason: "preprocessor-passthrough")),
    ("-Xpreprocessor", true, .local(reason: "preprocessor-passthrough")),
    ("-MJ", true, .local(reason: "compilation-database-output")),
    ("-save-temps", false, .local(reason: "save-temps")),
    ("--coverage", false, .local(reason: "coverage")),
    ("-ftest-coverage", false, .local(reason: "coverage")),
    ("-fprofile-arcs", false, .local(reason: "coverage")),
    ("-fprofile-generate", false, .local(reason: "profile")),
    ("-fprofile-use", false, .local(reason: "profile")),
    ("-fprofile-instr-generate", false, .local(reason: "profile")),
    ("-fprofile-instr-use", false, .local(reason: "profile")),
    ("-fprofile-sample-use", false, .local(reason: "profile")),
    ("-fauto-profile", false, .local(reason: "profile")),
    ("-fcs-profile-generate", false, .local(reason: "profile")),
    ("-fsanitize-blacklist", false, .local(reason: "reads-extra-file")),
    ("-fsanitize-ignorelist", false, .local(reason: "reads-extra-file")),
    ("-fplugin", false, .local(reason: "plugin")),
    ("-fpass-plugin", false, .local(reason: "plugin")),
    ("-specs", false, .local(reason: "specs-file")),
    ("-B", false, .local(reason: "compiler-prefix")),
    ("-wrapper", true, .local(reason: "wrapper")),
    ("-iplugindir", false, .local(reason: "plugin")),
    ("--config", false, .local(reason: "config-file")),
    ("-output-pch=x", false, .local(reason: "pch-output")),
    ("--serialize-diagnostics", false, .local(reason: "extra-output")),
    ("--analyze", false, .local(reason: "not-a-compile")),
    ("--precompile", false, .local(reason: "pch-output")),
    ("-gsplit-dwarf", false, .local(reason: "split-dwarf")),
    ("-fdump-x", false, .local(reason: "dump-files")),
    ("-fstack-usage", false, .local(reason: "extra-output")),
    ("-fcallgraph-info", false, .local(reason: "extra-output")),
    ("-ftime-trace", false, .local(reason: "extra-output")),
    ("-aux-info", true, .local(reason: "extra-output")),
    ("-fopt-info", false, .local(reason: "extra-output")),
    ("-frecord-gcc-switches", false, nil),
    ("-march=native", false, .local(reason: "native-cpu")),
    ("-mtune=native", false, .local(reason: "native-cpu")),
    ("-mcpu=native", false, .local(reason: "native-cpu")),
    ("-flto-incremental", false, .local(reason: "extra-output")),
    ("-emit-llvm", false, nil),
    ("-fmodules", false, .local(reason: "modules")),
    ("-fmodule-x", false, .local(reason: "modules")),
    ("-fcrash-diagnostics-dir", false, .local(reason: "extra-output")),
    ("-I", true, nil),
    ("-D", true, nil),
    ("-U", true, nil),
    ("-include", true, nil),
    ("-imacros", true, nil),
    ("-isystem", true, nil),
    ("-iquote", true, nil),
    ("-idirafter", true, nil),
    ("-iprefix", true, nil),
    ("-iwithprefix", true, nil),
    ("-iwithprefixbefore", true, nil),
    ("-isysroot", true, nil),
    ("-imultilib", true, nil),
    ("-Xassembler", true, nil),
    ("-Xlinker", true, nil),
    ("-L", true, nil),
    ("-l", true, nil),
    ("-u", true, nil),
    ("-T", true, nil),
    ("-z", true, nil),
    ("--param", true, nil),
    ("-arch", true, nil),
    ("-target", true, nil),
    ("-A", true, nil),
    ("-G", true, nil),
    ("--sysroot", true, nil),
    ("-dumpbase", true, nil),
    ("-dumpdir", true, nil),
    ("-Xclang", true, nil),
]

@Test func everyRowHasAWrittenExpectation() {
    let written = Set(tableExpectations.map(\.spelling))
    for spec in optionTable {
        #expect(written.contains(spec.spelling) || written.contains(spec.spelling + "x"), "no written expectation for \(spec.spelling)")
    }
}

@Test(arguments: tableExpectations.indices)
func tableRow(_ index: Int) {
    let (spelling, takesValue, expected) = tableExpectations[index]
    let args = ["-c", "a.c", "-o", "a.o", spelling] + (takesValue ? ["value"] : [])
    let result = classify(args)
    if let expected {
        #expect(result == expected, "\(spelling)")
    } else {
        guard case let .distribute(compile) = result else {
            Issue.record("\(spelling) should stay distributable, got \(result)")
            return
        }
        #expect(compile.source == "a.c" && compile.object == "a.o")
        #expect(compile.scanArguments.contains(spelling), "\(spelling)")
        // A value is consumed with its option: it is not taken for a second input.
        if takesValue { #expect(compile.scanArguments.contains("value")) }
    }
}

struct Scenario: Sendable, CustomTestStringConvertible {
    let args: [String]
    let expected: Classification
    var testDescription: String { args.joined(separator: " ") }
}

@Test(arguments: [
    Scenario(args: ["a.o", "b.o", "-o", "prog"], expected: .local(reason: "not-a-compile")),
    Scenario(args: ["a.c", "-o", "prog"], expected: .local(reason: "not-a-compile")),
    Scenario(args: ["-E", "a.c"], expected: .local(reason: "preprocess-only")),
    Scenario(args: ["-M", "a.c"], expected: .local(reason: "dependencies-only")),
    Scenario(args: ["-MM", "-c", "a.c"], expected: .local(reason: "dependencies-only")),
    Scenario(args: ["-c", "a.c", "b.c"], expected: .local(reason: "several-inputs")),
    Scenario(args: ["-c", "-x", "c", "-"], expected: .local(reason: "stdin-input")),
    Scenario(args: ["-c", "a.h", "-o", "a.h.gch"], expected: .local(reason: "unsupported-input")),
    Scenario(args: ["-c", "-x", "c++-header", "a.hpp"], expected: .local(reason: "unsupported-language")),
    Scenario(args: ["-c", "a.s"], expected: .local(reason: "unsupported-input")),
    Scenario(args: ["-c", "a.c", "-o", "-"], expected: .local(reason: "output-to-stdout")),
    Scenario(args: ["-c", "a.c", "-save-temps=obj"], expected: .local(reason: "save-temps")),
    Scenario(args: ["-c", "a.c", "--coverage"], expected: .local(reason: "coverage")),
    Scenario(args: ["-c", "a.c", "-march=native"], expected: .local(reason: "native-cpu")),
    Scenario(args: ["-c", "a.c", "-fplugin=foo.so"], expected: .local(reason: "plugin")),
    Scenario(args: ["-c", "a.c", "-Xclang", "-load", "-Xclang", "p.so"], expected: .local(reason: "plugin")),
    Scenario(args: ["-c", "a.c", "-o"], expected: .local(reason: "missing-option-value")),
    Scenario(args: ["--version"], expected: .local(reason: "no-input")),
])
func wholeCommandLines(_ scenario: Scenario) {
    #expect(classify(scenario.args) == scenario.expected)
}

@Test func distributableCompileKeepsPreprocessorFlagsForTheScan() throws {
    let c = try #require(distributable(["-DX=1", "-I", "inc", "-Iother", "-isystem", "/sys", "-include", "pre.h", "-O2", "-c", "src/a.cpp", "-o", "obj/a.o", "-MD", "-MT", "obj/a.o", "-MF", "obj/a.d"]))
    #expect(c.language == .cxx)
    #expect(c.object == "obj/a.o")
    #expect(c.dependencyFile == "obj/a.d")
    #expect(c.includeDirectories == ["inc", "other", "/sys"])
    #expect(c.scanArguments == ["-DX=1", "-I", "inc", "-Iother", "-isystem", "/sys", "-include", "pre.h", "-O2", "src/a.cpp"])
}

@Test func defaultOutputAndDependencyNames() throws {
    let noOutput = try #require(distributable(["-c", "dir/x.cc", "-MMD"]))
    #expect(noOutput.object == "x.o")
    #expect(noOutput.dependencyFile == "x.d")
    let withOutput = try #require(distributable(["-c", "x.c", "-o", "build/y.obj", "-MD"]))
    #expect(withOutput.dependencyFile == "build/y.d")
    let joined = try #require(distributable(["-c", "x.c", "-obuild/z.o", "-MFdeps.d", "-MMD"]))
    #expect(joined.object == "build/z.o")
    #expect(joined.dependencyFile == "deps.d")
    let noDeps = try #require(distributable(["-c", "x.c", "-MF", "ignored.d"]))
    #expect(noDeps.dependencyFile == nil)
}

@Test func explicitLanguageOverridesTheExtension() throws {
    let c = try #require(distributable(["-x", "c++", "-c", "weird.txt"]))
    #expect(c.language == .cxx)
    #expect(c.scanArguments == ["-x", "c++", "weird.txt"])
}

@Test func responseFilesSplitLikeGcc() throws {
    #expect(splitResponseFile(Array(#"-DA="x y" 'q r' a\ b -c"#.utf8)) == ["-DA=x y", "q r", "a b", "-c"])
    let files: [String: String] = ["r1": "-c @r2 a.c", "r2": "-O2 -DZ"]
    let expanded = try expandResponseFiles(["@r1", "-o", "a.o"]) { files[$0].map { Array($0.utf8) } }
    #expect(expanded == ["-c", "-O2", "-DZ", "a.c", "-o", "a.o"])
    #expect(throws: ResponseFileError.unreadable("nope")) { try expandResponseFiles(["@nope"]) { _ in nil } }
    let loop: [String: String] = ["l": "@l"]
    #expect(throws: ResponseFileError.tooDeep("l")) { try expandResponseFiles(["@l"]) { loop[$0].map { Array($0.utf8) } } }
}

@Test func lineMarkersListEachFileOnce() {
    let text = """
    # 0 "src/a b.c"
    # 1 "/work//"
    # 0 "<built-in>"
    #define X 1
    # 0 "<command-line>"
    # 1 "/usr/include/stdc-predef.h" 1 3 4
    # 1 "src/a b.c"
    # 1 "inc/q\\"uote\\\\.h" 1
    int a;
    # 2 "src/a b.c" 2
    #  pragma once
    # 1 "/usr/include/stdio.h" 1 3 4
      # 1 "/usr/include/x86_64-linux-gnu/c++/12/bits/time_members.h" 1 3
    \t# 1 "tabbed.h" 1
    """
    var scanner = LineMarkerScanner()
    Array(text.utf8).withUnsafeBufferPointer { scanner.scan($0) }
    #expect(scanner.files == ["src/a b.c", "/usr/include/stdc-predef.h", "inc/q\"uote\\.h", "/usr/include/stdio.h",
                             "/usr/include/x86_64-linux-gnu/c++/12/bits/time_members.h", "tabbed.h"])
}

@Test func extensionHelpers() {
    #expect(replacingExtension(of: "a/b.c", with: "o") == "a/b.o")
    #expect(replacingExtension(of: "a.b/c", with: "o") == "a.b/c.o")
    #expect(replacingExtension(of: ".hidden", with: "o") == ".hidden.o")
    #expect(defaultObjectName(for: "../x/y.cpp") == "y.o")
}
