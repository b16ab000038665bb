import CompilerArgs
import Foundation
import Synchronization
import SystemSupport
import Toolchain
import Wire

/// Runs a stand-in compiler (an x86_64 cross compiler for an ARM client's native gcc, say) against the client's
/// headers at the client's paths: the client compiler's `#include <...>` folders are named in their order with
/// `-isystem`, ahead of the stand-in's own, which do not exist in the helper's sandbox (the environment holds
/// programs and libraries, no headers) and drop out. gcc's implicit `stdc-predef.h` is then found in the client's
/// folders as the client's compiler finds it, and the stand-in's dependency file is the client compiler's.
final class IncludeTranslation: Sendable {
    /// The client compiler's include directories by the arguments that choose them, with the identity the driver had
    /// (links followed) when it listed them: a driver path pointed at another compiler lists them again.
    private let cache = Mutex<[[String]: (driver: HashJournal.Identity?, directories: [String])]>([:])
    /// Stand-in and client pairs already logged.
    private let announced = Mutex(Set<String>())

    init() {}

    /// Whether `standIn` replaces another gcc-family driver (their names differ).
    static func isNeeded(client: String, standIn: String) -> Bool {
        baseName(of: client) != baseName(of: standIn) && !isClangDriver(client) && !isClangDriver(standIn)
    }

    /// Arguments to append to the job's for the stand-in compiler, or none when the job opts out of the
    /// default directories itself (`-nostdinc`).
    func arguments(for job: JobRequest) throws -> [String] {
        guard !job.arguments.contains("-nostdinc") else { return [] }
        let language = job.language.isEmpty ? "c" : job.language
        let directories = try searchPath(compiler: job.compiler, language: language, options: Self.searchOptions(job.arguments))
        return directories.flatMap { ["-isystem", $0] }
    }

    /// True the first time a pair is seen (to log a stand-in once).
    func firstUse(of standIn: String, for client: String) -> Bool {
        announced.withLock { $0.insert(standIn + "\u{0}" + client).inserted }
    }

    /// Options that change a driver's default include directories.
    static func searchOptions(_ arguments: [String]) -> [String] {
        var options: [String] = []
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            if arg == "-isysroot" || arg == "--sysroot", i + 1 < arguments.count {
                options += [arg, arguments[i + 1]]
                i += 2
                continue
            }
            if arg.hasPrefix("--sysroot=") || arg == "-nostdinc++" || (arg.hasPrefix("-m") && arg.count > 2) { options.append(arg) }
            i += 1
        }
        return options
    }

    /// The client compiler's `#include <...>` search list (`-E -v`), cached.
    func searchPath(compiler: String, language: String, options: [String]) throws -> [String] {
        let key = [compiler, language] + options
        let driver = HashJournal.Identity.following(compiler)
        if let known = cache.withLock({ $0[key] }), known.driver == driver { return known.directories }
        guard let bytes = Spawn.output(compiler, [compiler, "-E", "-v", "-x", language] + options + ["/dev/null"], stream: 2) else {
            throw MappedEnvironmentError(path: compiler, reason: "cannot list its include directories (-E -v)")
        }
        var directories: [String] = []
        var inList = false
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("#include <...> search starts here:") { inList = true; continue }
            if line.hasPrefix("End of search list.") { break }
            if inList, line.hasPrefix(" ") { directories.append(String(line.drop { $0 == " " })) }
        }
        guard !directories.isEmpty else { throw MappedEnvironmentError(path: compiler, reason: "printed no include directories (-E -v)") }
        cache.withLock { $0[key] = (driver, directories) }
        return directories
    }
}
