import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import Logging
import REAPIProtos
import SwiftProtobuf
import Synchronization
import Wire

typealias REActionResult = Build_Bazel_Remote_Execution_V2_ActionResult
typealias REExecuteResponse = Build_Bazel_Remote_Execution_V2_ExecuteResponse
typealias REOperation = Google_Longrunning_Operation

/// Where a REAPI service is and how to reach it (`[remote]` in swlaunch.toml, docs/reapi.md).
public struct REAPIEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var instanceName: String
    /// TLS with the system's roots, or these PEM roots when given; plaintext when false.
    public var tls: Bool
    public var caFile: String?
    /// Sent as `authorization: Bearer <token>` with every call.
    public var bearerToken: String?

    public init(host: String, port: Int, instanceName: String = "", tls: Bool = false, caFile: String? = nil, bearerToken: String? = nil) {
        self.host = host
        self.port = port
        self.instanceName = instanceName
        self.tls = tls
        self.caFile = caFile
        self.bearerToken = bearerToken
    }

    /// Parses `host:port`, `grpc://host:port` (plaintext) or `grpcs://host:port` (TLS).
    public static func parse(_ text: String, instanceName: String = "") throws(REAPIError) -> REAPIEndpoint {
        var rest = Substring(text), tls = false
        if rest.hasPrefix("grpcs://") { rest = rest.dropFirst(8); tls = true } else if rest.hasPrefix("grpc://") { rest = rest.dropFirst(7) }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port), colon > rest.startIndex else {
            throw REAPIError(.configuration, "\(text): not an endpoint (host:port, grpc://host:port or grpcs://host:port)")
        }
        var host = String(rest[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return REAPIEndpoint(host: host, port: port, instanceName: instanceName, tls: tls)
    }

    public var description: String { "\(tls ? "grpcs" : "grpc")://\(host):\(port)" + (instanceName.isEmpty ? "" : " instance \(instanceName)") }
}

/// A failure talking to a REAPI service, classified for the distributor: an unreachable or failing service is
/// an infrastructure failure (compile locally), never the job's fault.
public struct REAPIError: Error, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The service could not be reached, or a call failed for a reason not the job's.
        case unavailable
        /// The service answered something that breaks the API (a wrong digest, a missing output).
        case protocolViolation
        /// The action ran but did not give the compiler's verdict (the executor's status was not OK).
        case execution
        /// The executor refused the action (`FAILED_PRECONDITION`: a worker's policy): the job's own fault.
        case refused
        case configuration
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
    public var description: String { "\(kind.rawValue): \(message)" }

    /// An executor's non-OK status about `subject`: FAILED_PRECONDITION (9) is a refusal, anything else a failure.
    init(status: Google_Rpc_Status, _ subject: String) {
        self.init(status.code == 9 ? .refused : .execution, "\(subject): \(status.message) (code \(status.code))")
    }

    init(_ error: any Error, during call: String) {
        if let rpc = error as? RPCError {
            self.init(.unavailable, "\(call): \(rpc.code) \(rpc.message)")
        } else if let own = error as? REAPIError {
            self = own
        } else {
            self.init(.unavailable, "\(call): \(error)")
        }
    }
}

/// A client of one REAPI service: CAS, action cache, execution. One HTTP/2 connection, shared by every job.
public final class REAPIClient: Sendable {
    public let endpoint: REAPIEndpoint
    let grpc: GRPCClient<HTTP2ClientTransport.Posix>
    let metadata: Metadata
    /// Executions under way by action digest (their operation names): a later attempt follows one instead of
    /// submitting the action again.
    let running = RunningOperations()
    /// Largest batch request or response (BuildGrid and most servers take 4 MiB messages).
    static let batchBytes: Int64 = 2 << 20
    static let chunkBytes = 1 << 20

    public init(endpoint: REAPIEndpoint) throws {
        self.endpoint = endpoint
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if endpoint.tls {
            security = .tls { config in
                if let ca = endpoint.caFile { config.trustRoots = .certificates([.file(path: ca, format: .pem)]) }
            }
        } else {
            security = .plaintext
        }
        // A service that restarts is used again within seconds (gRPC's default backoff grows to two minutes).
        let config = HTTP2ClientTransport.Posix.Config.defaults { config in
            config.backoff = .init(initial: .milliseconds(250), max: .seconds(3), multiplier: 1.6, jitter: 0.2)
        }
        let transport = try HTTP2ClientTransport.Posix(target: .dns(host: endpoint.host, port: endpoint.port), transportSecurity: security,
                                                       config: config)
        grpc = GRPCClient(transport: transport)
        var metadata = Metadata()
        if let token = endpoint.bearerToken { metadata.addString("Bearer " + token, forKey: "authorization") }
        self.metadata = metadata
    }

    /// Runs the client's connections until ``shutdown()``; calls made before wait for it.
    public func run() async throws { try await grpc.runConnections() }

    public func shutdown() { grpc.beginGracefulShutdown() }

    var options: CallOptions {
        var options = CallOptions.defaults
        options.maxResponseMessageBytes = 64 << 20
        options.maxRequestMessageBytes = 64 << 20
        options.waitForReady = false
        options.timeout = .seconds(60)
        return options
    }

    var instance: String { endpoint.instanceName }

    /// Runs a call again after a transient refusal (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, `ABORTED`: a busy or
    /// restarting service), up to three more times with growing pauses; any other error at once.
    func retrying<T: Sendable>(_ call: () async throws -> T) async throws -> T {
        var pause = Duration.milliseconds(100)
        for _ in 0..<3 {
            do {
                return try await call()
            } catch let error as RPCError where [.unavailable, .resourceExhausted, .aborted].contains(error.code) {
                try await Task.sleep(for: pause)
                pause *= 4
            }
        }
        return try await call()
    }

    // MARK: CAS

    /// The digests among `digests` the CAS does not hold.
    public func findMissing(_ digests: [BlobDigest]) async throws(REAPIError) -> Set<BlobDigest> {
        let cas = Build_Bazel_Remote_Execution_V2_ContentAddressableStorage.Client(wrapping: grpc)
        var missing: Set<BlobDigest> = []
        var start = 0
        while start < digests.count {
            let slice = digests[start..<min(start + 10_000, digests.count)]
            start += slice.count
            let request = Build_Bazel_Remote_Execution_V2_FindMissingBlobsRequest.with {
                $0.instanceName = instance
                $0.blobDigests = slice.map(\.proto)
            }
            do {
                let response = try await retrying { try await cas.findMissingBlobs(request, metadata: metadata, options: options) }
                for digest in response.missingBlobDigests { missing.insert(BlobDigest(digest)) }
            } catch {
                throw REAPIError(error, during: "FindMissingBlobs")
            }
        }
        return missing
    }

    /// Uploads blobs, small ones in batches and large ones through ByteStream. `contents` reads a blob's bytes
    /// (checked against its digest before sending).
    public func upload(_ digests: [BlobDigest], contents: (BlobDigest) -> [UInt8]?) async throws(REAPIError) {
        let cas = Build_Bazel_Remote_Execution_V2_ContentAddressableStorage.Client(wrapping: grpc)
        var batch: [Build_Bazel_Remote_Execution_V2_BatchUpdateBlobsRequest.Request] = []
        var batchSize: Int64 = 0
        func flush() async throws(REAPIError) {
            guard !batch.isEmpty else { return }
            let request = Build_Bazel_Remote_Execution_V2_BatchUpdateBlobsRequest.with { $0.instanceName = instance; $0.requests = batch }
            batch = []
            batchSize = 0
            let response: Build_Bazel_Remote_Execution_V2_BatchUpdateBlobsResponse
            do {
                response = try await retrying { try await cas.batchUpdateBlobs(request, metadata: metadata, options: options) }
            } catch {
                throw REAPIError(error, during: "BatchUpdateBlobs")
            }
            if let failed = response.responses.first(where: { $0.status.code != 0 }) {
                throw REAPIError(.unavailable, "BatchUpdateBlobs: \(BlobDigest(failed.digest)): \(failed.status.message) (code \(failed.status.code))")
            }
        }
        for digest in digests {
            guard let bytes = contents(digest), Int64(bytes.count) == digest.size, BlobDigest(of: bytes) == digest else {
                throw REAPIError(.protocolViolation, "\(digest): the contents to upload changed or are gone")
            }
            if digest.size > Self.batchBytes / 2 {
                try await write(digest, bytes)
                continue
            }
            if batchSize + digest.size > Self.batchBytes { try await flush() }
            batch.append(.with { $0.digest = digest.proto; $0.data = Data(bytes) })
            batchSize += digest.size + 100
        }
        try await flush()
    }

    /// Uploads one blob through ByteStream in 1 MiB chunks.
    func write(_ digest: BlobDigest, _ bytes: [UInt8]) async throws(REAPIError) {
        let stream = Google_Bytestream_ByteStream.Client(wrapping: grpc)
        let resource = (instance.isEmpty ? "" : instance + "/") + "uploads/\(UUID().uuidString.lowercased())/blobs/\(digest.hash)/\(digest.size)"
        do {
            let response = try await retrying { try await stream.write(metadata: metadata, options: options) { writer in
                var offset = 0
                repeat {
                    let end = min(offset + Self.chunkBytes, bytes.count)
                    try await writer.write(.with {
                        if offset == 0 { $0.resourceName = resource }
                        $0.writeOffset = Int64(offset)
                        $0.data = Data(bytes[offset..<end])
                        $0.finishWrite = end == bytes.count
                    })
                    offset = end
                } while offset < bytes.count
            } }
            guard response.committedSize == digest.size || response.committedSize == -1 else {
                throw REAPIError(.protocolViolation, "ByteStream.Write \(digest): committed \(response.committedSize) bytes")
            }
        } catch {
            throw REAPIError(error, during: "ByteStream.Write")
        }
    }

    /// Reads blobs, checking each against its digest.
    public func read(_ digests: [BlobDigest]) async throws(REAPIError) -> [BlobDigest: [UInt8]] {
        let cas = Build_Bazel_Remote_Execution_V2_ContentAddressableStorage.Client(wrapping: grpc)
        var result: [BlobDigest: [UInt8]] = [:]
        var batch: [BlobDigest] = []
        var batchSize: Int64 = 0
        func flush() async throws(REAPIError) {
            guard !batch.isEmpty else { return }
            let request = Build_Bazel_Remote_Execution_V2_BatchReadBlobsRequest.with { $0.instanceName = instance; $0.digests = batch.map(\.proto) }
            batch = []
            batchSize = 0
            let response: Build_Bazel_Remote_Execution_V2_BatchReadBlobsResponse
            do {
                response = try await retrying { try await cas.batchReadBlobs(request, metadata: metadata, options: options) }
            } catch {
                throw REAPIError(error, during: "BatchReadBlobs")
            }
            for entry in response.responses {
                let digest = BlobDigest(entry.digest)
                guard entry.status.code == 0 else {
                    throw REAPIError(.protocolViolation, "BatchReadBlobs \(digest): \(entry.status.message) (code \(entry.status.code))")
                }
                let bytes = [UInt8](entry.data)
                guard BlobDigest(of: bytes) == digest else { throw REAPIError(.protocolViolation, "BatchReadBlobs \(digest): contents do not match the digest") }
                result[digest] = bytes
            }
        }
        for digest in Set(digests) {
            if digest.size == 0 { result[digest] = []; continue }
            if digest.size > Self.batchBytes / 2 {
                result[digest] = try await readStream(digest)
                continue
            }
            if batchSize + digest.size > Self.batchBytes { try await flush() }
            batch.append(digest)
            batchSize += digest.size + 100
        }
        try await flush()
        for digest in digests where result[digest] == nil {
            throw REAPIError(.protocolViolation, "BatchReadBlobs: \(digest) was not returned")
        }
        return result
    }

    func readStream(_ digest: BlobDigest) async throws(REAPIError) -> [UInt8] {
        let stream = Google_Bytestream_ByteStream.Client(wrapping: grpc)
        let resource = (instance.isEmpty ? "" : instance + "/") + "blobs/\(digest.hash)/\(digest.size)"
        do {
            let bytes = try await retrying { try await stream.read(.with { $0.resourceName = resource }, metadata: metadata, options: options) { response in
                var bytes: [UInt8] = []
                for try await chunk in response.messages {
                    bytes += chunk.data
                    if bytes.count > digest.size { break }
                }
                return bytes
            } }
            guard BlobDigest(of: bytes) == digest else { throw REAPIError(.protocolViolation, "ByteStream.Read \(digest): contents do not match the digest") }
            return bytes
        } catch {
            throw REAPIError(error, during: "ByteStream.Read")
        }
    }

    // MARK: Action cache and execution

    /// The cached result of an action, or nil when the cache has none.
    func actionResult(_ digest: BlobDigest) async throws(REAPIError) -> REActionResult? {
        let cache = Build_Bazel_Remote_Execution_V2_ActionCache.Client(wrapping: grpc)
        let request = Build_Bazel_Remote_Execution_V2_GetActionResultRequest.with {
            $0.instanceName = instance
            $0.actionDigest = digest.proto
            $0.inlineStdout = true
            $0.inlineStderr = true
        }
        do {
            return try await retrying { try await cache.getActionResult(request, metadata: metadata, options: options) }
        } catch let error as RPCError where error.code == .notFound {
            return nil
        } catch {
            throw REAPIError(error, during: "GetActionResult")
        }
    }

    /// Executes an action and waits for its response. A stream that drops before the operation is done is
    /// resumed with WaitExecution (the action is not submitted twice); `deadline` bounds the whole wait.
    func execute(_ digest: BlobDigest, skipCacheLookup: Bool, deadline: Duration, logger: Logger) async throws(REAPIError) -> REExecuteResponse {
        let execution = Build_Bazel_Remote_Execution_V2_Execution.Client(wrapping: grpc)
        let clock = ContinuousClock(), end = clock.now + deadline
        var options = self.options
        options.timeout = deadline
        let request = Build_Bazel_Remote_Execution_V2_ExecuteRequest.with {
            $0.instanceName = instance
            $0.actionDigest = digest.proto
            $0.skipCacheLookup = skipCacheLookup
        }
        let name = OperationName()
        let running = self.running
        @Sendable func follow(_ response: StreamingClientResponse<REOperation>) async throws -> REOperation? {
            for try await operation in response.messages {
                logger.trace("operation update", metadata: ["operation": "\(operation.name)", "done": "\(operation.done)"])
                if !operation.name.isEmpty, name.value != operation.name {
                    name.set(operation.name)
                    running.withLock { $0[digest] = operation.name }
                }
                if operation.done { return operation }
            }
            return nil
        }
        var lastError: (any Error)?
        var done: REOperation?
        // An attempt after one that gave up waiting follows the execution that attempt started (a service
        // need not join a second Execute of the same action to the first: BuildGrid does not for do_not_cache).
        if let earlier = running.withLock({ $0[digest] }) {
            name.set(earlier)
        } else {
            do {
                done = try await execution.execute(request, metadata: metadata, options: options, onResponse: follow)
            } catch {
                lastError = error
            }
        }
        defer { if done != nil { running.withLock { $0[digest] = nil } } }
        var resumes = 0
        while done == nil {
            guard let operation = name.value else {
                throw REAPIError(lastError ?? REAPIError(.unavailable, "the stream ended before naming the operation"), during: "Execute")
            }
            guard clock.now < end else { throw REAPIError(.unavailable, "Execute \(digest): no result within the deadline") }
            resumes += 1
            guard resumes <= 30 else { throw REAPIError(lastError ?? REAPIError(.unavailable, "stream ended"), during: "WaitExecution") }
            logger.debug("resuming an execution", metadata: ["operation": "\(operation)", "after": "\(lastError.map { "\($0)" } ?? "end of stream")"])
            if lastError != nil { try? await Task.sleep(for: .milliseconds(min(200 * resumes, 2000))) }
            options.timeout = end - clock.now
            do {
                done = try await execution.waitExecution(.with { $0.name = operation }, metadata: metadata, options: options, onResponse: follow)
                lastError = nil
            } catch let error as RPCError where error.code == .notFound {
                running.withLock { $0[digest] = nil }
                throw REAPIError(.unavailable, "WaitExecution \(operation): the service no longer knows the operation")
            } catch {
                lastError = error
            }
        }
        guard let done else { throw REAPIError(.unavailable, "Execute: no operation") }
        switch done.result {
        case let .error(status)?:
            throw REAPIError(status: status, "operation \(done.name)")
        case let .response(any)?:
            do {
                return try REExecuteResponse(unpackingAny: any)
            } catch {
                throw REAPIError(.protocolViolation, "operation \(done.name): the response is not an ExecuteResponse (\(any.typeURL))")
            }
        case nil:
            throw REAPIError(.protocolViolation, "operation \(done.name): done without a result")
        }
    }
}

/// Operation names by action digest.
final class RunningOperations: Sendable {
    private let names = Mutex<[BlobDigest: String]>([:])
    func withLock<T>(_ body: (inout [BlobDigest: String]) -> T) -> T { names.withLock { body(&$0) } }
}

/// The name of the operation an Execute stream announced, kept across its resumptions.
final class OperationName: Sendable {
    private let stored = Mutex<String?>(nil)
    func set(_ name: String) { stored.withLock { $0 = name } }
    var value: String? { stored.withLock { $0 } }
}

extension REAPIClient {
    /// The job's result from the action cache, or nil when the cache has none (or one whose outputs are gone).
    /// `outputs` pairs each output's absolute path with its name in the command.
    public func cachedResult(of layout: ActionLayout, outputs: [String]) async throws(REAPIError) -> JobResult? {
        guard let cached = try await actionResult(layout.actionDigest) else { return nil }
        do {
            return try await jobResult(cached, outputs: zip(outputs, layout.outputPaths).map { ($0, $1) })
        } catch where error.kind == .protocolViolation {
            // An entry whose blobs were evicted: executed again, as a miss.
            return nil
        }
    }

    /// Executes the action (already in the CAS) and returns the job's result, and whether the service answered
    /// it from its cache.
    public func execute(_ layout: ActionLayout, outputs: [String], skipCacheLookup: Bool, deadline: Duration,
                        logger: Logger) async throws(REAPIError) -> (JobResult, cached: Bool) {
        let response = try await execute(layout.actionDigest, skipCacheLookup: skipCacheLookup, deadline: deadline, logger: logger)
        guard response.status.code == 0 else {
            throw REAPIError(status: response.status, "action \(layout.actionDigest)")
        }
        guard response.hasResult else { throw REAPIError(.protocolViolation, "action \(layout.actionDigest): a response without a result") }
        return (try await jobResult(response.result, outputs: zip(outputs, layout.outputPaths).map { ($0, $1) }), response.cachedResult)
    }

    /// Uploads the action's blobs the CAS lacks, reading each with `contents`; returns the bytes sent.
    public func uploadMissing(_ layout: ActionLayout, contents: (BlobDigest) -> [UInt8]?) async throws(REAPIError) -> Int64 {
        let missing = try await findMissing(Array(layout.blobs.keys))
        try await upload(Array(missing), contents: contents)
        return missing.reduce(0) { $0 + $1.size }
    }

    /// An ActionResult as a job's result: exit status, stdout and stderr, and the outputs it names (fetched).
    func jobResult(_ result: REActionResult, outputs: [(absolute: String, name: String)]) async throws(REAPIError) -> JobResult {
        var wanted: [BlobDigest] = []
        if result.stdoutRaw.isEmpty, result.hasStdoutDigest, result.stdoutDigest.sizeBytes > 0 { wanted.append(BlobDigest(result.stdoutDigest)) }
        if result.stderrRaw.isEmpty, result.hasStderrDigest, result.stderrDigest.sizeBytes > 0 { wanted.append(BlobDigest(result.stderrDigest)) }
        var byName: [String: Build_Bazel_Remote_Execution_V2_OutputFile] = [:]
        for file in result.outputFiles { byName[file.path] = file }
        for output in outputs {
            guard let file = byName[output.name] else { continue }
            if !file.contents.isEmpty, BlobDigest(of: [UInt8](file.contents)) == BlobDigest(file.digest) { continue }
            wanted.append(BlobDigest(file.digest))
        }
        let blobs = try await read(wanted)
        func stream(_ raw: Data, _ digest: REDigest, _ has: Bool) -> [UInt8] {
            if !raw.isEmpty { return [UInt8](raw) }
            return has && digest.sizeBytes > 0 ? blobs[BlobDigest(digest)] ?? [] : []
        }
        var files: [OutputFile] = []
        for output in outputs {
            guard let file = byName[output.name] else { continue }
            let digest = BlobDigest(file.digest)
            if !file.contents.isEmpty, BlobDigest(of: [UInt8](file.contents)) == digest {
                files.append(OutputFile(path: output.absolute, contents: [UInt8](file.contents)))
            } else if let bytes = blobs[digest] {
                files.append(OutputFile(path: output.absolute, contents: bytes))
            }
        }
        return JobResult(exitStatus: result.exitCode, stdout: stream(result.stdoutRaw, result.stdoutDigest, result.hasStdoutDigest),
                         stderr: stream(result.stderrRaw, result.stderrDigest, result.hasStderrDigest), outputs: files,
                         host: result.executionMetadata.worker, timings: JobTimings())
    }
}
