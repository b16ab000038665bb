/// The source languages the launcher distributes.
public enum SourceLanguage: String, Sendable {
    case c, cxx = "c++", objc = "objective-c", objcxx = "objective-c++"

    /// The language a gcc or clang driver infers from a file name, or nil when it is not a source to compile.
    public init?(fileName: String) {
        guard let dot = fileName.lastIndex(of: "."), !fileName[dot...].contains("/") else { return nil }
        switch fileName[fileName.index(after: dot)...] {
        case "c": self = .c
        case "cc", "cp", "cxx", "cpp", "CPP", "c++", "C": self = .cxx
        case "m": self = .objc
        case "mm", "M": self = .objcxx
        default: return nil
        }
    }

    /// The language named by a `-x` value, or nil for anything else (headers, assembler, preprocessed input).
    public init?(xValue: String) {
        switch xValue {
        case "c": self = .c
        case "c++": self = .cxx
        case "objective-c": self = .objc
        case "objective-c++": self = .objcxx
        default: return nil
        }
    }
}

/// A compile the launcher may hand to a helper.
public struct DistributableCompile: Sendable, Equatable {
    public var language: SourceLanguage
    /// The source file as written on the command line.
    public var source: String
    /// The object file as the compile writes it (the `-o` value, or the driver's default).
    public var object: String
    /// The dependency file the compile writes, when `-MD` or `-MMD` is given.
    public var dependencyFile: String?
    /// Directories named by include options, as written.
    public var includeDirectories: [String]
    /// Arguments for the local scan that lists every file the preprocessor reads: the original arguments
    /// without `-c`, `-o` and dependency-file options. The caller adds its preprocessing flags.
    public var scanArguments: [String]
}

/// What the launcher does with a command line.
public enum Classification: Sendable, Equatable {
    case distribute(DistributableCompile)
    /// Run the compiler locally with the original arguments; the reason is counted in stats.
    case local(reason: String)
}

/// Classifies a gcc or clang driver command line (response files already expanded).
///
/// Distributable means: `-c`, exactly one C, C++ or Objective-C source file that is not stdin,
/// an object written to a file, and no option from ``optionTable`` that forces a local run.
public func classify(_ givenArguments: [String]) -> Classification {
    let arguments = LongOptions.canonical(givenArguments)
    var sawCompile = false
    var output: String?
    var sources: [(String, SourceLanguage?)] = []
    var otherInputs = 0
    var explicitLanguage: String?
    var dependencyFile: String?
    var writesDependencies = false
    var includeDirectories: [String] = []
    var scan: [String] = []
    scan.reserveCapacity(arguments.count)

    var i = 0
    while i < arguments.count {
        let arg = arguments[i]
        let next: String? = i + 1 < arguments.count ? arguments[i + 1] : nil
        func value() -> String? { next }

        if arg == "-" { return .local(reason: "stdin-input") }
        if !arg.hasPrefix("-") || arg.count == 1 {
            if let language = explicitLanguage.map(SourceLanguage.init(xValue:)) ?? SourceLanguage(fileName: arg) {
                sources.append((arg, language))
            } else if explicitLanguage != nil {
                return .local(reason: "unsupported-language")
            } else {
                // Headers, preprocessed or assembler sources, objects, libraries, files without an extension:
                // inputs a remote compile of one C-family source does not take.
                otherInputs += 1
            }
            scan.append(arg)
            i += 1
            continue
        }
        switch arg {
        case "-c":
            sawCompile = true
            i += 1
            continue
        case "-o":
            guard let v = value() else { return .local(reason: "missing-option-value") }
            output = v
            i += 2
            continue
        case "-x":
            guard let v = value() else { return .local(reason: "missing-option-value") }
            explicitLanguage = v == "none" ? nil : v
            scan.append(arg); scan.append(v)
            i += 2
            continue
        case "-MD", "-MMD":
            writesDependencies = true
            i += 1
            continue
        case "-MF":
            guard let v = value() else { return .local(reason: "missing-option-value") }
            dependencyFile = v
            i += 2
            continue
        case "-MT", "-MQ":
            guard value() != nil else { return .local(reason: "missing-option-value") }
            i += 2
            continue
        case "-MP":
            i += 1
            continue
        default:
            break
        }
        if arg.hasPrefix("-o"), !arg.hasPrefix("-output-pch") { output = String(arg.dropFirst(2)); i += 1; continue }
        if arg.hasPrefix("-x") {
            let v = String(arg.dropFirst(2))
            explicitLanguage = v == "none" ? nil : v
            scan.append(arg)
            i += 1
            continue
        }
        if arg.hasPrefix("-MF") { dependencyFile = String(arg.dropFirst(3)); i += 1; continue }
        if arg.hasPrefix("-MT") || arg.hasPrefix("-MQ") { i += 1; continue }
        if arg == "-Xclang", let v = value(), v == "-load" || v == "-plugin" || v == "-add-plugin" {
            return .local(reason: "plugin")
        }
        for option in includeDirectoryOptions where arg.hasPrefix(option) {
            if arg == option, let v = value() { includeDirectories.append(v) }
            else if arg != option { includeDirectories.append(String(arg.dropFirst(option.count)).trimmingLeadingEquals()) }
            break
        }
        switch rule(for: arg) {
        case let .local(reason)?, let .localWithValue(reason)?:
            return .local(reason: reason)
        case .passWithValue?:
            guard let v = value() else { return .local(reason: "missing-option-value") }
            scan.append(arg); scan.append(v)
            i += 2
        case .pass?, nil:
            scan.append(arg)
            i += 1
        }
    }

    guard sawCompile else { return .local(reason: sources.isEmpty && otherInputs == 0 ? "no-input" : "not-a-compile") }
    guard otherInputs == 0 else { return .local(reason: sources.isEmpty ? "unsupported-input" : "several-inputs") }
    guard sources.count == 1, let (source, language) = sources.first, let language else {
        return .local(reason: sources.isEmpty ? "no-input" : "several-inputs")
    }
    let object = output ?? defaultObjectName(for: source)
    if object == "-" || object == "/dev/stdout" { return .local(reason: "output-to-stdout") }
    var depfile: String?
    if writesDependencies {
        depfile = dependencyFile ?? replacingExtension(of: output ?? baseName(of: source), with: "d")
    } else if dependencyFile != nil {
        // -MF without -MD/-MMD does nothing for a compile.
        depfile = nil
    }
    return .distribute(DistributableCompile(
        language: language, source: source, object: object, dependencyFile: depfile,
        includeDirectories: includeDirectories, scanArguments: scan))
}

/// The object name a driver picks without `-o`: the source's base name with `.o`, in the working directory.
public func defaultObjectName(for source: String) -> String {
    replacingExtension(of: baseName(of: source), with: "o")
}

public func baseName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}

/// Whether the driver at `path` is clang's: its file name says so (`clang`, `clang++-16`, `x86_64-linux-gnu-clang`).
public func isClangDriver(_ path: String) -> Bool { baseName(of: path).containsBytes("clang") }

extension String {
    /// Whether `part` occurs in it, compared by UTF-8 bytes: a plain scan, fit for the launcher's compile path, where
    /// the standard library's `contains(_:)` sets up a substring searcher (a dictionary) on every call.
    public func containsBytes(_ part: String) -> Bool {
        let bytes = Array(utf8), pattern = Array(part.utf8)
        guard !pattern.isEmpty else { return true }
        guard bytes.count >= pattern.count else { return false }
        for start in 0...(bytes.count - pattern.count) where bytes[start] == pattern[0] {
            if bytes[start..<(start + pattern.count)].elementsEqual(pattern) { return true }
        }
        return false
    }
}

public func replacingExtension(of path: String, with newExtension: String) -> String {
    let base = baseName(of: path)
    guard let dot = base.lastIndex(of: "."), dot != base.startIndex else { return path + "." + newExtension }
    let cut = path.index(path.endIndex, offsetBy: -base.distance(from: dot, to: base.endIndex))
    return String(path[..<cut]) + "." + newExtension
}

extension String {
    func trimmingLeadingEquals() -> String { hasPrefix("=") ? String(dropFirst()) : self }
}
