import ClusterKey
import CompilerArgs
import Foundation
import Logging
import NIOCore
import NIOPosix
import SystemSupport
import Toolchain
import Wire
import WireNIO

/// `swlaunchd`: serves local launchers on a Unix socket and runs jobs for peers in sandboxes.
public final class Daemon: Sendable {
    let config: DaemonConfiguration
    let logger: Logger
    let localSlots: SlotPool
    let remoteSlots: SlotPool
    let stats = JobStats()
    let journal: JobJournal
    let mapped: MappedEnvironments
    let translation: IncludeTranslation
    let resolver = FileResolver()
    let toolchains: ToolchainRegistry
    let blobs: BlobStore
    /// Environments received from peers, unpacked, by id (helper side).
    let environments: EnvironmentCache
    /// Archives of this machine's own toolchains, by id (client side), sent to helpers that lack them.
    let archiveDirectory: String
    let fetches = EnvironmentFetches()
    private let packing = NSLock()
    let sandbox: SandboxRunner
    let scheduler: SchedulerLink?
    let sandboxProblem: String?
    private let jobCounter = ManagedAtomicCounter()
    let limiter = ConnectionLimiter()

    public init(_ config: DaemonConfiguration) throws {
        self.config = config
        logger = config.logger
        localSlots = SlotPool(capacity: config.localSlots)
        remoteSlots = SlotPool(capacity: config.maxJobs)
        try SandboxTree.ensureDirectory(config.stateDirectory)
        toolchains = ToolchainRegistry(resolver: resolver, platform: config.platform)
        blobs = try BlobStore(directory: config.stateDirectory + "/blobs", limitBytes: config.blobCacheBytes)
        environments = try EnvironmentCache(directory: config.stateDirectory + "/environments", limitBytes: config.environmentCacheBytes)
        archiveDirectory = config.stateDirectory + "/envs"
        journal = JobJournal(path: config.stateDirectory + "/jobs.jsonl")
        mapped = MappedEnvironments(scratch: config.stateDirectory)
        translation = IncludeTranslation(scratch: config.stateDirectory)
        try SandboxTree.ensureDirectory(archiveDirectory)
        sandbox = SandboxRunner(hostName: config.name)
        sandboxProblem = config.acceptsRemote ? sandbox.unavailableReason() : nil
        scheduler = config.schedulerHost.map { SchedulerLink(host: $0, port: config.schedulerPort, security: config.security, logger: config.logger) }
    }

    var acceptsRemote: Bool { config.acceptsRemote && sandboxProblem == nil && config.listenHost != nil }

    /// Serves until cancelled.
    public func run() async throws {
        if let sandboxProblem, config.acceptsRemote {
            logger.error("refusing remote jobs: \(sandboxProblem)")
        }
        try SandboxTree.ensureDirectory(SandboxTree.parent(config.socketPath))
        let local = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: config.socketPath, cleanupExistingSocketFile: true) {
                makeMessageChannel($0, idleTimeout: nil, policy: .launcherServer)
            }
        // Any local user may connect; each is served with their own rights only (SO_PEERCRED).
        chmod(config.socketPath, 0o666)
        logger.info("serving launchers", metadata: ["socket": "\(config.socketPath)"])

        var peer: NIOAsyncChannel<MessageChannel, Never>?
        if acceptsRemote, let host = config.listenHost {
            peer = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .bind(host: host, port: config.listenPort,
                      childChannelInitializer: limiter.initializer(idleTimeout: .seconds(60), policy: .helperServer, tls: config.security.server))
            logger.info("accepting jobs from peers", metadata: [
                "address": "\(peer?.channel.localAddress?.description ?? "?")",
                "security": "\(config.security.fingerprint.map { "mutual TLS, cluster key \($0)" } ?? "none (no cluster key)")"])
        }
        let port = peer?.channel.localAddress?.port ?? 0
        try await withThrowingDiscardingTaskGroup { group in
            if let scheduler {
                group.addTask {
                    await scheduler.run(name: self.config.name, info: { self.hostInfo(port: port) },
                                        running: { await self.remoteSlots.inUse },
                                        toolchains: { self.environments.ids() })
                }
            }
            if let peer {
                group.addTask {
                    try await peer.executeThenClose { inbound in
                        try await withThrowingDiscardingTaskGroup { jobs in
                            for try await connection in inbound { jobs.addTask { await self.servePeer(connection) } }
                        }
                    }
                }
            }
            try await local.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { clients in
                    for try await connection in inbound { clients.addTask { await self.serveLauncher(connection) } }
                }
            }
        }
    }

    func hostInfo(port: Int) -> HostInfo {
        let note = !config.acceptsRemote ? "started with --no-remote" : (sandboxProblem.map { "cannot sandbox: " + $0 } ?? "")
        return HostInfo(name: config.name, address: config.advertisedAddress, port: UInt32(port), maxJobs: UInt32(config.maxJobs),
                        platform: config.platform, acceptsRemote: acceptsRemote, toolchains: environments.ids(), note: note)
    }

    // MARK: Launchers

    func serveLauncher(_ connection: MessageChannel) async {
        var heldSlot = false
        // Who is asking: the daemon does nothing for a launcher that its user could not do.
        guard let caller = await Self.caller(of: connection.channel) else {
            logger.warning("launcher connection without peer credentials refused")
            try? await connection.channel.close()
            return
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                guard try await acceptHandshake(&iterator, outbound, name: config.name) != nil else { return }
                while let message = try await nextMessage(&iterator) {
                    switch message {
                    case let .acquireLocal(reason):
                        if reason != "preprocess" { await stats.countLocal(reason: reason) }
                        if !heldSlot {
                            try await withKeepAlives(outbound) { await self.localSlots.acquire() }
                            heldSlot = true
                        }
                        try await outbound.write(.granted)
                    case let .submit(job):
                        if heldSlot { await localSlots.release(); heldSlot = false }
                        let reply = try await withKeepAlives(outbound) { await self.distribute(job, for: caller) }
                        if case .runLocally = reply {
                            try await withKeepAlives(outbound) { await self.localSlots.acquire() }
                            heldSlot = true
                        }
                        try await outbound.write(reply)
                    case let .statsRequest(reset):
                        if reset, caller.isRoot || caller.uid == getuid() { await stats.reset() }
                        try await outbound.write(.stats(json: await stats.json()))
                    case .statusRequest:
                        if let json = await scheduler?.status() {
                            try await outbound.write(.status(json: json))
                        } else {
                            try await outbound.write(.error("no scheduler connected (start swlaunchd with --scheduler HOST:PORT)"))
                        }
                    default:
                        try await outbound.write(.error("unexpected \(message.kind) from a launcher"))
                        return
                    }
                }
            }
        } catch {
            logger.debug("launcher connection ended", metadata: ["error": "\(error)"])
        }
        if heldSlot { await localSlots.release() }
    }

    /// The user at the other end of a launcher's Unix socket (`SO_PEERCRED`).
    static func caller(of channel: Channel) async -> Caller? {
        struct PeerCredentials: Sendable { var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0 }
        guard let provider = channel as? SocketOptionProvider,
              let credentials: PeerCredentials = try? await provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SWLSocketOptions.peerCredentials)).get() else { return nil }
        return Caller.user(uid: credentials.uid, gid: credentials.gid)
    }

    /// Sends a job to helpers until one answers; otherwise tells the launcher to compile locally.
    func distribute(_ job: JobRequest, for caller: Caller) async -> Message {
        let queued = Posix.nowMicros()
        guard let scheduler else {
            await stats.countFallback(reason: "no-scheduler")
            return .runLocally(reason: "no-scheduler")
        }
        let prepared: (choices: [ToolchainChoice], variants: [String: JobVariant], job: RemoteJob, inputBytes: UInt64)
        do {
            prepared = try await NIOThreadPool.singleton.runIfActive { try self.prepare(job, for: caller) }
        } catch let error as UntrustedCompiler {
            logger.notice("compiler not distributed", metadata: ["reason": "\(error.reason)"])
            await stats.countFallback(reason: "untrusted-compiler")
            return .runLocally(reason: "untrusted-compiler")
        } catch let error as AccessDenied {
            logger.notice("input not readable by the compile's user", metadata: ["error": "\(error)"])
            await stats.countFallback(reason: "unreadable-input")
            return .runLocally(reason: "unreadable-input")
        } catch let error as MappedEnvironmentError {
            logger.warning("cannot use a [toolchains] environment", metadata: ["error": "\(error)"])
            await stats.countFallback(reason: "bad-environment")
            return .runLocally(reason: "bad-environment: \(error)")
        } catch {
            logger.warning("cannot prepare job", metadata: ["error": "\(error)"])
            await stats.countFallback(reason: "unshippable-input")
            return .runLocally(reason: "unshippable-input")
        }
        var remoteJob = prepared.job
        var tried: [String] = []
        var lastReason = "no-helper"
        for _ in 0..<config.maximumAttempts {
            guard case let .hostGrant(grant)? = await scheduler.requestHost(choices: prepared.choices, exclude: tried),
                  let variant = prepared.variants[grant.choice.toolchain] else {
                if tried.isEmpty { lastReason = await scheduler.isConnected ? "no-helper" : "scheduler-unreachable" }
                break
            }
            tried.append(grant.name)
            remoteJob.toolchain = grant.choice.toolchain
            remoteJob.compiler = variant.compiler
            remoteJob.arguments = variant.arguments
            let sent = Posix.nowMicros()
            do {
                var result = try await runRemotely(remoteJob, on: grant)
                // The helper reports how long the job waited for one of its slots; the rest of the round
                // trip that was not compiling is transfer (connect, contents, sandbox set-up, result).
                let total = Posix.nowMicros() - sent
                let helperQueue = result.timings.queue
                result.timings.queue = sent - queued + helperQueue
                result.timings.preprocess = job.preprocessMicros
                result.timings.transfer = total > result.timings.compile + helperQueue ? total - result.timings.compile - helperQueue : 0
                // Map the helper's physical output paths back to the names the launcher wrote.
                // A stand-in compiler's dependency file is not the client compiler's: the launcher writes its own.
                result.outputs = result.outputs.compactMap { file in
                    guard let index = remoteJob.outputs.firstIndex(of: file.path), !(variant.translated && index == 1) else { return nil }
                    return OutputFile(path: job.outputs[index], contents: file.contents)
                }
                await scheduler.report(JobReport(host: grant.name, succeeded: true, compileMicros: result.timings.compile, inputBytes: prepared.inputBytes))
                await stats.countRemote(host: grant.name, timings: result.timings)
                await journal.record(host: grant.name, outputs: job.outputs.map { FileResolver.absolute($0, in: job.workingDirectory) },
                                     timings: result.timings)
                return .result(result)
            } catch {
                lastReason = "helper-failed"
                await stats.countHelperFailure()
                logger.warning("helper failed", metadata: ["helper": "\(grant.name)", "error": "\(error)"])
                await scheduler.report(JobReport(host: grant.name, succeeded: false, compileMicros: 0, inputBytes: 0))
            }
        }
        await stats.countFallback(reason: lastReason)
        return .runLocally(reason: lastReason)
    }

    /// Resolves the job's inputs and toolchains on this machine (blocking file I/O): the environments from the
    /// project's `[toolchains]` for the platforms it names, the native compiler (packed on first use) for this
    /// machine's platform unless `[toolchains]` names one for it. Returns the choices for the scheduler and,
    /// per environment id, the compiler to run in it.
    func prepare(_ job: JobRequest, for caller: Caller) throws -> (choices: [ToolchainChoice], variants: [String: JobVariant], job: RemoteJob, inputBytes: UInt64) {
        // Only compilers no user but root can change are run, probed or packed for anyone.
        if let reason = caller.programRefusal(job.compiler) { throw UntrustedCompiler(reason: reason) }
        var choices: [ToolchainChoice] = []
        var variants: [String: JobVariant] = [:]
        for entry in job.environments {
            guard let equals = entry.firstIndex(of: "=") else { throw MappedEnvironmentError(path: entry, reason: "not platform=path") }
            let platform = String(entry[..<equals]), given = String(entry[entry.index(after: equals)...])
            // The archive is read only if the compile's user could read it.
            let (path, _) = try resolver.resolve(given, as: caller)
            let (fd, _) = try caller.openForReading(path)
            close(fd)
            let environment = try mapped.environment(at: path, for: platform)
            let standIn = try MappedEnvironments.compiler(in: environment, for: job.compiler)
            if IncludeTranslation.isNeeded(client: job.compiler, standIn: standIn) {
                if translation.firstUse(of: standIn, for: job.compiler) {
                    logger.info("stand-in compiler", metadata: ["compiler": "\(job.compiler)", "runs": "\(standIn)", "platform": "\(platform)",
                                                                "how": "the client's include directories with -nostdinc -isystem"])
                }
                variants[environment.id] = JobVariant(compiler: standIn, arguments: job.arguments + (try translation.arguments(for: job)), translated: true)
            } else {
                variants[environment.id] = JobVariant(compiler: standIn, arguments: job.arguments, translated: false)
            }
            choices.append(ToolchainChoice(platform: platform, toolchain: environment.id))
        }
        if !choices.contains(where: { $0.platform == config.platform }) {
            let toolchain = try toolchains.native(compiler: job.compiler)
            try ensureArchive(of: toolchain)
            variants[toolchain.id] = JobVariant(compiler: job.compiler, arguments: job.arguments, translated: false)
            choices.insert(ToolchainChoice(platform: config.platform, toolchain: toolchain.id), at: 0)
        }
        var outputs: [String] = []
        var outputDirectories: [String] = []
        for output in job.outputs {
            let absolute = FileResolver.absolute(output, in: job.workingDirectory)
            let (directory, _) = try resolver.resolve(SandboxTree.parent(absolute), as: caller)
            outputDirectories.append(directory)
            outputs.append((directory == "/" ? "" : directory) + "/" + (absolute.split(separator: "/").last.map(String.init) ?? ""))
        }
        let tree = try resolver.tree(files: job.inputs, directories: job.directories + outputDirectories + [job.workingDirectory],
                                     in: job.workingDirectory, as: caller)
        let (cwd, cwdLinks) = try resolver.resolve(job.workingDirectory, as: caller)
        let remote = RemoteJob(toolchain: choices[0].toolchain, compiler: job.compiler, arguments: job.arguments, workingDirectory: cwd,
                               environment: job.environment, files: tree.files, symlinks: tree.symlinks + cwdLinks,
                               directories: tree.directories, outputs: outputs)
        return (choices, variants, remote, tree.totalBytes)
    }

    /// How a job runs in one environment: its compiler there and its arguments (extended for a stand-in compiler).
    struct JobVariant: Sendable {
        let compiler: String
        let arguments: [String]
        /// The compiler stands in for the client's (see ``IncludeTranslation``).
        let translated: Bool
    }

    /// The archive of a native toolchain, created on first use (the user does nothing).
    func archivePath(of id: String) -> String { archiveDirectory + "/" + id + ".tar.zst" }

    func ensureArchive(of toolchain: Toolchain) throws {
        let path = archivePath(of: toolchain.id)
        guard !Posix.fileExists(path) else { return }
        packing.lock()
        defer { packing.unlock() }
        guard !Posix.fileExists(path) else { return }
        logger.info("packing toolchain environment", metadata: ["compiler": "\(toolchain.compiler)", "id": "\(toolchain.id)"])
        try EnvironmentArchive.write(toolchain, manifest: EnvironmentManifest(platform: config.platform, compilers: [toolchain.compiler]), to: path)
    }

    func runRemotely(_ job: RemoteJob, on grant: HostGrant) async throws -> JobResult {
        let channel = try await connectPeer(host: grant.address, port: Int(grant.port), security: config.security)
        return try await channel.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            try await offerHandshake(&iterator, outbound, hello: Hello(role: .daemon, name: config.name))
            try await outbound.write(.compile(job))
            return try await withKeepAlives(outbound) {
                while let message = try await nextMessage(&iterator) {
                    switch message {
                    case let .needBlobs(hashes):
                        let blobs = try await NIOThreadPool.singleton.runIfActive {
                            try hashes.map { hash in
                                guard let bytes = self.resolver.contents(ofHash: hash) else {
                                    throw ResolveError(path: hash, reason: "input changed or vanished during the build")
                                }
                                return Blob(hash: hash, contents: bytes)
                            }
                        }
                        try await outbound.write(.blobs(blobs))
                    case let .needEnvironment(id):
                        guard id == job.toolchain, let archive = Posix.readFile(self.mapped.archivePath(of: id) ?? self.archivePath(of: id)) else {
                            throw FrameError.refused("helper asked for environment \(id), which this job does not use")
                        }
                        try await outbound.write(.environment(id: id, archive: archive))
                    case let .result(result):
                        return result
                    case let .error(text):
                        throw FrameError.refused(text)
                    default:
                        throw FrameError.unexpected(message.kind, expected: "needBlobs or result")
                    }
                }
                throw FrameError.closed
            }
        }
    }

    // MARK: Peers

    func servePeer(_ connection: MessageChannel) async {
        let peer = connection.channel.remoteAddress?.description ?? "?"
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                guard try await acceptHandshake(&iterator, outbound, name: config.name) != nil else { return }
                guard case let .compile(job)? = try await nextMessage(&iterator) else { return }
                try await withKeepAlives(outbound) {
                    guard job.toolchain.count == 64, job.toolchain.allSatisfy(\.isHexDigit), isCompilerName(job.compiler) else {
                        try await outbound.write(.error("refused: not a toolchain id and a compiler driver"))
                        return
                    }
                    var mustFetch = false
                    if !environments.contains(job.toolchain) {
                        mustFetch = await fetches.claim(job.toolchain)
                        mustFetch = mustFetch || !environments.contains(job.toolchain)
                    }
                    if mustFetch {
                        let installed: Bool
                        do {
                            installed = try await fetchEnvironment(job.toolchain, &iterator, outbound, peer: peer)
                        } catch {
                            await fetches.finish(job.toolchain, installed: false)
                            throw error
                        }
                        await fetches.finish(job.toolchain, installed: installed)
                        guard installed else { return }
                    }
                    environments.touch(job.toolchain)
                    let toolchainTree = environments.root(of: job.toolchain)
                    var info = stat()
                    guard lstat(toolchainTree + job.compiler, &info) == 0 else {
                        try await outbound.write(.error("\(config.name): \(job.compiler) is not in environment \(job.toolchain)"))
                        return
                    }
                    if let reason = HelperPolicy.refusal(of: job.arguments, inEnvironment: { path in
                        var entry = stat()
                        return lstat(toolchainTree + path, &entry) == 0
                    }) {
                        logger.warning("job refused by the helper's policy", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
                        try await outbound.write(.error("\(config.name): refused: \(reason)"))
                        return
                    }
                    let (present, absent) = job.files.map(\.hash).reduce(into: ([String](), [String]())) { sets, hash in
                        if self.blobs.contains(hash) { sets.0.append(hash) } else { sets.1.append(hash) }
                    }
                    self.blobs.touch(present)
                    let missing = Array(Set(absent))
                    if !missing.isEmpty {
                        try await outbound.write(.needBlobs(missing))
                        guard case let .blobs(received)? = try await nextMessage(&iterator) else { throw FrameError.closed }
                        try await NIOThreadPool.singleton.runIfActive { for blob in received { try self.blobs.store(blob) } }
                    }
                    let waitStart = Posix.nowMicros()
                    await remoteSlots.acquire()
                    let waited = Posix.nowMicros() - waitStart
                    var result: JobResult
                    do {
                        result = try await NIOThreadPool.singleton.runIfActive { try self.compile(job, toolchainTree: toolchainTree) }
                        result.timings.queue = waited
                    } catch {
                        await remoteSlots.release()
                        try await outbound.write(.error("\(config.name): \(error)"))
                        return
                    }
                    await remoteSlots.release()
                    await stats.countServed()
                    try await outbound.write(.result(result))
                }
                // Closing now could drop the tail of a large result still queued for the socket:
                // the client hangs up once it has read everything (or the idle timeout ends it).
                while try await nextMessage(&iterator) != nil {}
            }
        } catch {
            logger.warning("peer connection closed on error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    /// Asks the submitting daemon for an environment and installs it; false (after telling the peer why)
    /// when it is refused.
    func fetchEnvironment(_ id: String, _ iterator: inout NIOAsyncChannelInboundStream<Message>.AsyncIterator,
                          _ outbound: NIOAsyncChannelOutboundWriter<Message>, peer: String) async throws -> Bool {
        try await outbound.write(.needEnvironment(id: id))
        guard case let .environment(received, archive)? = try await nextMessage(&iterator), received == id else {
            throw FrameError.unexpected(.error, expected: "the environment \(id)")
        }
        do {
            try await NIOThreadPool.singleton.runIfActive {
                let temporary = self.config.stateDirectory + "/environments/.incoming-" + UUID().uuidString
                defer { unlink(temporary) }
                if let code = Posix.writeFileAtomically(temporary, archive) {
                    throw ResolveError(path: temporary, reason: Posix.errorText(code))
                }
                try self.environments.install(archive: temporary, expectedID: id)
            }
        } catch {
            try await outbound.write(.error("\(config.name): environment \(id) refused: \(error)"))
            return false
        }
        logger.info("received toolchain environment", metadata: ["id": "\(id)", "bytes": "\(archive.count)", "from": "\(peer)"])
        return true
    }

    func compile(_ job: RemoteJob, toolchainTree: String) throws -> JobResult {
        let directory = config.stateDirectory + "/jobs/" + String(jobCounter.next()) + "-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try sandbox.run(job, toolchainTree: toolchainTree, blobs: blobs, jobDirectory: directory)
        if result.exitStatus != 0, result.stderr.starts(with: Array("bwrap: ".utf8)) {
            throw ResolveError(path: "sandbox", reason: String(decoding: result.stderr, as: UTF8.self))
        }
        return result
    }
}

/// A compiler that a user other than root could change: it is not packed, probed or sent for anyone.
struct UntrustedCompiler: Error {
    let reason: String
}

/// A thread-safe counter for job directory names.
final class ManagedAtomicCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64 = 0
    func next() -> UInt64 {
        lock.lock(); defer { lock.unlock() }
        value += 1
        return value
    }
}
