import ClusterKey
import CompilerArgs
import Foundation
import Synchronization
import Logging
import RemoteExecution
import NIOCore
import NIOPosix
import SystemSupport
import Toolchain
import Wire
import WireNIO

/// `swlaunchd`: serves local launchers on a Unix socket (``LauncherService``), places their jobs on helpers
/// (``JobDistributor``) and runs jobs for peers in sandboxes (``HelperService``). This type only wires them up
/// and runs their servers.
public final class Daemon: Sendable {
    let config: DaemonConfiguration
    let logger: Logger
    let stats = JobStats()
    let remoteSlots: SlotPool
    let scheduler: SchedulerLink?
    let launchers: LauncherService
    let helper: HelperService
    let sandboxProblem: String?
    let limiter = ConnectionLimiter()
    /// Connections to helpers kept between jobs.
    let helperConnections: HelperConnections
    /// This daemon's stable id (``HostIdentity``).
    let hostID: String
    /// The processors this daemon may use (``LocalCores``), read once at start: it prepares that many jobs at once
    /// and tells the scheduler so.
    let processors: Int
    /// The REAPI service jobs go to instead of the scheduler's helpers, when configured.
    let reapi: REAPIBackend?
    /// This daemon as a bot of a REAPI service, when configured.
    let worker: REAPIWorker?

    public init(_ config: DaemonConfiguration) throws {
        self.config = config
        logger = config.logger
        try SandboxTree.ensureDirectory(config.stateDirectory)
        hostID = try HostIdentity.load(stateDirectory: config.stateDirectory)
        remoteSlots = SlotPool(capacity: config.maxJobs)
        let processors = config.processors ?? LocalCores.current()
        self.processors = processors
        // Hashes of the compilers and system headers survive a restart: the first build after it does not read them again.
        let resolver = FileResolver(journal: HashJournal(path: config.stateDirectory + "/file-hashes"))
        let sandbox = SandboxRunner(hostName: config.name, limits: config.sandboxLimits)
        // Both peers' jobs and a REAPI service's actions run in the sandbox.
        sandboxProblem = config.acceptsRemote || config.reapi.worker != nil ? sandbox.unavailableReason() : nil
        helper = HelperService(
            name: config.name, stateDirectory: config.stateDirectory, logger: config.logger,
            environments: try EnvironmentCache(directory: config.stateDirectory + "/environments", limitBytes: config.environmentCacheBytes),
            blobs: try BlobStore(directory: config.stateDirectory + "/blobs", limitBytes: config.blobCacheBytes),
            slots: remoteSlots, processors: processors, stats: stats, sandbox: sandbox)
        helper.recover()
        let scheduler = config.schedulers.isEmpty ? nil
            : SchedulerLink(addresses: config.schedulers, security: config.security, logger: config.logger)
        self.scheduler = scheduler
        // The transport reads contents and archives through the launcher service, created just below.
        let box = LauncherBox()
        let stats = self.stats
        helperConnections = HelperConnections(opened: { Task { await stats.countHelperConnection() } })
        let transport = NetworkHelperTransport(
            name: config.name, security: config.security, contents: { resolver.contents(ofHash: $0) },
            archive: { box.service?.servedArchive($0) }, logger: config.logger, connections: helperConnections)
        if let settings = config.reapi.client {
            reapi = try REAPIBackend(settings: settings, platform: config.platform, resolver: resolver,
                                     archive: { box.service?.servedArchive($0) }, stateDirectory: config.stateDirectory, logger: config.logger)
        } else {
            reapi = nil
        }
        if let settings = config.reapi.worker {
            let client = try REAPIClient(endpoint: settings.endpoint)
            worker = REAPIWorker(client: client, botID: config.name + "-" + hostID.prefix(8), properties: ActionLayout.platformProperties(
                                     for: config.platform, extra: settings.properties),
                                 capacity: config.maxJobs, executor: try SandboxActionExecutor(helper: helper), logger: config.logger)
        } else {
            worker = nil
        }
        let distributor: JobDistributor?
        if let reapi {
            distributor = JobDistributor(hosts: reapi, helpers: reapi, maximumAttempts: config.maximumAttempts, deadlines: config.deadlines)
        } else {
            distributor = scheduler.map { JobDistributor(hosts: $0, helpers: transport, maximumAttempts: config.maximumAttempts, deadlines: config.deadlines) }
        }
        launchers = try LauncherService(
            name: config.name, platform: config.platform, stateDirectory: config.stateDirectory, logger: config.logger,
            localSlots: SlotPool(capacity: config.localSlots), preparing: PreparationPool(threads: processors), stats: stats, resolver: resolver,
            toolchains: ToolchainRegistry(resolver: resolver, platform: config.platform, memoryPath: config.stateDirectory + "/toolchains"), scheduler: scheduler, distributor: distributor)
        box.service = launchers
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
        defer { helperConnections.closeAll() }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await self.helper.sweepWhenQuiet() }
            if let scheduler {
                group.addTask {
                    await scheduler.run(name: self.config.name, info: { self.hostInfo(port: port) },
                                        running: { await self.remoteSlots.inUse },
                                        toolchains: { self.helper.environments.ids() },
                                        giveBack: { _, toolchains in _ = await self.helper.giveBackWaitingJob(toolchains: toolchains) })
                }
            }
            if let reapi {
                logger.info("jobs go to a REAPI service", metadata: ["endpoint": "\(reapi.settings.endpoint.description)",
                                                                    "cache": "\(reapi.settings.cache.rawValue)"])
                group.addTask { await reapi.run() }
            }
            if let worker {
                if let sandboxProblem {
                    logger.error("not serving REAPI actions: \(sandboxProblem)")
                } else {
                    logger.info("serving a REAPI service as a bot", metadata: ["endpoint": "\(worker.client.endpoint.description)",
                                                                              "bot": "\(worker.botID)", "capacity": "\(worker.capacity)"])
                    group.addTask { try await withThrowingDiscardingTaskGroup { inner in
                        inner.addTask { try await worker.client.run() }
                        inner.addTask { await worker.run(); worker.client.shutdown() }
                    } }
                }
            }
            if let peer {
                group.addTask {
                    try await peer.executeThenClose { inbound in
                        try await withThrowingDiscardingTaskGroup { jobs in
                            for try await connection in inbound { jobs.addTask { await self.helper.serve(connection) } }
                        }
                    }
                }
            }
            try await local.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { clients in
                    for try await connection in inbound { clients.addTask { await self.launchers.serve(connection) } }
                }
            }
        }
    }

    /// A graceful stop (the first SIGTERM): launchers' new jobs compile locally, peers' new jobs are refused
    /// (their clients try another helper), and the jobs already running, both ways, finish; at most `limit`.
    public func drain(limit: Duration = .seconds(300)) async {
        logger.notice("draining: running jobs finish, new ones go elsewhere", metadata: [
            "distributing": "\(launchers.inFlight.value)", "compiling": "\(helper.inFlight.value)"])
        launchers.draining.set()
        helper.draining.set()
        let clock = ContinuousClock(), end = clock.now + limit
        while launchers.inFlight.value > 0 || helper.inFlight.value > 0, clock.now < end {
            try? await Task.sleep(for: .milliseconds(100))
        }
        logger.notice("drained", metadata: ["distributing": "\(launchers.inFlight.value)", "compiling": "\(helper.inFlight.value)"])
    }

    func hostInfo(port: Int) -> HostInfo {
        let note = !config.acceptsRemote ? "started with --no-remote" : (sandboxProblem.map { "cannot sandbox: " + $0 } ?? "")
        return HostInfo(name: config.name, address: config.advertisedAddress, port: UInt32(port), maxJobs: UInt32(config.maxJobs),
                        platform: config.platform, acceptsRemote: acceptsRemote, toolchains: helper.environments.ids(), note: note, id: hostID,
                        cores: UInt32(processors))
    }
}

/// Lets the helper transport reach the launcher service that is created after it.
private final class LauncherBox: @unchecked Sendable {
    var service: LauncherService?
}

/// A counter for job directory names.
final class ManagedAtomicCounter: Sendable {
    private let value = Atomic<UInt64>(0)
    func next() -> UInt64 { value.add(1, ordering: .relaxed).newValue }
}

/// A count of work in progress.
final class InFlight: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .acquiring) }
    func enter() { count.add(1, ordering: .acquiringAndReleasing) }
    func leave() { count.subtract(1, ordering: .acquiringAndReleasing) }
    /// Runs `body` counted.
    func around<T>(_ body: () async -> T) async -> T {
        enter()
        defer { leave() }
        return await body()
    }
}

/// A flag set once (for example: the daemon is draining).
final class ManagedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
