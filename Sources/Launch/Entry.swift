import CompilerArgs
import Config
#if canImport(Glibc)
import Glibc
#endif

/// The launcher's command-line contract: `swlaunch <compiler> <args...>`, or a masquerade link named like a
/// compiler. Returns the exit status; runs the compiler by exec where it can.
public func launcherMain(_ argv: [String]) -> Int32 {
    let invokedAs = baseName(of: argv.first ?? "swlaunch")
    let locator = CompilerLocator()
    let compilerName: String
    let arguments: [String]
    if invokedAs == "swlaunch" {
        guard argv.count >= 2 else {
            Launcher.fail("usage: swlaunch <compiler> [args...]  (or: swlaunch stats|status|--help)")
            return 2
        }
        compilerName = argv[1]
        arguments = Array(argv.dropFirst(2))
    } else {
        compilerName = invokedAs
        arguments = Array(argv.dropFirst())
    }
    // A compiler path that is itself the launcher (a masquerade link that CMake found on PATH and then was given
    // the launcher too) is not wrapped twice: the real compiler of that name is looked up further down PATH.
    let wrappedTwice = compilerName.utf8.contains(UInt8(ascii: "/")) && locator.isLauncher(compilerName)
    guard let compiler = locator.locate(wrappedTwice ? baseName(of: compilerName) : compilerName) else {
        Launcher.fail("compiler '\(compilerName)' not found on PATH (the launcher itself is skipped)")
        return 127
    }
    // ccache in front (`swlaunch ccache gcc ...`, or a CMake launcher list "swlaunch;ccache"): ccache runs first and
    // hands only its misses to swlaunch through CCACHE_PREFIX, so nothing is wrapped twice and a hit costs no
    // remote compile. A CCACHE_PREFIX of the user's own stands.
    if baseName(of: compilerName) == "ccache" {
        if Posix.environment("CCACHE_PREFIX") == nil, let launcher = Posix.realPath("/proc/self/exe") {
            setenv("CCACHE_PREFIX", launcher, 1)
        }
        let code = Posix.exec(compiler, [compiler] + arguments)
        Launcher.fail("cannot run \(compiler): \(Posix.errorText(code))")
        return 127
    }
    if let disable = Posix.environment("SWLAUNCH_DISABLE"), !disable.isEmpty, disable != "0" {
        let code = Posix.exec(compiler, [compiler] + arguments)
        Launcher.fail("cannot run \(compiler): \(Posix.errorText(code))")
        return 127
    }
    let config: Configuration
    do {
        config = try Configuration.load(workingDirectory: Posix.currentDirectory() ?? "/", environment: Posix.environment)
    } catch {
        for problem in error.errors { Launcher.fail(problem.description) }
        return 1
    }
    var launcher = Launcher(compilerPath: compiler, compilerName: compilerName, arguments: arguments,
                            socketPath: config.string("daemon.socket") ?? DaemonConnection.defaultSocketPath())
    if config.failsOnInfrastructureErrors, let source = config.settings["jobs.fallback"]?.source {
        launcher.failurePolicy = .fail(setting: source.description)
    }
    launcher.logFile = config.string("log.file")
    launcher.daemonScan = config.string("jobs.scan") != "compiler"
    launcher.environments = config.toolchains(for: baseName(of: compilerName)).sorted { $0.key < $1.key }.map { $0.key + "=" + $0.value }
    return launcher.run()
}
