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

/// Every row of the decision table, exercised through the classifier on an otherwise distributable compile.
@Test(arguments: optionTable)
func tableRow(_ spec: OptionSpec) {
    let spelling = spec.match == .prefix ? spec.spelling + (spec.spelling.hasSuffix("=") || spec.spelling.hasSuffix("-") || spec.spelling.hasSuffix(",") ? "x" : "") : spec.spelling
    var args = ["-c", "a.c", "-o", "a.o", spelling]
    switch spec.rule {
    case .passWithValue, .localWithValue: args.append("value")
    default: break
    }
    let result = classify(args)
    switch spec.rule {
    case let .local(reason), let .localWithValue(reason):
        #expect(result == .local(reason: reason), "\(spelling)")
    case .pass, .passWithValue:
        guard case let .distribute(compile) = result else {
            Issue.record("\(spelling) should stay distributable, got \(result)")
            return
        }
        #expect(compile.source == "a.c")
        #expect(compile.scanArguments.contains(spelling))
        if case .passWithValue = spec.rule { #expect(compile.scanArguments.contains("value")) }
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
