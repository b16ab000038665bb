/// Message kinds on the wire. Values are stable across versions; never reuse one.
public enum MessageKind: UInt8, Sendable, CaseIterable {
    case hello = 1, helloAck = 2, error = 3, keepAlive = 4
    // launcher <-> local daemon
    case acquireLocal = 10, granted = 11, submit = 12, result = 13, runLocally = 14, statsRequest = 15, stats = 16
    case scanNeeded = 17
    // daemon <-> scheduler
    case register = 20, heartbeat = 21, hostRequest = 22, hostGrant = 23, noHost = 24, jobDone = 25
    case statusRequest = 26, status = 27
    case jobStarted = 28
    /// scheduler -> daemon (version 9)
    case giveBack = 29
    // monitors (scheduler, or the local daemon relaying it) and the scheduler's job history
    case subscribe = 40, event = 41, historyRequest = 42, history = 43
    // daemon <-> helper daemon
    case compile = 30, needBlobs = 31, blobs = 32, needEnvironment = 33, environment = 34, jobFailed = 35
}

/// Who opens a connection; sent in the handshake.
public enum PeerRole: UInt8, Sendable {
    case launcher = 1, daemon = 2, monitor = 3, tool = 4
}

/// First message on every connection. Authentication fields are reserved for a later protocol revision:
/// today `authScheme` is `"none"` and `authToken` is empty.
public struct Hello: Sendable, Equatable {
    public var magic: [UInt8] = protocolMagic
    public var version: UInt32 = protocolVersion
    public var role: PeerRole
    public var name: String
    public var authScheme: String = "none"
    public var authToken: [UInt8] = []

    public init(role: PeerRole, name: String) {
        self.role = role
        self.name = name
    }
}

public struct HelloAck: Sendable, Equatable {
    public var version: UInt32
    public var name: String
    public init(version: UInt32 = protocolVersion, name: String) {
        self.version = version
        self.name = name
    }
}

/// Per-job timings in microseconds, recorded from the start for monitors and benchmarks.
public struct JobTimings: Sendable, Equatable {
    public var queue: UInt64 = 0
    public var preprocess: UInt64 = 0
    public var transfer: UInt64 = 0
    public var compile: UInt64 = 0
    public init(queue: UInt64 = 0, preprocess: UInt64 = 0, transfer: UInt64 = 0, compile: UInt64 = 0) {
        self.queue = queue
        self.preprocess = preprocess
        self.transfer = transfer
        self.compile = compile
    }
}

/// A compile the launcher asks its daemon to distribute.
///
/// The remote side reproduces the client's view: every file the preprocessor read, at the same path,
/// the same working directory, the same arguments. Outputs are the files to bring back.
public struct JobRequest: Sendable, Equatable {
    /// Absolute path of the real compiler on the client.
    public var compiler: String
    /// Arguments after the compiler, with response files expanded.
    public var arguments: [String]
    public var workingDirectory: String
    /// `NAME=value` pairs that change what the compiler prints or produces.
    public var environment: [String]
    /// Files the preprocessor read, as the compiler named them (relative to the working directory or absolute).
    public var inputs: [String]
    /// Directories the compiler searches, created empty on the helper so search order stays the same.
    public var directories: [String]
    /// Files the compile writes (object first, then dependency file).
    public var outputs: [String]
    public var preprocessMicros: UInt64
    /// `platform=/path/to/environment.tar.zst` pairs from the project's `[toolchains]` for this compiler: the
    /// environment helpers of that platform run instead of the client's own compiler.
    public var environments: [String]
    /// The source's language as the driver sees it (`c`, `c++`, `objective-c`, `objective-c++`).
    public var language: String
    /// The source file, when the daemon is to find the inputs itself (its include scan; `inputs` is then empty).
    /// A daemon that cannot answers `scanNeeded`, and the launcher scans with the compiler and submits again.
    public var source: String

    public init(compiler: String, arguments: [String], workingDirectory: String, environment: [String],
                inputs: [String], directories: [String], outputs: [String], preprocessMicros: UInt64,
                environments: [String] = [], language: String = "", source: String = "") {
        self.source = source
        self.environments = environments
        self.language = language
        self.compiler = compiler
        self.arguments = arguments
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.inputs = inputs
        self.directories = directories
        self.outputs = outputs
        self.preprocessMicros = preprocessMicros
    }
}

/// A file the compile wrote, returned to the client.
public struct OutputFile: Sendable, Equatable {
    public var path: String
    public var contents: [UInt8]
    public init(path: String, contents: [UInt8]) {
        self.path = path
        self.contents = contents
    }
}

/// The outcome of a compile that ran: exactly what the compiler printed and wrote.
public struct JobResult: Sendable, Equatable {
    public var exitStatus: Int32
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var outputs: [OutputFile]
    public var host: String
    public var timings: JobTimings

    public init(exitStatus: Int32, stdout: [UInt8], stderr: [UInt8], outputs: [OutputFile], host: String, timings: JobTimings) {
        self.exitStatus = exitStatus
        self.stdout = stdout
        self.stderr = stderr
        self.outputs = outputs
        self.host = host
        self.timings = timings
    }
}

/// A daemon as it announces itself to the scheduler.
public struct HostInfo: Sendable, Equatable {
    public var name: String
    /// Address and port where peers reach its job listener; empty address when it takes no remote jobs.
    public var address: String
    public var port: UInt32
    public var maxJobs: UInt32
    /// Platform its sandboxes can run, for example `x86_64-linux`.
    public var platform: String
    public var acceptsRemote: Bool
    /// Toolchain ids it can run without fetching.
    public var toolchains: [String]
    /// Why it takes no remote jobs, when it does not (`--no-remote`, no sandbox ...).
    public var note: String
    /// The daemon's stable identity (random, kept in its state folder): a reconnect of the same daemon replaces
    /// its previous connection, another daemon with the same name is refused. Version 4.
    public var id: String
    /// The processors its jobs run on (its affinity within its cgroup's quota), 0 when not known: with more slots
    /// than processors, jobs share them. Version 7.
    public var cores: UInt32

    public init(name: String, address: String, port: UInt32, maxJobs: UInt32, platform: String, acceptsRemote: Bool,
                toolchains: [String], note: String = "", id: String = "", cores: UInt32 = 0) {
        self.id = id
        self.cores = cores
        self.name = name
        self.address = address
        self.port = port
        self.maxJobs = maxJobs
        self.platform = platform
        self.acceptsRemote = acceptsRemote
        self.toolchains = toolchains
        self.note = note
    }
}

/// A toolchain environment a job can run in, and the platform of helpers that can run it.
public struct ToolchainChoice: Sendable, Equatable {
    public var platform: String
    /// The environment's id (SHA-256 of its contents).
    public var toolchain: String
    public init(platform: String, toolchain: String) {
        self.platform = platform
        self.toolchain = toolchain
    }
}

public struct HostRequest: Sendable, Equatable {
    public var id: UInt64
    /// The environments the job can run in, one per helper platform (the client's own compiler for its own
    /// platform, and what `[toolchains]` maps the compiler to for others).
    public var choices: [ToolchainChoice]
    /// Hosts already tried for this job.
    public var exclude: [String]
    public init(id: UInt64, choices: [ToolchainChoice], exclude: [String]) {
        self.id = id
        self.choices = choices
        self.exclude = exclude
    }
}

public struct HostGrant: Sendable, Equatable {
    public var id: UInt64
    public var name: String
    public var address: String
    public var port: UInt32
    /// Which of the request's choices the host runs (its platform's).
    public var choice: ToolchainChoice
    /// The host's measured speed, in input bytes per microsecond of compile time; 0 when not measured yet.
    /// The client sets each attempt's deadline from it.
    public var speed: Double
    public init(id: UInt64, name: String, address: String, port: UInt32, choice: ToolchainChoice, speed: Double = 0) {
        self.id = id
        self.name = name
        self.address = address
        self.port = port
        self.choice = choice
        self.speed = speed
    }
}

/// Why a helper did not return the compiler's verdict on a job.
public enum FailureClass: UInt8, Sendable, Equatable {
    /// The helper could not run the job (set-up, sandbox, signal, limit, disk, missing input or output): another
    /// helper or a local compile will do.
    case infrastructure = 1
    /// The job itself cannot run remotely (a compiler the environment cannot run, an option the helper's policy
    /// refuses, an environment that does not unpack): it compiles locally, and no helper is blamed.
    case job = 2
}

/// A helper's word that a job did not run to the compiler's verdict, with the class that decides what the
/// client does next.
public struct JobFailure: Sendable, Equatable, Error, CustomStringConvertible {
    public var failureClass: FailureClass
    /// A short stable name for stats (`no-space`, `signal`, `sandbox`, `limit`, `missing-output`, `policy`, ...).
    public var code: String
    /// The details, for logs.
    public var reason: String
    public init(_ failureClass: FailureClass, _ code: String, _ reason: String) {
        self.failureClass = failureClass
        self.code = code
        self.reason = reason
    }
    public var description: String { "\(code): \(reason)" }

    /// The code of a job its helper gave back before starting it (the scheduler's `giveBack`, version 9): an
    /// infrastructure failure that blames no host; its client reports ``JobOutcome/moved`` and asks for a host again.
    public static let movedCode = "moved"
}

/// How a job, or one attempt of it, ended (``JobReport/outcome``).
public enum JobOutcome: UInt8, Sendable, CaseIterable {
    /// The helper gave the compiler's verdict.
    case remote = 1
    /// An infrastructure failure of the attempt: the host is blamed and the job tried elsewhere or locally.
    case failed = 2
    /// The attempt failed for the job's own reasons (policy, environment): no host is blamed.
    case refused = 3
    /// The job compiled on its client (``JobReport/reason`` says why); no host, no grant.
    case local = 4
    /// A grant its client did not use (version 8): asked for while the job was prepared, which then failed or
    /// chose otherwise, or withdrawn. The slot is free again; nothing is learnt of the host.
    case unused = 5
    /// The helper gave the job back before compiling it, for a host with an idle processor (version 9; the
    /// scheduler's ``Message/giveBack``): the slot is free, nothing is learnt, and the job is tried elsewhere.
    case moved = 6

    /// The name in events, history and metrics.
    public var name: String {
        switch self {
        case .remote: "remote"
        case .failed: "failed"
        case .refused: "refused"
        case .local: "local"
        case .unused: "unused"
        case .moved: "moved"
        }
    }
}

/// What a client daemon tells the scheduler after each remote attempt, and after each job it compiled locally:
/// speed on success, back-off on an infrastructure failure, and the figures monitors and history show.
public struct JobReport: Sendable, Equatable {
    /// The host request's id on the reporting connection (0 for a local job).
    public var id: UInt64
    public var outcome: JobOutcome
    /// The helper (empty for a local job).
    public var host: String
    public var compileMicros: UInt64
    public var inputBytes: UInt64
    /// The job's source file as its command names it (for monitors).
    public var source: String
    /// A fallback reason for a local job, a failure code for a failed or refused attempt.
    public var reason: String
    /// Queue, preprocessing, transfer and compile time of a remote job, in microseconds.
    public var timings: JobTimings
    /// Contents, environments and the file list sent to the helper (before compression on the link).
    public var bytesOut: UInt64
    /// Outputs, stdout and stderr received.
    public var bytesIn: UInt64

    public init(id: UInt64 = 0, outcome: JobOutcome, host: String, compileMicros: UInt64 = 0, inputBytes: UInt64 = 0,
                source: String = "", reason: String = "", timings: JobTimings = JobTimings(), bytesOut: UInt64 = 0, bytesIn: UInt64 = 0) {
        self.id = id
        self.outcome = outcome
        self.host = host
        self.compileMicros = compileMicros
        self.inputBytes = inputBytes
        self.source = source
        self.reason = reason
        self.timings = timings
        self.bytesOut = bytesOut
        self.bytesIn = bytesIn
    }

    public init(host: String, succeeded: Bool, compileMicros: UInt64, inputBytes: UInt64, jobFault: Bool = false) {
        self.init(outcome: succeeded ? .remote : jobFault ? .refused : .failed, host: host, compileMicros: compileMicros, inputBytes: inputBytes)
    }

    public var succeeded: Bool { outcome == .remote }
    /// The attempt failed for a reason of the job's own: the host is not to blame (no back-off).
    public var jobFault: Bool { outcome == .refused }
}

/// One file of a remote job, by content.
public struct FileEntry: Sendable, Equatable {
    /// Absolute, normalized path on the client.
    public var path: String
    /// SHA-256 of the contents, lowercase hex.
    public var hash: String
    public var executable: Bool
    public init(path: String, hash: String, executable: Bool) {
        self.path = path
        self.hash = hash
        self.executable = executable
    }
}

public struct SymlinkEntry: Sendable, Equatable {
    public var path: String
    /// Always relative on the wire and in environments: helpers refuse absolute targets.
    public var target: String
    public init(path: String, target: String) {
        self.path = path
        self.target = target
    }

    /// The same link with an absolute target rewritten relative to the link's directory (`/a/b/c -> /x/y` becomes
    /// `/a/b/c -> ../../x/y`), which means the same thing in a tree rooted where `/` was.
    public var relativized: SymlinkEntry {
        guard target.hasPrefix("/") else { return self }
        let depth = path.split(separator: "/").count - 1
        let rest = target.split(separator: "/").joined(separator: "/")
        let up = Array(repeating: "..", count: max(depth, 0)).joined(separator: "/")
        let relative = up.isEmpty ? (rest.isEmpty ? "." : rest) : (rest.isEmpty ? up : up + "/" + rest)
        return SymlinkEntry(path: path, target: relative)
    }
}

/// A job as one daemon sends it to a helper daemon.
public struct RemoteJob: Sendable, Equatable {
    public var toolchain: String
    public var compiler: String
    public var arguments: [String]
    public var workingDirectory: String
    public var environment: [String]
    public var files: [FileEntry]
    public var symlinks: [SymlinkEntry]
    public var directories: [String]
    public var outputs: [String]
    /// The bytes of the job's input files (version 10): how a helper guesses which of the jobs waiting for its
    /// processor compiles longest, to start that one first. 0: not known.
    public var inputBytes: UInt64

    public init(toolchain: String, compiler: String, arguments: [String], workingDirectory: String, environment: [String],
                files: [FileEntry], symlinks: [SymlinkEntry], directories: [String], outputs: [String], inputBytes: UInt64 = 0) {
        self.toolchain = toolchain
        self.compiler = compiler
        self.arguments = arguments
        self.workingDirectory = workingDirectory
        self.environment = environment
        self.files = files
        self.symlinks = symlinks
        self.directories = directories
        self.outputs = outputs
        self.inputBytes = inputBytes
    }
}

public struct Blob: Sendable, Equatable {
    public var hash: String
    public var contents: [UInt8]
    public init(hash: String, contents: [UInt8]) {
        self.hash = hash
        self.contents = contents
    }
}

/// Every message of the protocol.
public enum Message: Sendable, Equatable {
    case hello(Hello)
    case helloAck(HelloAck)
    case error(String)
    case keepAlive
    case acquireLocal(reason: String)
    case granted
    case submit(JobRequest)
    case result(JobResult)
    case runLocally(reason: String)
    /// The daemon's include scan cannot settle a job's inputs (the reason says why): the launcher scans with the
    /// compiler, holding the local slot the daemon took again for it, and submits the job with its inputs.
    case scanNeeded(reason: String)
    case statsRequest(reset: Bool)
    case stats(json: String)
    case register(HostInfo)
    /// Every 2 s: jobs running for peers, load average, and the environments held (for placement).
    case heartbeat(running: UInt32, load: Double, toolchains: [String])
    case hostRequest(HostRequest)
    case hostGrant(HostGrant)
    case noHost(id: UInt64, reason: String)
    case jobDone(JobReport)
    /// A client began an attempt on the host it was granted (request id): it connected and sent the job.
    case jobStarted(id: UInt64, host: String, source: String)
    /// The scheduler asks a helper with jobs waiting for its processors to give the newest one back whose environment
    /// is among `toolchains`: `host` holds those, has an idle processor and nothing else waits for it (version 9).
    /// The job's client gets `jobFailed` with code `moved` and asks for a host again.
    case giveBack(host: String, toolchains: [String])
    case statusRequest
    case status(json: String)
    /// A monitor asks for the cluster's event stream (to the scheduler, or to the local daemon, which relays it).
    case subscribe
    /// One cluster event as JSON (``ClusterEvent`` in Records): a snapshot first, then changes as they happen.
    case event(json: String)
    /// The job history of the last `seconds` (the scheduler's SQLite history), as JSON.
    case historyRequest(seconds: UInt64)
    case history(json: String)
    case compile(RemoteJob)
    case needBlobs([String])
    case blobs([Blob])
    /// A helper lacks the job's toolchain environment (by id) and asks the submitting daemon for it.
    case needEnvironment(id: String)
    /// A toolchain environment archive (`.tar.zst`, sent as it is: already compressed).
    case environment(id: String, archive: [UInt8])
    /// A helper's answer instead of `result` when the job did not run to the compiler's verdict.
    case jobFailed(JobFailure)

    public var kind: MessageKind {
        switch self {
        case .hello: .hello
        case .helloAck: .helloAck
        case .error: .error
        case .keepAlive: .keepAlive
        case .acquireLocal: .acquireLocal
        case .granted: .granted
        case .submit: .submit
        case .result: .result
        case .runLocally: .runLocally
        case .scanNeeded: .scanNeeded
        case .statsRequest: .statsRequest
        case .stats: .stats
        case .register: .register
        case .heartbeat: .heartbeat
        case .hostRequest: .hostRequest
        case .hostGrant: .hostGrant
        case .noHost: .noHost
        case .jobDone: .jobDone
        case .jobStarted: .jobStarted
        case .giveBack: .giveBack
        case .subscribe: .subscribe
        case .event: .event
        case .historyRequest: .historyRequest
        case .history: .history
        case .statusRequest: .statusRequest
        case .status: .status
        case .compile: .compile
        case .needBlobs: .needBlobs
        case .blobs: .blobs
        case .needEnvironment: .needEnvironment
        case .environment: .environment
        case .jobFailed: .jobFailed
        }
    }
}

/// The files a compile writes, by role. On the wire (``JobRequest/outputs``, ``RemoteJob/outputs``) they are a
/// list: the object first, then the dependency file when the compile writes one.
public struct JobOutputs: Sendable, Equatable {
    public var object: String
    public var dependencyFile: String?

    public init(object: String, dependencyFile: String?) {
        self.object = object
        self.dependencyFile = dependencyFile
    }

    /// The roles of a wire list; nil for an empty list.
    public init?(_ list: [String]) {
        guard let object = list.first else { return nil }
        self.init(object: object, dependencyFile: list.count > 1 ? list[1] : nil)
    }

    /// The wire list.
    public var list: [String] { [object] + (dependencyFile.map { [$0] } ?? []) }
}

extension JobRequest {
    /// ``outputs`` by role.
    public var namedOutputs: JobOutputs? { JobOutputs(outputs) }
}

extension RemoteJob {
    /// ``outputs`` by role.
    public var namedOutputs: JobOutputs? { JobOutputs(outputs) }
}
