import CompilerArgs
import Foundation
import NIOPosix
import RemoteExecution
import SystemSupport
import Toolchain
import Wire

/// Runs actions leased from a REAPI service (``REAPIWorker``) in the daemon's sandbox, as peers' jobs run: the
/// same policy (a compiler driver, options that load programs only from the input root), the same blob store
/// for the input files, the same slots and limits. The input root is the sandbox's `/`.
struct SandboxActionExecutor: ActionExecutor {
    let helper: HelperService
    /// An empty folder: actions bring their toolchain in their input root.
    let emptyEnvironment: String
    /// Bytes read from the CAS per request while fetching inputs.
    static let fetchBytes: Int64 = 32 << 20

    init(helper: HelperService) throws {
        self.helper = helper
        emptyEnvironment = helper.stateDirectory + "/reapi-empty-environment"
        try SandboxTree.ensureDirectory(emptyEnvironment)
    }

    func execute(_ input: ActionInput, client: REAPIClient) async -> ActionExecution {
        let job = input.job
        let present = Set(job.files.map(\.path)).union(job.symlinks.map(\.path))
        guard isCompilerName(job.compiler), present.contains(job.compiler) else {
            return .refused("\(job.compiler) is not a compiler driver in the action's input root")
        }
        if let refusal = HelperPolicy.refusal(of: job.arguments, inEnvironment: { present.contains($0) }) {
            return .refused(refusal)
        }
        if let free = helper.shortOfSpace() { return .failed("\(free) bytes free in \(helper.stateDirectory)") }
        let missing = input.fileDigests.values.filter { !helper.blobs.contains($0.hash) }.sorted { $0.hash < $1.hash }
        var start = 0
        while start < missing.count {
            var end = start, bytes: Int64 = 0
            while end < missing.count, end == start || bytes + missing[end].size <= Self.fetchBytes { bytes += missing[end].size; end += 1 }
            do {
                let fetched = try await client.read(Array(missing[start..<end]))
                try await NIOThreadPool.singleton.runIfActive {
                    for (digest, contents) in fetched { try helper.blobs.store(Blob(hash: digest.hash, contents: contents)) }
                }
            } catch {
                return .failed("fetching the inputs: \(error)")
            }
            start = end
        }
        helper.blobs.touch(input.fileDigests.keys.map { $0 })
        helper.inFlight.enter()
        defer { helper.inFlight.leave() }
        await helper.slots.acquire()
        let outcome = await helper.compile(job, toolchainTree: emptyEnvironment)
        await helper.slots.release()
        switch outcome {
        case let .result(result):
            await helper.stats.countServed()
            helper.logger.info("action compiled", metadata: [
                "action": "\(input.actionDigest)", "output": "\(job.namedOutputs?.object ?? "")",
                "exit": "\(result.exitStatus)", "compile_ms": "\(result.timings.compile / 1000)"])
            return .finished(result)
        case let .jobFailed(failure):
            helper.logger.notice("action not compiled", metadata: ["action": "\(input.actionDigest)", "failure": "\(failure)"])
            return failure.failureClass == .job ? .refused(failure.description) : .failed(failure.description)
        default:
            return .failed("unexpected answer from the sandbox")
        }
    }
}
