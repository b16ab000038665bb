import Foundation
import Logging
import RemoteExecution
import Synchronization
import SystemSupport
import Toolchain
import Wire

/// Whether the REAPI backend reads and writes the service's action cache (`jobs.cache`).
public enum ActionCachePolicy: String, Sendable, CaseIterable {
    /// Look results up, and let executions be cached (CI).
    case readWrite = "read-write"
    /// Look results up; executions are marked `do_not_cache` (developers' machines).
    case read
    /// Neither: every job executes.
    case off
}

/// The REAPI backend's settings (`[remote]` with `backend = "reapi"`).
public struct REAPISettings: Sendable {
    public var endpoint: REAPIEndpoint
    public var cache: ActionCachePolicy
    /// Platform properties beside `OSFamily` and `ISA`.
    public var properties: [(String, String)]
    /// The platform whose environment actions run, when not this machine's (`remote.platform`).
    public var platform: String?

    public init(endpoint: REAPIEndpoint, cache: ActionCachePolicy = .readWrite, properties: [(String, String)] = [], platform: String? = nil) {
        self.endpoint = endpoint
        self.cache = cache
        self.properties = properties
        self.platform = platform
    }
}

/// The REAPI service as the distributor's host source and transport: every job is "granted" to the service
/// (one pseudo-host named after it, for this machine's platform), and an attempt is: the action cache, else
/// upload what the CAS lacks and execute, then fetch the outputs. A failure of the service is an
/// infrastructure failure (retried, then compiled locally); an action the worker refused is the job's.
public final class REAPIBackend: HostSource, HelperTransport, Sendable {
    /// The `JobResult.host` of a job served from the action cache (counted as a cache hit in stats).
    public static let cacheHost = "action-cache"

    let settings: REAPISettings
    let client: REAPIClient
    let platform: String
    let resolver: FileResolver
    let archive: @Sendable (String) -> String?
    let environments: EnvironmentCache
    let listings = Mutex<[String: EnvironmentListing]>([:])
    let grants = Atomic<UInt64>(0)
    let logger: Logger

    public init(settings: REAPISettings, platform: String, resolver: FileResolver, archive: @escaping @Sendable (String) -> String?,
                stateDirectory: String, logger: Logger) throws {
        self.settings = settings
        client = try REAPIClient(endpoint: settings.endpoint)
        self.platform = settings.platform ?? platform
        self.resolver = resolver
        self.archive = archive
        environments = try EnvironmentCache(directory: stateDirectory + "/reapi-environments", limitBytes: 4 << 30)
        self.logger = logger
    }

    var hostName: String { "reapi " + settings.endpoint.description }

    /// Runs the client's connection until cancelled.
    public func run() async {
        await withTaskCancellationHandler {
            do { try await client.run() } catch { logger.warning("REAPI connection ended", metadata: ["error": "\(error)"]) }
        } onCancel: {
            client.shutdown()
        }
    }

    // MARK: HostSource

    public func requestHost(choices: [ToolchainChoice], exclude: [String]) async -> HostAnswer {
        // The service places the action; the job offers the environment of the configured platform (this
        // machine's by default; the platform properties say which workers may take it). A job without one runs here.
        guard let choice = choices.first(where: { $0.platform == platform }) else { return .noHost }
        return .granted(HostGrant(id: grants.add(1, ordering: .relaxed).newValue, name: hostName, address: settings.endpoint.host,
                                  port: UInt32(settings.endpoint.port), choice: choice))
    }

    public func report(_ report: JobReport) async {}

    // MARK: HelperTransport

    /// The shortest wait for an action: the service queues what its workers cannot take yet, and a deadline
    /// measured for one helper's compile would give up on a job merely queued (its retry joins the same
    /// execution, but a local fallback would compile it twice).
    static let queuedDeadline: Duration = .seconds(600)

    public func attempt(_ job: RemoteJob, on grant: HostGrant, deadline: Duration, meter: AttemptMeter) async -> AttemptOutcome {
        do {
            return try await execute(job, platform: grant.choice.platform, deadline: max(deadline, Self.queuedDeadline), meter: meter)
        } catch let error as REAPIError {
            if error.kind == .refused { return .failed(JobFailure(.job, "refused", "\(hostName): \(error.message)")) }
            return .failed(JobFailure(.infrastructure, "reapi", "\(hostName): \(error)"))
        } catch let error as InputTreeError {
            return .failed(JobFailure(.job, "input-root", "\(hostName): \(error)"))
        } catch {
            return .failed(JobFailure(.infrastructure, "reapi", "\(hostName): \(error)"))
        }
    }

    func execute(_ job: RemoteJob, platform: String, deadline: Duration, meter: AttemptMeter) async throws -> AttemptOutcome {
        let (listing, root) = try await environment(job.toolchain)
        let properties = ActionLayout.platformProperties(for: platform, extra: settings.properties)
        let cacheable = try ActionLayout(job: job, environment: listing, environmentRoot: root,
                                         jobFileSize: { self.resolver.size(ofHash: $0) }, platform: properties)
        if settings.cache != .off, var result = try await client.cachedResult(of: cacheable, outputs: job.outputs) {
            result.host = Self.cacheHost
            logger.debug("action cache hit", metadata: ["action": "\(cacheable.actionDigest)"])
            return .verdict(result)
        }
        // A client that does not write the cache runs the do_not_cache form of the action: the service never
        // caches what it ran. Its lookup is not skipped even with the cache off: the do_not_cache form is never
        // in the cache, and the lookup lets the service join a retry to the execution already under way.
        let action = settings.cache == .readWrite ? cacheable : try cacheable.uncached()
        let sent = try await client.uploadMissing(action) { digest in
            switch action.blobs[digest] {
            case let .jobFile(hash)?: return self.resolver.contents(ofHash: hash)
            case let .path(path)?: return Posix.readFile(path)
            case let .bytes(bytes)?: return bytes
            case nil: return nil
            }
        }
        meter.countSent(Int(sent))
        let started = Posix.nowMicros()
        var (result, cached) = try await client.execute(action, outputs: job.outputs, skipCacheLookup: false,
                                                        deadline: deadline, logger: logger)
        if cached { result.host = Self.cacheHost }
        result.timings = JobTimings(compile: Posix.nowMicros() - started)
        logger.debug("action executed", metadata: ["action": "\(action.actionDigest)", "uploaded_bytes": "\(sent)",
                                                   "execute_ms": "\(result.timings.compile / 1000)", "cached": "\(cached)"])
        return .verdict(result)
    }

    /// The listing of an environment for input roots, unpacked from this machine's archive of it once.
    func environment(_ id: String) async throws -> (EnvironmentListing, String) {
        let root = environments.root(of: id)
        if let listing = listings.withLock({ $0[id] }), environments.contains(id) { return (listing, root) }
        guard let archivePath = archive(id) else { throw REAPIError(.configuration, "environment \(id) has no archive on this machine") }
        let listing = try await Task.detached {
            if !self.environments.contains(id) { try self.environments.install(archive: archivePath, expectedID: id) }
            return try EnvironmentListing.read(root: self.environments.root(of: id))
        }.value
        listings.withLock { $0[id] = listing }
        return (listing, root)
    }
}
