import CompilerArgs
import Foundation
import Logging
import NIOCore
import NIOPosix
import SystemSupport
import Toolchain
import Wire
import WireNIO

/// Runs jobs for peers: receives a job, fetches the environment and contents it lacks, checks its own policy,
/// compiles in the sandbox and answers with the compiler's verdict, or with a ``JobFailure`` whose class comes
/// from facts (how the compiler ended, whether the sandbox was set up, free disk), never from the compiler's text.
final class HelperService: Sendable {
    let name: String
    let stateDirectory: String
    let logger: Logger
    let environments: EnvironmentCache
    let blobs: BlobStore
    let fetches = EnvironmentFetches()
    /// How long a job waits for another job's fetch of the environment it needs.
    let environmentWait: Duration = .seconds(60)
    let slots: SlotPool
    /// One compile per processor at a time: a job given a slot beyond that has its sandbox set up and waits for a
    /// processor, first come first served, instead of sharing one with a compile already running (each finishes
    /// sooner, and a build's last jobs do not all end late together).
    let processors: SlotPool
    let stats: JobStats
    let sandbox: SandboxRunner
    let jobCounter = ManagedAtomicCounter()
    /// Set once SIGTERM arrives: new jobs are refused (their clients try another helper), running ones finish.
    let draining = ManagedFlag()
    /// Jobs from peers being handled now.
    let inFlight = InFlight()
    /// Job folders done with, removed when no job has ended for a second (``sweepWhenQuiet()``).
    let trash: JobTrash
    /// Below this much free space in the state directory a job is not started (and a failed one is not the compiler's verdict).
    let minimumFreeBytes: Int64

    init(name: String, stateDirectory: String, logger: Logger, environments: EnvironmentCache, blobs: BlobStore, slots: SlotPool,
         processors: Int, stats: JobStats, sandbox: SandboxRunner, minimumFreeBytes: Int64 = 64 << 20) {
        self.name = name
        self.stateDirectory = stateDirectory
        self.logger = logger
        self.environments = environments
        self.blobs = blobs
        self.slots = slots
        self.processors = SlotPool(capacity: processors)
        self.stats = stats
        self.sandbox = sandbox
        self.minimumFreeBytes = minimumFreeBytes
        trash = JobTrash(directory: stateDirectory + "/jobs/.trash")
    }

    /// Removes finished jobs' folders once no job has ended for a second; until cancelled.
    func sweepWhenQuiet() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            if trash.isDue(quiet: .seconds(1)) { try? await NIOThreadPool.singleton.runIfActive { self.trash.sweep() } }
        }
    }

    /// The free bytes in the state directory when they are below ``minimumFreeBytes``; nil when there is room
    /// (or the file system cannot be asked).
    func shortOfSpace() -> Int64? {
        guard let free = Posix.freeBytes(stateDirectory), free < minimumFreeBytes else { return nil }
        return free
    }

    /// Starts afresh after a crash: staging folders, partial blobs and job directories left behind are removed.
    func recover() {
        let fm = FileManager.default
        try? fm.removeItem(atPath: stateDirectory + "/jobs")
        for directory in [stateDirectory + "/environments", stateDirectory + "/blobs"] {
            for entry in (try? fm.contentsOfDirectory(atPath: directory)) ?? []
            where entry.hasPrefix(".staging-") || entry.hasPrefix(".incoming-") || entry.contains(".partial-") || entry.hasPrefix(".tmp") {
                try? fm.removeItem(atPath: directory + "/" + entry)
            }
        }
    }

    func serve(_ connection: MessageChannel) async {
        let peer = connection.channel.remoteAddress?.description ?? "?"
        // A client that hangs up (its deadline passed, it was stopped) stops the compile it asked for: nothing
        // runs for nobody, and an abandoned compile never finishes beside its retry.
        let abandoned = ManagedFlag()
        connection.channel.closeFuture.whenComplete { _ in abandoned.set() }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                guard try await acceptHandshake(&iterator, outbound, name: name) != nil else { return }
                // Jobs one after another, as the client sends them (it keeps the connection for its next job to this
                // helper); the client hangs up when it is done with it, or the idle timeout ends it. Closing here
                // could drop the tail of a large result still queued for the socket.
                while let message = try await nextMessage(&iterator) {
                    guard case let .compile(job) = message else { throw FrameError.unexpected(message.kind, expected: "compile") }
                    try await withKeepAlives(outbound) {
                        if draining.isSet {
                            try await outbound.write(.jobFailed(JobFailure(.infrastructure, "shutdown", "\(name) is shutting down")))
                            return
                        }
                        inFlight.enter()
                        defer { inFlight.leave() }
                        let answer = try await self.answer(job, &iterator, outbound, peer: peer, abandoned: abandoned)
                        if case let .jobFailed(failure) = answer {
                            logger.notice("job not compiled", metadata: ["peer": "\(peer)", "class": "\(failure.failureClass)", "failure": "\(failure)"])
                        }
                        try await outbound.write(answer)
                    }
                }
            }
        } catch {
            logger.warning("peer connection closed on error", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    /// The answer to one job: `result` with the compiler's verdict, or `jobFailed`.
    private func answer(_ job: RemoteJob, _ iterator: inout NIOAsyncChannelInboundStream<Message>.AsyncIterator,
                        _ outbound: NIOAsyncChannelOutboundWriter<Message>, peer: String, abandoned: ManagedFlag) async throws -> Message {
        guard job.toolchain.count == 64, job.toolchain.allSatisfy(\.isHexDigit), isCompilerName(job.compiler) else {
            return .jobFailed(JobFailure(.job, "policy", "\(name): not a toolchain id and a compiler driver"))
        }
        // A missing environment is fetched once however many jobs need it; a fetch that fails lets the next
        // waiter fetch it from its own client, and no waiter waits longer than ``environmentWait``.
        while !environments.contains(job.toolchain) {
            switch await fetches.claim(job.toolchain, waitAtMost: environmentWait) {
            case .fetch:
                let outcome: JobFailure?
                do {
                    outcome = environments.contains(job.toolchain) ? nil : try await fetchEnvironment(job.toolchain, &iterator, outbound, peer: peer)
                } catch {
                    await fetches.finish(job.toolchain, installed: false)
                    throw error
                }
                await fetches.finish(job.toolchain, installed: outcome == nil)
                if let outcome { return .jobFailed(outcome) }
            case .finished:
                continue
            case .gaveUp:
                return .jobFailed(JobFailure(.infrastructure, "environment",
                                             "\(name): another job's fetch of environment \(job.toolchain) took over \(environmentWait)"))
            }
        }
        environments.touch(job.toolchain)
        let toolchainTree = environments.root(of: job.toolchain)
        if let refusal = Self.preflight(job, toolchainTree: toolchainTree) {
            return .jobFailed(JobFailure(.job, "policy", "\(name): \(refusal)"))
        }
        if let free = shortOfSpace() {
            return .jobFailed(JobFailure(.infrastructure, "no-space", "\(name): \(free) bytes free in \(stateDirectory)"))
        }
        let (present, absent) = job.files.map(\.hash).reduce(into: ([String](), [String]())) { sets, hash in
            if self.blobs.contains(hash) { sets.0.append(hash) } else { sets.1.append(hash) }
        }
        blobs.touch(present)
        let missing = Array(Set(absent))
        if !missing.isEmpty {
            try await outbound.write(.needBlobs(missing))
            guard case let .blobs(received)? = try await nextMessage(&iterator) else { throw FrameError.closed }
            do {
                try await NIOThreadPool.singleton.runIfActive { for blob in received { try self.blobs.store(blob) } }
            } catch {
                return .jobFailed(JobFailure(.infrastructure, shortOfSpace() != nil ? "no-space" : "missing-input",
                                             "\(name): \(error)"))
            }
            if let lacking = missing.first(where: { !blobs.contains($0) }) {
                return .jobFailed(JobFailure(.infrastructure, "missing-input", "\(name): the client did not send \(lacking)"))
            }
        }
        let waited = await slots.acquireTimed()
        let outcome = await compile(job, toolchainTree: toolchainTree, abandoned: abandoned)
        await slots.release()
        switch outcome {
        case var .result(result):
            result.timings.queue += waited
            await stats.countServed()
            // One line per compile that ran to its end here: chaos runs count compiles that ran twice from it.
            logger.info("job compiled", metadata: [
                "peer": "\(peer)", "output": "\(job.namedOutputs.map { FileResolver.absolute($0.object, in: job.workingDirectory) } ?? "")",
                "exit": "\(result.exitStatus)", "compile_ms": "\(result.timings.compile / 1000)"])
            return .result(result)
        default:
            return outcome
        }
    }

    /// Checks made before anything runs: the compiler is in the environment and can be executed there (a script's
    /// interpreter too), and the arguments pass the helper's own policy.
    static func preflight(_ job: RemoteJob, toolchainTree: String) -> String? {
        var info = stat()
        guard lstat(toolchainTree + job.compiler, &info) == 0 else { return "\(job.compiler) is not in environment \(job.toolchain)" }
        if let head = Posix.readPrefix(toolchainTree + job.compiler, count: 256), head.starts(with: Array("#!".utf8)) {
            let line = String(decoding: head.dropFirst(2).prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            let interpreter = line.split(separator: " ").first.map(String.init) ?? ""
            var target = stat()
            guard interpreter.hasPrefix("/"), stat(toolchainTree + interpreter, &target) == 0 else {
                return "\(job.compiler) is a script whose interpreter \(interpreter) is not in the environment"
            }
        }
        return HelperPolicy.refusal(of: job.arguments, inEnvironment: { path in
            var entry = stat()
            return lstat(toolchainTree + path, &entry) == 0
        })
    }

    /// Asks the submitting daemon for an environment and installs it; the failure when it is refused.
    private func fetchEnvironment(_ id: String, _ iterator: inout NIOAsyncChannelInboundStream<Message>.AsyncIterator,
                                  _ outbound: NIOAsyncChannelOutboundWriter<Message>, peer: String) async throws -> JobFailure? {
        try await outbound.write(.needEnvironment(id: id))
        guard case let .environment(received, archive)? = try await nextMessage(&iterator), received == id else {
            throw FrameError.unexpected(.error, expected: "the environment \(id)")
        }
        do {
            try await NIOThreadPool.singleton.runIfActive {
                let temporary = self.stateDirectory + "/environments/.incoming-" + UUID().uuidString
                defer { unlink(temporary) }
                if let code = Posix.writeFileAtomically(temporary, archive) {
                    throw ResolveError(path: temporary, reason: Posix.errorText(code))
                }
                try self.environments.install(archive: temporary, expectedID: id)
            }
        } catch let error as EnvironmentError {
            if shortOfSpace() != nil {
                return JobFailure(.infrastructure, "no-space", "\(name): environment \(id): \(error)")
            }
            return JobFailure(.job, "environment", "\(name): environment \(id) refused: \(error)")
        } catch {
            return JobFailure(.infrastructure, "environment", "\(name): environment \(id): \(error)")
        }
        logger.info("received toolchain environment", metadata: ["id": "\(id)", "bytes": "\(archive.count)", "from": "\(peer)"])
        return nil
    }

    /// The scheduler's `giveBack`: the newest job waiting for a processor whose environment is one of `toolchains`
    /// ends its wait with `jobFailed` (`moved`), and its client asks for a host again; whether one was waiting.
    func giveBackWaitingJob(toolchains: [String]) async -> Bool {
        await processors.giveBack(newestTaggedWithAnyOf: Set(toolchains))
    }

    /// Runs the job in the sandbox and decides what its end means. The sandbox is set up at once; its compile
    /// starts when one of ``processors`` is free and no waiting job has more input (likely the longer compile), and
    /// the wait is the result's queue time, unless the scheduler asks for the job back meanwhile
    /// (``giveBackWaitingJob(toolchains:)``).
    func compile(_ job: RemoteJob, toolchainTree: String, abandoned: ManagedFlag = ManagedFlag()) async -> Message {
        let directory = stateDirectory + "/jobs/" + String(jobCounter.next()) + "-" + UUID().uuidString.prefix(8)
        defer { trash.discard(directory) }
        let run: SandboxRunner.Run, waited: UInt64
        do {
            let prepared = try await NIOThreadPool.singleton.runIfActive {
                try self.sandbox.prepare(job, toolchainTree: toolchainTree, blobs: self.blobs, jobDirectory: directory)
            }
            guard let processorWait = await processors.acquireTimed(unlessGivenBack: job.toolchain, priority: job.inputBytes) else {
                logger.debug("gave a waiting job back for a host with an idle processor", metadata: ["compiler": "\(job.compiler)"])
                return .jobFailed(JobFailure(.infrastructure, JobFailure.movedCode, "\(name): gave the job back before it started, for a host with an idle processor"))
            }
            waited = processorWait
            let started: Result<SandboxRunner.Run, any Error>
            do {
                started = .success(try await NIOThreadPool.singleton.runIfActive { try self.sandbox.start(prepared, abandoned: { abandoned.isSet }) })
            } catch {
                started = .failure(error)
            }
            await processors.release()
            run = try started.get()
        } catch let refusal as TreeRefusal {
            return .jobFailed(JobFailure(.job, "sandbox", "\(name): \(refusal)"))
        } catch let limit as SandboxRunner.Refusal {
            return .jobFailed(JobFailure(.infrastructure, "limit", limit.reason))
        } catch is NIOThreadPoolError.ThreadPoolInactive {
            return .jobFailed(JobFailure(.infrastructure, "shutdown", "the helper is shutting down"))
        } catch {
            let code = shortOfSpace() != nil ? "no-space" : "sandbox"
            return .jobFailed(JobFailure(.infrastructure, code, "\(name): \(error)"))
        }
        let verdict = classify(run, job: job)
        guard case var .result(result) = verdict else { return verdict }
        result.timings.queue += waited
        return .result(result)
    }

    /// The compiler's verdict, or the infrastructure failure the facts show.
    func classify(_ run: SandboxRunner.Run, job: RemoteJob) -> Message {
        let status = run.result.exitStatus
        guard run.compilerRan else {
            return .jobFailed(JobFailure(.infrastructure, "sandbox", "\(name): the sandbox was not set up: " +
                                         String(decoding: run.result.stderr.prefix(500), as: UTF8.self)))
        }
        if status >= 128 {
            return .jobFailed(JobFailure(.infrastructure, "signal", "\(name): the compiler was killed by signal \(status - 128)"))
        }
        if let killed = run.signalled.first {
            return .jobFailed(JobFailure(.infrastructure, "signal", "\(name): a program of the compile ended by \(killed)"))
        }
        // gcc's drivers exit with 4 for an internal error, which is also how they end when a program they run
        // (cc1, as) is killed: a local compile gives the real answer.
        if status == 4, !CompilerArgs.isClangDriver(job.compiler) {
            return .jobFailed(JobFailure(.infrastructure, "signal", "\(name): the compiler reported an internal error (exit 4)"))
        }
        if status != 0, let free = shortOfSpace() {
            return .jobFailed(JobFailure(.infrastructure, "no-space", "\(name): the compile failed with \(free) bytes free"))
        }
        if status == 0, let object = job.namedOutputs?.object, !run.result.outputs.contains(where: { $0.path == object }) {
            return .jobFailed(JobFailure(.infrastructure, "missing-output", "\(name): the compile succeeded without writing \(object)"))
        }
        return .result(run.result)
    }
}
