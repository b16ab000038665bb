import CompilerArgs
import Foundation
import IncludeScan
import Logging
import NIOCore
import NIOPosix
import Synchronization
import SystemSupport
import Toolchain
import Wire
import WireNIO

/// Serves launchers and tools on the Unix socket: local slots, jobs to distribute, stats and status. A job is
/// prepared with the caller's rights only (``Caller``), then handed to the ``JobDistributor``.
final class LauncherService: Sendable {
    let name: String
    let platform: String
    let logger: Logger
    let localSlots: SlotPool
    let stats: JobStats
    let journal: JobJournal
    let mapped: MappedEnvironments
    let translation: IncludeTranslation
    let standIns = StandInCheck()
    /// The include scan that spares launchers the compiler's preprocessing pass.
    let includes = IncludeScanner()
    /// The scans' results, kept across compiles and restarts: a warm tree is not scanned again.
    let warm: WarmInputs
    /// Compilers whose native toolchain is being packed by `nativeInBackground`.
    private let packingInBackground = Mutex(Set<String>())
    let probed = ProbedHeaders()
    let resolver: FileResolver
    let toolchains: ToolchainRegistry
    /// Archives of this machine's own toolchains, by id, sent to helpers that lack them.
    let archiveDirectory: String
    let scheduler: SchedulerLink?
    let distributor: JobDistributor?
    private let packing = Mutex(())
    /// Set once SIGTERM arrives: new jobs compile locally while running ones finish.
    let draining = ManagedFlag()
    /// Jobs being distributed now.
    let inFlight = InFlight()
    /// Where jobs are prepared and warm entries written: one thread per processor this daemon may use, nicer than
    /// the rest. Preparing is CPU work, and on a client held to a fraction of a core, jobs prepared side by side are
    /// all ready late; one after another, the first goes out while the next is prepared, and sending it (or handing
    /// back a result) does not wait behind the next one's scan.
    let preparing: PreparationPool

    init(name: String, platform: String, stateDirectory: String, logger: Logger, localSlots: SlotPool, preparing: PreparationPool, stats: JobStats,
         resolver: FileResolver, toolchains: ToolchainRegistry, scheduler: SchedulerLink?, distributor: JobDistributor?) throws {
        self.name = name
        self.platform = platform
        self.logger = logger
        self.localSlots = localSlots
        self.preparing = preparing
        self.stats = stats
        self.resolver = resolver
        self.toolchains = toolchains
        self.scheduler = scheduler
        self.distributor = distributor
        journal = JobJournal(path: stateDirectory + "/jobs.jsonl")
        mapped = MappedEnvironments(scratch: stateDirectory)
        translation = IncludeTranslation()
        archiveDirectory = stateDirectory + "/envs"
        try SandboxTree.ensureDirectory(archiveDirectory)
        warm = WarmInputs(directory: stateDirectory + "/warm-inputs")
    }

    func serve(_ connection: MessageChannel) async {
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
                guard try await acceptHandshake(&iterator, outbound, name: name) != nil else { return }
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
                        let (reply, pendingWrite) = try await withKeepAlives(outbound) {
                            await self.inFlight.around { await self.distribute(job, for: caller) }
                        }
                        switch reply {
                        case .runLocally, .scanNeeded:
                            // The launcher compiles, or scans with the compiler, here now: a local slot for it.
                            try await withKeepAlives(outbound) { await self.localSlots.acquire() }
                            heldSlot = true
                        default: break
                        }
                        try await outbound.write(reply)
                        if let pendingWrite {
                            // Counted in flight, so a drain (SIGTERM) waits for the file.
                            await inFlight.around { _ = try? await self.preparing.run { pendingWrite.run() } }
                        }
                    case let .statsRequest(reset):
                        if reset, caller.isRoot || caller.uid == getuid() { await stats.reset() }
                        try await outbound.write(.stats(json: await stats.json()))
                    case .subscribe:
                        // A monitor: relay the scheduler's event stream until either side ends.
                        guard let scheduler, try await scheduler.relayEvents(name: name, { try await outbound.write(.event(json: $0)) }) else {
                            try await outbound.write(.error(Self.noScheduler))
                            return
                        }
                        return
                    case let .historyRequest(seconds):
                        if let json = await scheduler?.history(seconds: seconds) {
                            try await outbound.write(.history(json: json))
                        } else {
                            try await outbound.write(.error(Self.noScheduler))
                        }
                    case .statusRequest:
                        if let json = await scheduler?.status() {
                            try await outbound.write(.status(json: json))
                        } else {
                            try await outbound.write(.error(Self.noScheduler))
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

    /// The answer to a tool's request that needs the scheduler, when none is connected.
    static let noScheduler = "no scheduler connected (start swlaunchd with --scheduler HOST:PORT)"

    /// Prepares a job and has the distributor place it; the answer for the launcher, and the file of a warm entry
    /// its include scan made, to write once the answer is sent.
    func distribute(_ job: JobRequest, for caller: Caller) async -> (reply: Message, pendingWrite: WarmInputs.PendingWrite?) {
        var pendingWrite: WarmInputs.PendingWrite?
        let reply = await answer(job, for: caller, pendingWrite: &pendingWrite)
        return (reply, pendingWrite)
    }

    private func answer(_ job: JobRequest, for caller: Caller, pendingWrite: inout WarmInputs.PendingWrite?) async -> Message {
        let queued = Posix.nowMicros()
        let source = job.displayName
        func local(_ reason: String, detail: String = "") async -> Message {
            // One line per job sent back to compile here: chaos runs count compiles that ran twice from it.
            logger.info("compiling locally", metadata: [
                "reason": "\(reason)", "output": "\(job.outputs.map { FileResolver.absolute($0, in: job.workingDirectory) }.first ?? "")"])
            await stats.countFallback(reason: reason)
            await scheduler?.report(JobReport(outcome: .local, host: "", source: source, reason: reason))
            return .runLocally(reason: reason + detail)
        }
        guard let distributor else { return await local("no-scheduler") }
        if draining.isSet { return await local("shutting-down") }
        // The host is asked for while the job is prepared, when its toolchain is known without preparing it: on a
        // client short of processor time, the scheduler's answer is then not one more wait after the preparation.
        let (preparation, early) = await withTaskGroup(of: HostAnswer.self) { group in
            if let choices = earlyChoices(job, for: caller) {
                group.addTask { await distributor.hosts.requestHost(choices: choices, exclude: []) }
            }
            let preparation: Result<(PreparedJob, WarmInputs.PendingWrite?), any Error>
            do {
                preparation = .success(try await preparing.run { try self.prepare(job, for: caller) })
            } catch {
                preparation = .failure(error)
                // A job that is not distributed does not wait for its host.
                group.cancelAll()
            }
            return (preparation, await group.next())
        }
        var earlyGrant: HostGrant?
        if case let .granted(grant)? = early {
            // A grant the job cannot use (it was not prepared, or chose other toolchains) frees its slot at once.
            if case let .success((prepared, _)) = preparation, prepared.variants[grant.choice.toolchain] != nil {
                earlyGrant = grant
            } else {
                await distributor.hosts.report(JobReport(id: grant.id, outcome: .unused, host: grant.name, source: source, reason: "not-prepared"))
            }
        }
        var prepared: PreparedJob
        do {
            (prepared, pendingWrite) = try preparation.get()
        } catch let error as UntrustedCompiler {
            logger.notice("compiler not distributed", metadata: ["reason": "\(error.reason)"])
            return await local("untrusted-compiler")
        } catch let error as AccessDenied {
            logger.notice("input not readable by the compile's user", metadata: ["error": "\(error)"])
            return await local("unreadable-input")
        } catch let error as ScanNeeded {
            logger.debug("the include scan leaves the job to the compiler's", metadata: ["reason": "\(error.reason)"])
            // Counted by kind ("computed #include", "precompiled header", "the include scan does not follow -I-").
            await stats.countCompilerScan(reason: error.kind)
            return .scanNeeded(reason: error.reason)
        } catch let error as MappedEnvironmentError {
            logger.warning("cannot use a [toolchains] environment", metadata: ["error": "\(error)"])
            return await local("bad-environment", detail: ": \(error)")
        } catch {
            logger.warning("cannot prepare job", metadata: ["error": "\(error)"])
            return await local("unshippable-input")
        }
        await stats.countInputScan(prepared.inputScan)
        prepared.source = source
        prepared.clientQueueMicros = Posix.nowMicros() - queued
        prepared.preprocessMicros = job.preprocessMicros
        let distribution = await distributor.distribute(prepared, granted: earlyGrant)
        let attempts: [AttemptRecord]
        switch distribution {
        case let .remote(_, _, _, records), let .local(_, records): attempts = records
        }
        for attempt in attempts {
            guard let failure = attempt.failure else { continue }
            if failure.code == JobFailure.movedCode {
                await stats.countMoved()
                continue
            }
            await stats.countHelperFailure(code: failure.code)
            logger.warning("remote attempt failed", metadata: ["helper": "\(attempt.host)", "class": "\(failure.failureClass)", "failure": "\(failure)"])
        }
        switch distribution {
        case let .local(reason, _):
            return await local(reason)
        case .remote(var result, let host, _, _):
            // A safety net under the include scan: a compile that failed on a missing file is run again from the
            // compiler's own scan, so a header the scan missed can never fail a build (one genuinely missing
            // fails the same way again, with the compiler's list).
            if !job.source.isEmpty, result.exitStatus != 0, String(decoding: result.stderr, as: UTF8.self).contains("No such file or directory") {
                logger.notice("a compile from the include scan missed a file: the compiler scans", metadata: ["source": "\(job.source)"])
                await stats.countCompilerScan(reason: "missing file")
                return .scanNeeded(reason: "missing file")
            }
            // Map the helper's physical output paths back to the names the launcher wrote.
            let remote = prepared.job.namedOutputs, local = job.namedOutputs
            result.outputs = result.outputs.compactMap { file in
                if file.path == remote?.object, let object = local?.object { return OutputFile(path: object, contents: file.contents) }
                if file.path == remote?.dependencyFile, let dependencyFile = local?.dependencyFile {
                    return OutputFile(path: dependencyFile, contents: file.contents)
                }
                return nil
            }
            await stats.countRemote(host: host, timings: result.timings, cached: result.host == REAPIBackend.cacheHost)
            await journal.record(host: host, outputs: job.outputs.map { FileResolver.absolute($0, in: job.workingDirectory) },
                                 timings: result.timings)
            return .result(result)
        }
    }

    /// The toolchain choices of a job known before it is prepared: its compiler's native toolchain, packed already,
    /// when the project names no environments (which `prepare` reads, with the caller's rights) and the compiler is
    /// one the daemon runs for this caller and scans for (else nil: the host is asked for after the preparation).
    func earlyChoices(_ job: JobRequest, for caller: Caller) -> [ToolchainChoice]? {
        guard job.environments.isEmpty, caller.programRefusal(job.compiler) == nil,
              job.source.isEmpty || !isClangDriver(job.compiler),
              let toolchain = toolchains.nativeIfKnown(compiler: job.compiler), Posix.fileExists(archivePath(of: toolchain.id)) else { return nil }
        return [ToolchainChoice(platform: platform, toolchain: toolchain.id)]
    }

    /// Resolves the job's inputs and toolchains on this machine (blocking file I/O), with the caller's rights:
    /// the environments from the project's `[toolchains]` for the platforms it names, the native compiler (packed
    /// on first use) for this machine's platform unless `[toolchains]` names one for it. With it, the file of the
    /// warm entry its include scan made (kept in memory already), to write later.
    func prepare(_ job: JobRequest, for caller: Caller) throws -> (PreparedJob, WarmInputs.PendingWrite?) {
        // Only compilers no user but root can change are run, probed or packed for anyone.
        if let reason = caller.programRefusal(job.compiler) { throw UntrustedCompiler(reason: reason) }
        // First the inputs: a job the include scan leaves to the compiler's comes back, prepared again.
        var inputScan = "compiler"
        var inputs = job.inputs
        // The warm check's stats serve the resolution of the same files below.
        let folders = FolderHandles()
        var pendingWrite: WarmInputs.PendingWrite?
        if !job.source.isEmpty { (inputs, inputScan, pendingWrite) = try scanInputs(of: job, folders: folders) }
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
                try standIns.check(environment, standIn: standIn, client: job.compiler)
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
        if !choices.contains(where: { $0.platform == platform }) {
            // With environments for other platforms at hand, a job does not wait for the native one to be packed
            // (on a Pi, learning its own compiler's files takes a while and its jobs go to x86_64 helpers): it is
            // packed in the background and offered from the next job on.
            let toolchain = choices.isEmpty ? try toolchains.native(compiler: job.compiler) : nativeInBackground(job.compiler)
            if let toolchain {
                try ensureArchive(of: toolchain)
                variants[toolchain.id] = JobVariant(compiler: job.compiler, arguments: job.arguments, translated: false)
                choices.insert(ToolchainChoice(platform: platform, toolchain: toolchain.id), at: 0)
            }
        }
        var outputs: [String] = []
        var outputDirectories: [String] = []
        for output in job.outputs {
            let absolute = FileResolver.absolute(output, in: job.workingDirectory)
            let (directory, _) = try resolver.resolve(SandboxTree.parent(absolute), as: caller)
            outputDirectories.append(directory)
            outputs.append((directory == "/" ? "" : directory) + "/" + (absolute.split(separator: "/").last.map(String.init) ?? ""))
        }
        var tree = try resolver.tree(files: inputs, directories: job.directories + outputDirectories + [job.workingDirectory],
                                     in: job.workingDirectory, as: caller, folders: folders)
        let probedFiles = probedHeaders(of: job, in: tree)
        if !probedFiles.isEmpty {
            let more = try resolver.tree(files: probedFiles, directories: [], in: job.workingDirectory, as: caller, folders: folders)
            let known = Set(tree.files.map(\.path)), knownLinks = Set(tree.symlinks.map(\.path))
            for file in more.files where !known.contains(file.path) { tree.files.append(file) }
            for link in more.symlinks where !knownLinks.contains(link.path) { tree.symlinks.append(link) }
        }
        let (cwd, cwdLinks) = try resolver.resolve(job.workingDirectory, as: caller)
        let remote = RemoteJob(toolchain: choices[0].toolchain, compiler: job.compiler, arguments: job.arguments, workingDirectory: cwd,
                               environment: job.environment, files: tree.files, symlinks: tree.symlinks + cwdLinks,
                               directories: tree.directories, outputs: outputs, inputBytes: tree.totalBytes)
        var prepared = PreparedJob(choices: choices, variants: variants, job: remote, inputBytes: tree.totalBytes)
        prepared.inputScan = inputScan
        return (prepared, pendingWrite)
    }

    /// The files the job may read, from the include scan (a superset) or from an earlier scan that nothing has
    /// changed since (``WarmInputs``), with which (`daemon` or `warm`); throws ``ScanNeeded`` when the compiler
    /// must scan (an option or a directive the scan does not follow, clang, no answer from `-E -v`); and the file
    /// of the warm entry a scan made, to write later.
    func scanInputs(of job: JobRequest, folders: FolderHandles = FolderHandles()) throws
        -> (files: [String], method: String, pendingWrite: WarmInputs.PendingWrite?) {
        guard !isClangDriver(job.compiler) else { throw ScanNeeded(reason: "clang") }
        let options: IncludeOptions
        switch IncludeOptions.parse(job.arguments, workingDirectory: job.workingDirectory) {
        case let .success(parsed): options = parsed
        case let .failure(error): throw ScanNeeded(reason: error.description)
        }
        let language = job.language.isEmpty ? "c" : job.language
        let system: [String]
        do {
            system = options.noStandardIncludes ? []
                : try translation.searchPath(compiler: job.compiler, language: language, options: IncludeTranslation.searchOptions(job.arguments))
        } catch {
            throw ScanNeeded(reason: "\(error)")
        }
        // gcc reads stdc-predef.h before the source when it compiles for a hosted system with its own folders.
        let hosted = !options.noStandardIncludes && !job.arguments.contains("-ffreestanding") && !job.arguments.contains("-fno-hosted")
        func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : job.workingDirectory + "/" + path }
        let implicit = hosted ? ["stdc-predef.h"] : []
        let searchPath = options.searchPath(compilerSystem: system)
        // A relative -include is looked for in the working folder first: the key names it absolutely.
        let key = WarmInputs.Key(source: absolute(job.source), preincludes: options.preincludes.map(absolute), implicit: implicit,
                                 searchPath: searchPath, workingDirectory: job.workingDirectory)
        if let files = warm.files(for: key, directives: includes.directiveFingerprint(of:), folders: folders) { return (files, "warm", nil) }
        let (outcome, probes, read, sightings) = includes.scanRecordingProbes(source: job.source, preincludes: options.preincludes, implicit: implicit,
                                                               searchPath: searchPath, workingDirectory: job.workingDirectory, folders: folders)
        switch outcome {
        case let .files(files):
            // The entry's file is written after the compile's reply: not on the way to the helper.
            let write = warm.remember(key, files: files, probes: probes, read: read, sightings: sightings,
                                      sourceDirectives: files.first.flatMap(includes.directiveFingerprint(of:)), writeLater: true)
            return (files, "daemon", write)
        case let .cannot(reason): throw ScanNeeded(reason: reason)
        }
    }

    /// Files that the job's sources probe with `__has_include` (see ``ProbedHeaders``): every file of a probed name
    /// in the directories the probe searches.
    func probedHeaders(of job: JobRequest, in tree: ResolvedTree) -> [String] {
        var probes: [(ProbedHeaders.Probe, String)] = []
        for file in tree.files {
            for probe in probed.probes(ofHash: file.hash, contents: { resolver.contents(ofHash: file.hash) }) {
                probes.append((probe, SandboxTree.parent(file.path)))
            }
        }
        guard !probes.isEmpty else { return [] }
        let language = job.language.isEmpty ? "c" : job.language
        let system = (try? translation.searchPath(compiler: job.compiler, language: language,
                                                  options: IncludeTranslation.searchOptions(job.arguments))) ?? []
        let (quoted, angled) = ProbedHeaders.directories(arguments: job.arguments, workingDirectory: job.workingDirectory, system: system)
        var found: [String] = [], seen = Set<String>()
        for (probe, directory) in probes where !probe.name.hasPrefix("/") || Posix.fileExists(probe.name) {
            let candidates = probe.name.hasPrefix("/") ? [probe.name]
                : (probe.quoted ? [directory] + quoted : angled).map { $0 + "/" + probe.name }
            for candidate in candidates where seen.insert(candidate).inserted && Posix.fileExists(candidate) {
                found.append(candidate)
            }
        }
        return found
    }

    /// The archive of a native toolchain, created on first use (the user does nothing).
    func archivePath(of id: String) -> String { archiveDirectory + "/" + id + ".tar.zst" }

    /// The archive this daemon serves for an environment id: a `[toolchains]` archive, or a native one.
    func servedArchive(_ id: String) -> String? { mapped.archivePath(of: id) ?? archivePath(of: id) }

    /// The native toolchain of `compiler` when it is packed already; else nil, with packing started (once) on a
    /// thread of its own.
    func nativeInBackground(_ compiler: String) -> Toolchain? {
        if let toolchain = toolchains.nativeIfKnown(compiler: compiler), Posix.fileExists(archivePath(of: toolchain.id)) { return toolchain }
        guard packingInBackground.withLock({ $0.insert(compiler).inserted }) else { return nil }
        let thread = Thread { [self] in
            defer { _ = packingInBackground.withLock { $0.remove(compiler) } }
            do { try ensureArchive(of: try toolchains.native(compiler: compiler)) } catch {
                logger.warning("cannot pack the native toolchain", metadata: ["compiler": "\(compiler)", "error": "\(error)"])
            }
        }
        thread.start()
        return nil
    }

    func ensureArchive(of toolchain: Toolchain) throws {
        let path = archivePath(of: toolchain.id)
        guard !Posix.fileExists(path) else { return }
        try packing.withLock { _ in
            guard !Posix.fileExists(path) else { return }
            logger.info("packing toolchain environment", metadata: ["compiler": "\(toolchain.compiler)", "id": "\(toolchain.id)"])
            try EnvironmentArchive.write(toolchain, manifest: EnvironmentManifest(platform: platform, compilers: [toolchain.compiler]), to: path)
        }
    }
}

/// The include scan cannot settle a job's inputs: the launcher runs the compiler's scan.
struct ScanNeeded: Error {
    let reason: String
    /// The reason without the paths it names, for stats: `computed #include`, `precompiled header`, `clang`.
    var kind: String {
        var words = reason.split(separator: " ").prefix { !$0.hasPrefix("/") }
        while let last = words.last, last == "at" || last == "beside" { words.removeLast() }
        return words.joined(separator: " ")
    }
}

/// A compiler that a user other than root could change: it is not packed, probed or sent for anyone.
struct UntrustedCompiler: Error {
    let reason: String
}

extension JobRequest {
    /// The source file as the command names it: the one the daemon scans, else the argument that looks like a
    /// C or C++ source, else the object.
    var displayName: String {
        if !source.isEmpty { return source }
        let suffixes = [".c", ".cc", ".cpp", ".cxx", ".c++", ".C", ".m", ".mm", ".i", ".ii"]
        if let argument = arguments.last(where: { argument in !argument.hasPrefix("-") && suffixes.contains { argument.hasSuffix($0) } }) {
            return argument
        }
        return outputs.first ?? ""
    }
}
