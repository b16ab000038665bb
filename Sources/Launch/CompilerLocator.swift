/// Finds the real compiler for a launcher invocation, never returning the launcher itself.
public struct CompilerLocator {
    /// The launcher's own executable, resolved, to skip masquerade links that point back at it.
    public let selfPath: String?
    public let searchPath: String

    public init(selfPath: String? = Posix.realPath("/proc/self/exe"), searchPath: String = Posix.environment("PATH") ?? "/usr/bin:/bin") {
        self.selfPath = selfPath
        self.searchPath = searchPath
    }

    /// Resolves `name` (a bare name looked up on PATH, or a path) to an executable that is not the launcher.
    public func locate(_ name: String) -> String? {
        if name.utf8.contains(UInt8(ascii: "/")) {
            guard Posix.isExecutableFile(name), !isLauncher(name) else { return nil }
            return absolute(name)
        }
        for directory in searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let dir = directory.isEmpty ? "." : String(directory)
            let candidate = dir + "/" + name
            if Posix.isExecutableFile(candidate), !isLauncher(candidate) { return absolute(candidate) }
        }
        return nil
    }

    func isLauncher(_ path: String) -> Bool {
        guard let resolved = Posix.realPath(path) else { return false }
        if let selfPath, resolved == selfPath { return true }
        let base = resolved.split(separator: "/").last.map(String.init) ?? resolved
        return base == "swlaunch"
    }

    func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let cwd = Posix.currentDirectory() else { return path }
        return cwd + "/" + path
    }
}
