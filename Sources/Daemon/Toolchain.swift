import Foundation
import SystemSupport
import Wire

/// A compiler and every file it loads, identified by a hash of their contents and paths.
public struct Toolchain: Sendable {
    public var id: String
    public var compiler: String
    public var files: [FileEntry]
    public var symlinks: [SymlinkEntry]
    /// Directory holding a copy of the files at their paths, used as the base of sandboxes.
    public var tree: String
}

public struct ToolchainError: Error, CustomStringConvertible {
    public let compiler: String
    public let reason: String
    public var description: String { "toolchain for \(compiler): \(reason)" }
}

/// Finds the files of native compilers, computes their ids and keeps a copy of each under the state directory.
public final class ToolchainRegistry: @unchecked Sendable {
    private let stateDirectory: String
    private let resolver: FileResolver
    private let platform: String
    private let lock = NSLock()
    private var cache: [String: (Date, Toolchain)] = [:]

    public init(stateDirectory: String, resolver: FileResolver, platform: String) {
        self.stateDirectory = stateDirectory
        self.resolver = resolver
        self.platform = platform
    }

    /// Ids of the toolchains prepared so far.
    public var knownIDs: [String] {
        lock.lock(); defer { lock.unlock() }
        return cache.values.map(\.1.id)
    }

    /// The toolchain of the compiler at `compiler` on this machine (blocking; cached by the driver's mtime).
    public func native(compiler: String) throws -> Toolchain {
        let mtime = (try? FileManager.default.attributesOfItem(atPath: compiler)[.modificationDate] as? Date) ?? Date.distantPast
        lock.lock()
        if let (stamp, toolchain) = cache[compiler], stamp == mtime {
            lock.unlock()
            return toolchain
        }
        lock.unlock()
        let toolchain = try discover(compiler)
        lock.lock()
        cache[compiler] = (mtime, toolchain)
        lock.unlock()
        return toolchain
    }

    private func discover(_ compiler: String) throws -> Toolchain {
        guard Posix.isExecutableFile(compiler) else { throw ToolchainError(compiler: compiler, reason: "not an executable file") }
        var members = [compiler]
        let isClang = compiler.split(separator: "/").last?.contains("clang") ?? false
        if !isClang {
            for program in ["cc1", "cc1plus", "cc1obj", "cc1objplus", "as"] {
                guard let answer = try? capture(compiler, ["-print-prog-name=\(program)"]), !answer.isEmpty else { continue }
                if answer.contains("/") {
                    if Posix.isExecutableFile(answer) { members.append(answer) }
                } else if let found = searchPath(answer) {
                    members.append(found)
                }
            }
        }
        var libraries: [String] = []
        for member in members {
            libraries.append(contentsOf: (try? sharedLibraries(of: member)) ?? [])
        }
        let tree = try resolver.tree(files: members + libraries, directories: [], in: "/")
        var lines = ["platform \(platform)"]
        lines += tree.files.sorted { $0.path < $1.path }.map { "F \($0.path) \($0.hash) \($0.executable)" }
        lines += tree.symlinks.sorted { $0.path < $1.path }.map { "L \($0.path) \($0.target)" }
        let id = FileResolver.digest(Array(lines.joined(separator: "\n").utf8))
        let directory = try materialize(id: id, tree: tree)
        return Toolchain(id: id, compiler: compiler, files: tree.files, symlinks: tree.symlinks, tree: directory)
    }

    /// Copies (or hard-links) the toolchain's files into `toolchains/<id>/root`, once.
    private func materialize(id: String, tree: ResolvedTree) throws -> String {
        let fm = FileManager.default
        let final = stateDirectory + "/toolchains/" + id
        if fm.fileExists(atPath: final + "/root") { return final + "/root" }
        let staging = stateDirectory + "/toolchains/.staging-" + UUID().uuidString
        let root = staging + "/root"
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        for file in tree.files {
            try SandboxTree.place(file: file.path, from: file.path, under: root, executable: file.executable)
        }
        for link in tree.symlinks { try SandboxTree.place(symlink: link, under: root) }
        do {
            try fm.moveItem(atPath: staging, toPath: final)
        } catch {
            try? fm.removeItem(atPath: staging)
            guard fm.fileExists(atPath: final + "/root") else { throw error }
        }
        return final + "/root"
    }

    private func searchPath(_ name: String) -> String? {
        for dir in (Posix.environment("PATH") ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = dir + "/" + name
            if Posix.isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    private func sharedLibraries(of path: String) throws -> [String] {
        let output = try capture("/usr/bin/ldd", [path])
        var result: [String] = []
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if let arrow = parts.firstIndex(of: "=>"), arrow + 1 < parts.count, parts[arrow + 1].hasPrefix("/") {
                result.append(String(parts[arrow + 1]))
            } else if let first = parts.first, first.hasPrefix("/") || first.hasPrefix("\t/") {
                result.append(first.trimmingCharacters(in: .whitespaces))
            }
        }
        return result
    }

    private func capture(_ program: String, _ arguments: [String]) throws -> String {
        let out = NSTemporaryDirectory() + "swlaunchd-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        guard let status = Spawn.run(program, [program] + arguments, stdoutPath: out, stderrPath: "/dev/null"), status == 0,
              let bytes = Posix.readFile(out) else {
            throw ToolchainError(compiler: program, reason: "\(program) \(arguments.joined(separator: " ")) failed")
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
