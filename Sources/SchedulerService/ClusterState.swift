import History
import Logging
import Records
import SchedulerHTTP
import Synchronization
import Scheduling
import SystemSupport
import Wire

/// The cluster state behind the scheduler's connections, and what monitors, metrics and history learn of it.
///
/// One lock around a ``ClusterBook``: a grant is a few microseconds of work, answered on the event loop that read
/// the request (``SchedulerFastPath``), with no hop to a task or an actor and back.
final class ClusterState: Sendable {
    private let book: Mutex<ClusterBook>
    /// What protects the scheduler's connections, for `status`.
    let security: String
    let metrics: SchedulerMetrics
    let history: JobHistory?
    let logger: Logger

    init(heartbeatTimeout: Double, security: String, history: JobHistory?, logger: Logger) {
        self.security = security
        self.history = history
        self.logger = logger
        let metrics = SchedulerMetrics()
        self.metrics = metrics
        book = Mutex(ClusterBook(heartbeatTimeout: heartbeatTimeout, metrics: metrics, history: history, logger: logger))
    }

    // Every change that can free a slot answers the host requests waiting for one, off the lock.
    // A host with a processor free and nothing waiting for it takes a job waiting on another (``ClusterBook/giveBack(toward:)``).
    func join(_ info: HostInfo, connection: UInt64, send: (@Sendable (Message) -> Void)? = nil) -> ClusterBook.JoinOutcome {
        let (outcome, answers) = book.withLock {
            let outcome = $0.join(info, connection: connection, send: send)
            return (outcome, $0.servePending() + $0.giveBack(toward: info.name))
        }
        deliver(answers)
        return outcome
    }
    func leave(_ name: String, connection: UInt64) {
        deliver(book.withLock { $0.leave(name, connection: connection); return $0.servePending() })
    }
    func heartbeat(_ name: String, running: Int, load: Double, toolchains: [String]) {
        deliver(book.withLock {
            $0.heartbeat(name, running: running, load: load, toolchains: toolchains)
            return $0.servePending() + $0.giveBack(toward: name)
        })
    }
    func expire() -> [String] { book.withLock { $0.expire() } }
    /// The answer to a host request: a grant, `noHost`, or nil when it waits for a slot and `answerLater` will give
    /// the answer (nil `answerLater`: no waiting, the request is queued on the best host at once).
    func request(_ request: HostRequest, client: String, answerLater: (@Sendable (Message) -> Void)?) -> Message? {
        book.withLock { $0.request(request, client: client, answerLater: answerLater) }
    }
    /// Answers the requests that can be answered now (a slot freed, or they waited long enough).
    func servePending() { deliver(book.withLock { $0.servePending() }) }
    func started(id: UInt64, host: String, source: String, client: String) {
        book.withLock { $0.started(id: id, host: host, source: source, client: client) }
    }
    func record(_ report: JobReport, client: String) {
        deliver(book.withLock { $0.record(report, client: client); return $0.servePending() + $0.giveBack(toward: report.host) })
    }

    private func deliver(_ answers: [ClusterBook.Answer]) {
        for answer in answers { answer.send(answer.message) }
    }
    func tick() { book.withLock { $0.tick() } }
    func hostRecords() -> [StatusRecord.Host] { book.withLock { $0.hostRecords() } }
    func statusJSON() -> String { RecordJSON.encode(StatusRecord(security: security, hosts: hostRecords())) }

    /// A new subscriber's stream: a snapshot (hosts, the latest finished jobs oldest first, then the running
    /// ones), then every event. A subscriber that falls more than 10,000 events behind loses the oldest.
    func subscribe() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(10_000))
        let id = book.withLock { $0.subscribe(continuation) }
        // Off the lock: a stream's end may be reported on any thread, even one that holds it.
        continuation.onTermination = { _ in Task { self.book.withLock { $0.unsubscribe(id) } } }
        return stream
    }

    /// Writes the finished jobs and measured speeds to the history, the database work off the lock.
    func saveHistory() async {
        guard let history else { return }
        let (jobs, speeds) = book.withLock { $0.takeUnsaved() }
        do {
            try history.append(jobs)
            try history.saveSpeeds(speeds, now: Posix.wallSeconds())
        } catch {
            logger.warning("cannot write the job history", metadata: ["error": "\(error)"])
        }
    }
}

/// What the scheduler knows and has seen: hosts, jobs in flight, recent jobs and monitors. Guarded by ``ClusterState``.
struct ClusterBook {
    var cluster: Cluster
    private let clock = ContinuousClock()
    private let start = ContinuousClock.now

    let metrics: SchedulerMetrics
    let history: JobHistory?

    init(heartbeatTimeout: Double, metrics: SchedulerMetrics, history: JobHistory?, logger: Logger) {
        cluster = Cluster(heartbeatTimeout: heartbeatTimeout)
        self.history = history
        self.metrics = metrics
        do {
            knownSpeeds = try history?.speeds() ?? [:]
        } catch {
            logger.warning("cannot read the measured host speeds", metadata: ["error": "\(error)"])
        }
    }

    var now: Double {
        let elapsed = clock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    // MARK: Hosts

    /// The connection that registered each host name.
    private var owners: [String: UInt64] = [:]
    /// How to send each registered host a message it did not ask for (a `giveBack`), when its connection says.
    private var senders: [String: @Sendable (Message) -> Void] = [:]
    /// When each host was last asked to give a job back: once per ``giveBackInterval`` at most.
    private var askedToGiveBack: [String: Double] = [:]
    static let giveBackInterval = 0.5
    /// Speeds measured in earlier runs (from the history), applied to a host that joins unmeasured.
    private var knownSpeeds: [String: JobHistory.HostSpeed] = [:]

    enum JoinOutcome { case joined, replacedItsOldConnection, refusedDuplicateName }

    /// Adds a host for `connection`. A name held by another live connection is refused unless the registration
    /// carries the same host id (the same daemon reconnecting before its old connection was seen to close).
    mutating func join(_ info: HostInfo, connection: UInt64, send: (@Sendable (Message) -> Void)? = nil) -> JoinOutcome {
        var outcome = JoinOutcome.joined
        if let owner = owners[info.name], owner != connection, let live = cluster.hosts[info.name] {
            guard !info.id.isEmpty, live.info.id == info.id else { return .refusedDuplicateName }
            outcome = .replacedItsOldConnection
        }
        owners[info.name] = connection
        senders[info.name] = send
        cluster.join(info, now: now)
        if cluster.hosts[info.name]?.speed == nil, let known = knownSpeeds[info.name] {
            cluster.restore(info.name, speed: known.speed, jobsDone: known.jobsDone)
        }
        if let host = hostRecords(named: info.name) { publish(ClusterEvent(kind: .hostJoined, time: Posix.wallSeconds(), hosts: host)) }
        return outcome
    }

    /// Removes a host, only when `connection` is the one that registered it; its jobs in flight are lost.
    mutating func leave(_ name: String, connection: UInt64) {
        guard owners[name] == connection else { return }
        let gone = hostRecords(named: name)
        remember(name)
        owners[name] = nil
        senders[name] = nil
        askedToGiveBack[name] = nil
        cluster.leave(name)
        pending.removeAll { $0.client == name }
        publish(ClusterEvent(kind: .hostLeft, time: Posix.wallSeconds(), hosts: gone))
        for (key, job) in running where job.client == name {
            running[key] = nil
            cluster.release(job.host)
            var lost = job
            lost.outcome = "lost"
            lost.reason = "client-left"
            lost.finished = Posix.wallSeconds()
            finish(lost)
        }
    }

    mutating func heartbeat(_ name: String, running: Int, load: Double, toolchains: [String]) {
        cluster.heartbeat(name, running: running, load: load, toolchains: toolchains, now: now)
    }

    mutating func expire() -> [String] {
        let gone = cluster.expire(now: now)
        for name in gone {
            owners[name] = nil
            senders[name] = nil
            askedToGiveBack[name] = nil
        }
        return gone
    }

    /// Keeps a host's measured speed for when it comes back, in this run and (through the history) the next.
    private mutating func remember(_ name: String) {
        guard let host = cluster.hosts[name], let speed = host.speed else { return }
        knownSpeeds[name] = JobHistory.HostSpeed(name: name, id: host.info.id, speed: speed, jobsDone: host.jobsDone)
    }

    // MARK: Jobs

    /// Jobs granted and not yet reported, by `<client>#<request id>`.
    private var running: [String: JobEvent] = [:]
    private var localJobs: UInt64 = 0
    /// Finished jobs not yet written to the history.
    private var unsaved: [JobEvent] = []
    /// The latest finished jobs, oldest first, for a new subscriber's snapshot.
    private var recent: [JobEvent] = []
    static let recentLimit = 500

    /// A host request waiting for a free slot.
    struct PendingRequest {
        let request: HostRequest
        let client: String
        let since: Double
        let answer: @Sendable (Message) -> Void
    }

    /// An answer to a request that waited, to send once the lock is released.
    struct Answer {
        let send: @Sendable (Message) -> Void
        let message: Message
    }

    /// How long a host request waits for a slot to free before it is queued on the host expected to finish it first.
    /// A job queued on one helper stays there when another helper's slot frees first: near a build's end, that
    /// helper idles while the job waits (in the peer benchmark, a job waited 1.3 s behind the build's longest
    /// compile while the other helper freed two slots).
    static let maximumWait = 2.0
    /// Requests waiting for a slot, oldest first.
    private var pending: [PendingRequest] = []

    /// Grants `request` a host with a free slot, or answers `noHost`; when every suitable host is busy, the request
    /// waits (nil) for ``servePending()`` to answer it through `answerLater`, or is queued at once without one.
    mutating func request(_ request: HostRequest, client: String, answerLater: (@Sendable (Message) -> Void)?) -> Message? {
        switch cluster.place(request, now: now, queueing: answerLater == nil) {
        case let .granted(host, choice):
            return admit(request, client: client, host: host, choice: choice)
        case .none:
            metrics.refusedForLackOfHosts()
            return .noHost(id: request.id, reason: "no helper can take the job now")
        case .full:
            // (Only without queueing, that is with `answerLater`.)
            guard let answerLater else { return .noHost(id: request.id, reason: "no helper can take the job now") }
            pending.append(PendingRequest(request: request, client: client, since: now, answer: answerLater))
            return nil
        }
    }

    /// Answers waiting requests, oldest first, while a slot is free for them (or they waited ``maximumWait``: then
    /// queued on the best host); stops at the first that must wait on, so a freed slot costs one placement. (A
    /// request for a platform whose hosts are all busy holds the ones behind it up to ``maximumWait``.)
    mutating func servePending() -> [Answer] {
        guard !pending.isEmpty else { return [] }
        let t = now
        var answers: [Answer] = []
        var served = 0
        while served < pending.count {
            let waiting = pending[served]
            let message: Message
            switch cluster.place(waiting.request, now: t, queueing: t - waiting.since >= Self.maximumWait) {
            case let .granted(host, choice):
                message = admit(waiting.request, client: waiting.client, host: host, choice: choice)
            case .none:
                metrics.refusedForLackOfHosts()
                message = .noHost(id: waiting.request.id, reason: "no helper can take the job now")
            case .full:
                pending.removeFirst(served)
                return answers
            }
            metrics.waitedForSlot(seconds: t - waiting.since)
            answers.append(Answer(send: waiting.answer, message: message))
            served += 1
        }
        pending.removeAll()
        return answers
    }

    /// When `idle` has a processor free and no request waits for it: asks the host with the most jobs waiting for a
    /// processor (``Cluster/hostToGiveBack(for:now:skip:)``) to give its newest back, so that its client asks again and
    /// `idle` runs it now. Near a build's end one helper otherwise idles while a job waits behind another's compile.
    mutating func giveBack(toward idle: String) -> [Answer] {
        guard cluster.hasWaitingJobs, pending.isEmpty else { return [] }
        let t = now
        let asked = askedToGiveBack, senders = senders
        guard let source = cluster.hostToGiveBack(for: idle, now: t, skip: { name in
            senders[name] == nil || t - (asked[name] ?? -.infinity) < Self.giveBackInterval
        }), let send = senders[source], let toolchains = cluster.hosts[idle]?.info.toolchains else { return [] }
        askedToGiveBack[source] = t
        metrics.askedToGiveBack()
        return [Answer(send: send, message: .giveBack(host: idle, toolchains: toolchains))]
    }

    /// Counts a granted job as running and publishes it; the grant to send.
    private mutating func admit(_ request: HostRequest, client: String, host: HostState, choice: ToolchainChoice) -> Message {
        metrics.granted(needsEnvironment: !host.info.toolchains.contains(choice.toolchain))
        let job = JobEvent(key: "\(client)#\(request.id)", client: client, host: host.info.name, outcome: "running", granted: Posix.wallSeconds())
        running[job.key] = job
        publish(ClusterEvent(kind: .jobGranted, time: job.granted, jobs: [job]))
        return .hostGrant(HostGrant(id: request.id, name: host.info.name, address: host.info.address, port: host.info.port,
                                    choice: choice, speed: host.speed ?? 0))
    }

    mutating func started(id: UInt64, host: String, source: String, client: String) {
        guard var job = running["\(client)#\(id)"], job.host == host else { return }
        job.started = Posix.wallSeconds()
        job.source = source
        running[job.key] = job
        publish(ClusterEvent(kind: .jobStarted, time: job.started, jobs: [job]))
    }

    mutating func record(_ report: JobReport, client: String) {
        cluster.record(report, now: now)
        let time = Posix.wallSeconds()
        var job: JobEvent
        if report.outcome == .local {
            localJobs += 1
            job = JobEvent(key: "\(client)!\(localJobs)", client: client, host: "", outcome: "local", granted: time)
        } else {
            job = running.removeValue(forKey: "\(client)#\(report.id)")
                ?? JobEvent(key: "\(client)#\(report.id)", client: client, host: report.host, outcome: "running", granted: time)
        }
        job.source = report.source
        job.outcome = report.outcome.name
        job.reason = report.reason
        job.finished = time
        job.queueUs = report.timings.queue
        job.preprocessUs = report.timings.preprocess
        job.transferUs = report.timings.transfer
        job.compileUs = report.timings.compile
        job.bytesOut = report.bytesOut
        job.bytesIn = report.bytesIn
        finish(job)
    }

    private mutating func finish(_ job: JobEvent) {
        metrics.finished(job)
        recent.append(job)
        // Trimmed a limit's worth at a time: one move per 500 jobs, not one per job.
        if recent.count >= 2 * Self.recentLimit { recent.removeFirst(recent.count - Self.recentLimit) }
        if history != nil { unsaved.append(job) }
        publish(ClusterEvent(kind: .jobFinished, time: job.finished, jobs: [job]))
    }

    // MARK: Monitors

    private var subscribers: [UInt64: AsyncStream<String>.Continuation] = [:]
    private var nextSubscriber: UInt64 = 0

    /// Adds a subscriber: its snapshot first, then every event. Returns its id.
    mutating func subscribe(_ continuation: AsyncStream<String>.Continuation) -> UInt64 {
        nextSubscriber += 1
        continuation.yield(RecordJSON.encode(ClusterEvent(kind: .snapshot, time: Posix.wallSeconds(), hosts: hostRecords(),
                                                          jobs: recent.suffix(Self.recentLimit) + running.values.sorted { $0.granted < $1.granted })))
        subscribers[nextSubscriber] = continuation
        return nextSubscriber
    }

    mutating func unsubscribe(_ id: UInt64) { subscribers[id] = nil }

    private func publish(_ event: ClusterEvent) {
        guard !subscribers.isEmpty else { return }
        let json = RecordJSON.encode(event)
        for continuation in subscribers.values { continuation.yield(json) }
    }

    /// Once a second: every host's slots, load and speed to monitors and metrics.
    mutating func tick() {
        let hosts = hostRecords()
        metrics.hosts(hosts)
        publish(ClusterEvent(kind: .hosts, time: Posix.wallSeconds(), hosts: hosts))
    }

    /// The finished jobs not yet in the history and every measured speed, for a write off the lock.
    mutating func takeUnsaved() -> (jobs: [JobEvent], speeds: [JobHistory.HostSpeed]) {
        for name in cluster.hosts.keys { remember(name) }
        defer { unsaved = [] }
        return (unsaved, Array(knownSpeeds.values))
    }

    // MARK: Records

    func hostRecords(named name: String) -> [StatusRecord.Host]? {
        cluster.hosts[name].map { hostRecordList([$0]) }
    }

    func hostRecords() -> [StatusRecord.Host] { hostRecordList(Array(cluster.hosts.values)) }

    private func hostRecordList(_ hosts: [HostState]) -> [StatusRecord.Host] {
        let t = now
        return hosts.sorted { $0.info.name < $1.info.name }.map { h in
            StatusRecord.Host(name: h.info.name, id: h.info.id, address: h.info.address, port: Int(h.info.port), maxJobs: Int(h.info.maxJobs),
                              cores: h.info.cores == 0 ? nil : Int(h.info.cores),
                              running: h.running, load: h.load, speed: h.speed, jobsDone: h.jobsDone, acceptsRemote: h.info.acceptsRemote,
                              platform: h.info.platform, note: h.info.note, avoidedForS: max(0, h.avoidUntil - t))
        }
    }
}
