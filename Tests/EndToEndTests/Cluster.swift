import Foundation
import Launch
import Synchronization
import SystemSupport
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// A real scheduler and real daemons on loopback, started from the package's built executables.
final class TestCluster: @unchecked Sendable {
    let directory: String
    let binaries: String
    private(set) var schedulerPort = 0
    /// The standby scheduler's port, when the cluster has one (daemons get `--scheduler primary,standby`).
    private(set) var standbyPort: Int?
    var pids: [String: pid_t] = [:]
    var helperPorts: [Int] = []
    /// The client daemon's socket (a `--no-remote` daemon, so every distributed job runs on a helper).
    var clientSocket: String { directory + "/client.sock" }

    static func builtBinaries() -> String {
        let exe = Posix.realPath("/proc/self/exe") ?? ""
        var dir = String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)])
        // swift-testing may run inside <bin>/<package>.xctest
        while !dir.isEmpty, !Posix.isExecutableFile(dir + "/swlaunch") {
            guard let slash = dir.lastIndex(of: "/") else { break }
            dir = String(dir[..<slash])
        }
        return dir
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `helperPrefix` runs each helper daemon through another command (for example one that hides the
    /// helper's own compilers), which must end by exec'ing the arguments that follow it.
    /// `helperArguments` are added to every helper's command line.
    /// The cluster key every process of this cluster holds (`--key-file`), when it has one.
    let keyFile: String?

    /// Arguments added to the client daemon's command line.
    let clientArguments: [String]

    /// Whether a standby scheduler runs beside the primary.
    let hasStandby: Bool

    /// The scheduler's dashboard port, when the cluster serves one (`http: true`).
    private(set) var httpPort: Int?
    /// The scheduler's job history file (in the cluster's folder).
    var historyPath: String { directory + "/scheduler-history.sqlite" }

    init(helpers: Int, helperPrefix: [String] = [], helperArguments: [String] = [], keyFile: String? = nil,
         sharedDirectory: Bool = false, clientArguments: [String] = [], standby: Bool = false, http: Bool = false) throws {
        self.keyFile = keyFile
        wantsHTTP = http
        hasStandby = standby
        self.clientArguments = clientArguments
        let directory = NSTemporaryDirectory() + "swlaunch-e2e-" + UUID().uuidString.prefix(8)
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        scratchDirectories.withLock { $0.append(directory) }
        // Daemons that run as another user (the unprivileged helper) make their state directories here.
        if sharedDirectory { chmod(directory, 0o1777) }
        binaries = Self.builtBinaries()
        // Free ports are picked, released and then bound by the daemons, so a concurrent suite can take
        // one in between: start again on fresh ports when the cluster does not come up.
        var failures: [String] = []
        for _ in 1...3 {
            do {
                try startAll(helpers: helpers, helperPrefix: helperPrefix, helperArguments: helperArguments)
                try waitForHosts(helpers + 1)
                return
            } catch {
                failures.append("\(error)\n" + ["scheduler", "helper1", "client"].map { "--- \($0):\n" + String(log($0).suffix(1500)) }.joined(separator: "\n"))
                for name in Array(pids.keys) { stop(name) }
                helperPorts = []
            }
        }
        throw TestClusterError(failures.joined(separator: "\n\n"))
    }

    private let wantsHTTP: Bool

    /// The scheduler's command line: its port, its history in the cluster's folder, the dashboard when wanted.
    private var schedulerArguments: [String] {
        ["--listen", "127.0.0.1:\(schedulerPort)", "--log-level", "debug", "--history", historyPath]
            + (httpPort.map { ["--http", "127.0.0.1:\($0)"] } ?? []) + (keyFile.map { ["--key-file", $0] } ?? [])
    }

    private func startAll(helpers: Int, helperPrefix: [String], helperArguments: [String]) throws {
        schedulerPort = Self.freePort()
        if wantsHTTP { httpPort = Self.freePort() }
        let key = keyFile.map { ["--key-file", $0] } ?? []
        try start("scheduler", binaries + "/swlaunch-scheduler", schedulerArguments)
        var schedulers = "127.0.0.1:\(schedulerPort)"
        if hasStandby {
            let port = Self.freePort()
            standbyPort = port
            schedulers += ",127.0.0.1:\(port)"
            try start("standby", binaries + "/swlaunch-scheduler", ["--listen", "127.0.0.1:\(port)", "--log-level", "debug", "--history", "none"] + key)
        }
        for i in 1...helpers {
            let port = Self.freePort()
            helperPorts.append(port)
            let program = helperPrefix.first ?? binaries + "/swlaunchd"
            let arguments = Array(helperPrefix.dropFirst()) + (helperPrefix.isEmpty ? [] : [binaries + "/swlaunchd"]) + [
                "--name", "helper\(i)", "--listen", "127.0.0.1:\(port)", "--scheduler", schedulers,
                "--socket", directory + "/helper\(i).sock", "--state-dir", directory + "/state-helper\(i)", "--max-jobs", "2",
            ] + key + helperArguments
            helperCommands["helper\(i)"] = (program, arguments)
            try start("helper\(i)", program, arguments)
        }
        try start("client", binaries + "/swlaunchd", [
            "--name", "client", "--no-remote", "--scheduler", schedulers,
            "--socket", clientSocket, "--state-dir", directory + "/state-client",
        ] + key + clientArguments)
    }

    func start(_ name: String, _ program: String, _ arguments: [String], stdoutPath: String? = nil,
               environment: [String: String] = [:]) throws {
        var env: [String]?
        if !environment.isEmpty {
            env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        }
        guard let pid = Spawn.start(program, [program] + arguments, stdoutPath: stdoutPath ?? directory + "/\(name).out",
                                    stderrPath: directory + "/\(name).log", environment: env) else {
            throw TestClusterError("cannot start \(program)")
        }
        pids[name] = pid
        startedProcesses.withLock { $0.append(pid) }
        registerCleanupOnce
    }

    /// How each helper was started, for ``restartHelper(_:signal:)``.
    private var helperCommands: [String: (program: String, arguments: [String])] = [:]

    /// Stops a helper with `signal` and starts it again on the same port and state; returns once it accepts
    /// connections again.
    func restartHelper(_ name: String, signal: Int32 = SIGTERM) throws {
        guard let (program, arguments) = helperCommands[name], let index = Int(name.dropFirst("helper".count)) else {
            throw TestClusterError("no helper \(name)")
        }
        stop(name, signal: signal)
        rename(directory + "/\(name).log", directory + "/\(name).log.1")
        try start(name, program, arguments)
        for _ in 0..<200 {
            if (try? RawPeer(port: helperPorts[index - 1], timeoutSeconds: 1)) != nil { return }
            usleep(50_000)
        }
        throw TestClusterError("\(name) did not listen again")
    }

    /// Stops the scheduler and starts it again on the same port (daemons reconnect on their own).
    func restartScheduler(stopped: Bool = false) throws {
        if !stopped { stop("scheduler") }
        // The earlier run's log stays beside the new one, for a failure's message.
        rename(directory + "/scheduler.log", directory + "/scheduler.log.1")
        try start("scheduler", binaries + "/swlaunch-scheduler", schedulerArguments)
    }

    /// Waits for a process started with ``start(_:_:_:stdoutPath:environment:)`` to end; its exit status.
    func wait(_ name: String) -> Int32 {
        guard let pid = pids.removeValue(forKey: name) else { return -1 }
        let status = Spawn.wait(pid)
        startedProcesses.withLock { $0.removeAll { $0 == pid } }
        return status
    }

    func stop(_ name: String, signal: Int32 = SIGTERM) {
        guard let pid = pids.removeValue(forKey: name) else { return }
        kill(pid, signal)
        _ = Spawn.wait(pid)
        // Reaped: its pid may be reused, so the exit handler must not signal it again.
        startedProcesses.withLock { $0.removeAll { $0 == pid } }
    }

    func ask(_ message: Message, socket: String? = nil) throws -> String {
        let connection = try DaemonConnection(path: socket ?? clientSocket, role: .tool, timeoutSeconds: 10)
        try connection.send(message)
        switch try connection.receive() {
        case let .stats(json), let .status(json), let .history(json): return json
        case let other: throw TestClusterError("unexpected reply \(other)")
        }
    }

    func stats(socket: String? = nil) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try ask(.statsRequest(reset: false), socket: socket).utf8)) as? [String: Any] ?? [:]
    }

    func waitForHosts(_ count: Int, seconds: Int = 30) throws {
        for _ in 0..<(seconds * 20) {
            if let json = try? ask(.statusRequest),
               let hosts = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["hosts"] as? [Any],
               hosts.count == count {
                return
            }
            usleep(50_000)
        }
        throw TestClusterError("cluster did not come up; logs in \(directory)")
    }

    func isAlive(_ name: String) -> Bool {
        guard let pid = pids[name] else { return false }
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: directory + "/\(name).log", encoding: .utf8)) ?? ""
    }

    deinit {
        for name in Array(pids.keys) { stop(name) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Every daemon a test started, ended when the test process exits (static clusters are never deallocated).
let startedProcesses = Mutex<[pid_t]>([])
let scratchDirectories = Mutex<[String]>([])
let registerCleanupOnce: Void = {
    atexit {
        for pid in startedProcesses.withLock({ $0 }) {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        for directory in scratchDirectories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: directory) }
    }
}()

struct TestClusterError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What one compile produced: everything a build could observe.
struct CompileOutcome: Equatable {
    var status: Int32
    var stdout: String
    var stderr: String
    var files: [String: [UInt8]]
}

/// Runs a command in `directory` and collects its status, output and the named files (then removes them).
func runCompile(_ argv: [String], in directory: String, outputs: [String], environment: [String: String] = [:]) throws -> CompileOutcome {
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    let out = directory + "/.stdout", err = directory + "/.stderr"
    guard let program = argv[0].hasPrefix("/") ? argv[0] : CompilerLocator().locate(argv[0]) else {
        throw TestClusterError("\(argv[0]) not found on PATH")
    }
    guard let status = Spawn.run(program, argv, stdoutPath: out, stderrPath: err,
                                 environment: env.map { "\($0.key)=\($0.value)" }, workingDirectory: directory) else {
        throw TestClusterError("cannot run \(argv)")
    }
    var files: [String: [UInt8]] = [:]
    for output in outputs {
        let path = output.hasPrefix("/") ? output : directory + "/" + output
        if let bytes = Posix.readFile(path) { files[output] = bytes }
        unlink(path)
    }
    let outcome = CompileOutcome(status: status, stdout: String(decoding: Posix.readFile(out) ?? [], as: UTF8.self),
                                 stderr: String(decoding: Posix.readFile(err) ?? [], as: UTF8.self), files: files)
    unlink(out)
    unlink(err)
    return outcome
}

/// Sends raw bytes to a TCP port on loopback (or a Unix socket) and reports whether the peer closed the connection.
func sendRaw(_ bytes: [UInt8], port: Int? = nil, unixPath: String? = nil, halfClose: Bool = false) -> Bool {
    let fd: Int32
    if let port {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        guard withUnsafePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }) == 0 else {
            close(fd); return false
        }
    } else {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(unixPath!.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.enumerated() { raw[i] = b } }
        guard withUnsafePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }) == 0 else {
            close(fd); return false
        }
    }
    defer { close(fd) }
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if halfClose { shutdown(fd, Int32(SHUT_WR)) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n == 0 { return true }
        if n < 0 { return errno == ECONNRESET }
    }
}
