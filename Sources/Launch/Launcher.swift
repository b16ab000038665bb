#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CompilerArgs
import Wire

/// Environment variables that change what a compiler prints or produces; forwarded to the helper.
public let forwardedEnvironment = [
    "LANG", "LC_ALL", "LC_MESSAGES", "LC_CTYPE", "GCC_COLORS", "GCC_URLS", "TERM", "COLUMNS", "TZ",
    "SOURCE_DATE_EPOCH", "CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH",
]

/// Include path variables, which the daemon's include scan does not follow: with one set, the compiler scans.
let includePathVariables = ["CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH", "OBJC_INCLUDE_PATH", "OBJCPLUS_INCLUDE_PATH"]

/// Environment variables that make a compile depend on local state we do not ship; they force a local run.
public let localOnlyEnvironment = ["COMPILER_PATH", "GCC_EXEC_PREFIX", "DEPENDENCIES_OUTPUT", "SUNPRO_DEPENDENCIES"]

/// One run of the launcher: classify, scan, hand to the daemon, reproduce the result, or run the compiler.
public struct Launcher {
    public let compilerPath: String
    /// Arguments after the compiler, as given.
    public let arguments: [String]
    /// The compiler as the build named it (which can tell its driver family when the path does not).
    public let compilerName: String
    public let socketPath: String
    /// What an infrastructure failure does: compile locally (the default) or fail the compile.
    public var failurePolicy: FailurePolicy = .compileLocally
    /// Where fallback reasons are appended, one line each (`log.file`).
    public var logFile: String?
    /// `platform=archive` pairs from the project's `[toolchains]` for this compiler.
    public var environments: [String] = []
    /// Whether the daemon's include scan is tried before the compiler's (`jobs.scan`).
    public var daemonScan = true

    public enum FailurePolicy: Equatable {
        case compileLocally
        /// Fail with an error naming the reason and the setting that asked for it.
        case fail(setting: String)
    }

    public init(compilerPath: String, compilerName: String, arguments: [String], socketPath: String = DaemonConnection.defaultSocketPath()) {
        self.compilerPath = compilerPath
        self.compilerName = compilerName
        self.arguments = arguments
        self.socketPath = socketPath
    }

    /// Runs the compile and returns the exit status to exit with; may not return (exec).
    public func run() -> Int32 {
        let expanded: [String]
        do {
            expanded = try expandResponseFiles(arguments, read: Posix.readFile)
        } catch {
            return runLocally(reason: "unreadable-response-file")
        }
        for name in localOnlyEnvironment where Posix.environment(name) != nil {
            return runLocally(reason: "environment-\(name)")
        }
        switch classify(expanded) {
        case let .local(reason):
            return runLocally(reason: reason)
        case let .distribute(compile):
            return distribute(compile, expandedArguments: expanded)
        }
    }

    /// Takes a local slot from the daemon (when one runs) and execs the compiler, which inherits the
    /// connection so the slot is held until the compiler exits.
    func runLocally(reason: String) -> Int32 {
        guard let connection = try? DaemonConnection(path: socketPath, inheritable: true) else {
            return execLocally(connection: nil)
        }
        do {
            try connection.send(.acquireLocal(reason: reason))
            _ = try connection.receive()
        } catch {
            return execLocally(connection: nil)
        }
        return execLocally(connection: connection)
    }

    func execLocally(connection: DaemonConnection?) -> Int32 {
        // argv[0] is the full path: a gcc driver finds its installation from argv[0], and a bare name
        // would lead it through PATH to a masquerade link.
        let code = Posix.exec(compilerPath, [compilerPath] + arguments)
        _ = connection
        Launcher.fail("cannot run \(compilerPath): \(Posix.errorText(code))")
        return 127
    }

    func distribute(_ compile: DistributableCompile, expandedArguments: [String]) -> Int32 {
        guard let cwd = Posix.currentDirectory() else { return runLocally(reason: "no-working-directory") }
        // The daemon's include scan runs nothing here; the compiler's, when it must, holds a local slot.
        let scanInDaemon = daemonScan && !isClang && !includePathVariables.contains(where: { Posix.environment($0) != nil })
        let connection: DaemonConnection
        do {
            connection = try DaemonConnection(path: socketPath, inheritable: true)
            if !scanInDaemon {
                try connection.send(.acquireLocal(reason: "preprocess"))
                _ = try connection.receive()
            }
        } catch {
            return fallBack(reason: "no-daemon (\(error))", source: compile.source, connection: nil)
        }

        let start = Posix.nowMicros()
        var remoteArguments = expandedArguments
        if Posix.isTerminal(2), !expandedArguments.contains(where: { $0.hasPrefix("-fdiagnostics-color") || $0.hasPrefix("-fcolor-diagnostics") || $0.hasPrefix("-fno-color-diagnostics") || $0.hasPrefix("-fno-diagnostics-color") }), Posix.environment("TERM") != "dumb" {
            remoteArguments.append(isClang ? "-fcolor-diagnostics" : "-fdiagnostics-color=always")
        }
        var environment: [String] = []
        for name in forwardedEnvironment {
            if let value = Posix.environment(name) { environment.append(name + "=" + value) }
        }
        let outputs = JobOutputs(object: compile.object, dependencyFile: compile.dependencyFile).list
        func request(inputs: [String], source: String) -> JobRequest {
            JobRequest(compiler: compilerPath, arguments: remoteArguments, workingDirectory: cwd, environment: environment,
                       inputs: inputs, directories: compile.includeDirectories, outputs: outputs,
                       preprocessMicros: Posix.nowMicros() - start, environments: environments, language: compile.language.rawValue,
                       source: source)
        }
        var reply: Message?
        // First the daemon's include scan; the compiler's when it cannot tell (the daemon then holds a local slot
        // for it, as for a compile it sends back).
        if scanInDaemon {
            do {
                try connection.send(.submit(request(inputs: [], source: compile.source)))
                reply = try connection.receive()
            } catch {
                return fallBack(reason: lostReason(connection, error), source: compile.source, connection: nil)
            }
            if case .scanNeeded? = reply { reply = nil }
        }
        if reply == nil {
            guard let inputs = scanInputs(compile) else {
                // Still holding the preprocessing slot: report why this compile stays here, then run it.
                try? connection.send(.acquireLocal(reason: "scan-failed"))
                _ = try? connection.receive()
                return execLocally(connection: connection)
            }
            do {
                try connection.send(.submit(request(inputs: inputs, source: "")))
                reply = try connection.receive()
            } catch {
                return fallBack(reason: lostReason(connection, error), source: compile.source, connection: nil)
            }
        }
        switch reply {
        case let .result(result)?:
            return reproduce(result, outputs: outputs)
        case let .runLocally(reason)?:
            // The daemon holds a local slot for us while we compile.
            return fallBack(reason: reason, source: compile.source, connection: connection)
        default:
            return fallBack(reason: "unexpected \(reply.map { "\($0.kind)" } ?? "nothing") from the daemon", source: compile.source, connection: connection)
        }
    }

    /// Why a request to the daemon got no reply: the daemon refused the launcher's hello (`no-daemon`, as when none
    /// listens), or the connection failed after it.
    func lostReason(_ connection: DaemonConnection, _ error: any Error) -> String {
        connection.refusal.map { "no-daemon (refused: \($0))" } ?? "daemon-lost (\(error))"
    }

    /// An infrastructure failure: log it, then compile locally or fail, as configured.
    func fallBack(reason: String, source: String, connection: DaemonConnection?) -> Int32 {
        if let logFile {
            Posix.append(to: logFile, Array("swlaunch: \(source): not distributed: \(reason)\n".utf8))
        }
        if case let .fail(setting) = failurePolicy {
            Launcher.fail("\(source) could not be distributed: \(reason) (jobs.fallback = \"fail\" at \(setting))")
            return 1
        }
        return execLocally(connection: connection)
    }

    var isClang: Bool {
        isClangDriver(compilerPath) || isClangDriver(compilerName)
    }

    /// Runs the preprocessor once, cheaply, and lists every file it read (from line markers). Diagnostics are
    /// discarded: the remote compile prints them exactly as a local compile would.
    func scanInputs(_ compile: DistributableCompile) -> [String]? {
        let dir = Posix.environment("TMPDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((dir + "/swlaunch-scan-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return nil }
        close(fd)
        let scanPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { unlink(scanPath) }
        let mode = isClang ? ["-E", "-frewrite-includes"] : ["-E", "-fdirectives-only"]
        guard Spawn.run(compilerPath, [compilerPath] + compile.scanArguments + mode, stdoutPath: scanPath, stderrPath: "/dev/null") != nil,
              let text = Posix.readFile(scanPath) else { return nil }
        var scanner = LineMarkerScanner()
        text.withUnsafeBufferPointer { scanner.scan($0) }
        var files = scanner.files
        if !files.contains(compile.source) { files.insert(compile.source, at: 0) }
        return files
    }

    /// Writes the outputs and diagnostics exactly as the compiler produced them.
    func reproduce(_ result: JobResult, outputs: [String]) -> Int32 {
        for path in outputs {
            if let contents = result.outputs.first(where: { $0.path == path })?.contents {
                if let code = Posix.writeFileAtomically(path, contents) {
                    Launcher.fail("cannot write \(path): \(Posix.errorText(code))")
                    return 1
                }
            } else {
                Posix.removeFile(path)
            }
        }
        Posix.writeAll(1, result.stdout)
        Posix.writeAll(2, result.stderr)
        return result.exitStatus
    }

    /// Prints a one-line error for something the user must act on.
    public static func fail(_ message: String) {
        Posix.writeAll(2, Array(("swlaunch: error: " + message + "\n").utf8))
    }
}
