import Synchronization
import Wire

/// The scheduler as the distributor sees it.
public protocol HostSource: Sendable {
    /// The best host for a job among `choices`, never one of `exclude`.
    func requestHost(choices: [ToolchainChoice], exclude: [String]) async -> HostAnswer
    /// The outcome of one attempt (speed on success, back-off on an infrastructure failure).
    func report(_ report: JobReport) async
    /// An attempt on a granted host began (for monitors).
    func started(_ grant: HostGrant, source: String) async
}

extension HostSource {
    public func started(_ grant: HostGrant, source: String) async {}
}

/// The scheduler's answer to a host request.
public enum HostAnswer: Sendable, Equatable {
    case granted(HostGrant)
    /// No host can take the job now.
    case noHost
    /// No scheduler answered.
    case unreachable
}

/// One attempt to run a job on a helper, which must end by `deadline` (from when it starts) whatever the
/// helper does; keep-alives prove that a helper lives, not that it progresses.
public protocol HelperTransport: Sendable {
    /// Runs one attempt, counting what it sends in `meter`.
    func attempt(_ job: RemoteJob, on grant: HostGrant, deadline: Duration, meter: AttemptMeter) async -> AttemptOutcome
}

/// What one attempt sent to its helper, counted by the transport as it goes: contents, environments and the
/// job's file list, before compression on the link.
public final class AttemptMeter: Sendable {
    private let sent = Mutex<UInt64>(0)
    public init() {}
    public func countSent(_ bytes: Int) { sent.withLock { $0 += UInt64(bytes) } }
    public var bytesSent: UInt64 { sent.withLock { $0 } }
}

/// How one attempt ended.
public enum AttemptOutcome: Sendable, Equatable {
    /// The compiler's verdict, whatever its exit status: returned as it is, never compiled again.
    case verdict(JobResult)
    /// The helper did not give the compiler's verdict.
    case failed(JobFailure)
}

/// How long an attempt may take: a multiple of the compile time expected from the host's measured speed and
/// the job's size, plus time to send its inputs, kept between a floor and a ceiling.
public struct DeadlinePolicy: Sendable, Equatable {
    public var floor: Duration = .seconds(30)
    public var ceiling: Duration = .seconds(600)
    /// Allowed multiple of the expected compile time.
    public var factor: Double = 4
    /// The deadline for a host whose speed is not measured yet.
    public var unmeasured: Duration = .seconds(180)
    /// The slowest transfer of inputs allowed for, in bytes per second.
    public var transferBytesPerSecond: Double = 1_000_000

    public init() {}

    public func deadline(inputBytes: UInt64, speed: Double) -> Duration {
        let transfer = Double(inputBytes) / transferBytesPerSecond
        let seconds: Double
        if speed > 0 {
            seconds = factor * Double(inputBytes) / speed / 1_000_000 + transfer
        } else {
            seconds = Double(unmeasured.components.seconds) + transfer
        }
        let clamped = min(max(seconds, Double(floor.components.seconds)), Double(ceiling.components.seconds))
        return .milliseconds(Int64(clamped * 1000))
    }
}

/// How a job runs in one environment: its compiler there and its arguments (extended for a stand-in compiler).
public struct JobVariant: Sendable, Equatable {
    public let compiler: String
    public let arguments: [String]
    /// The compiler stands in for the client's (see ``IncludeTranslation``), with the client's include folders.
    public let translated: Bool

    public init(compiler: String, arguments: [String], translated: Bool) {
        self.compiler = compiler
        self.arguments = arguments
        self.translated = translated
    }
}

/// A job ready to be sent: the toolchain choices for the scheduler, the variant per environment id, the job
/// itself and the size of its inputs.
public struct PreparedJob: Sendable {
    public var choices: [ToolchainChoice]
    public var variants: [String: JobVariant]
    public var job: RemoteJob
    public var inputBytes: UInt64
    /// The source file as the command names it, for reports.
    public var source: String
    /// Time the job spent on its client before distribution (waiting and preparing), and in its preprocessor
    /// scan, in microseconds: the start of its timings.
    public var clientQueueMicros: UInt64
    public var preprocessMicros: UInt64
    /// How the inputs were found: `compiler` (the launcher's preprocessor), `daemon` (the include scan), `warm`
    /// (an earlier scan nothing has changed since), for stats.
    public var inputScan = ""

    public init(choices: [ToolchainChoice], variants: [String: JobVariant], job: RemoteJob, inputBytes: UInt64,
                source: String = "", clientQueueMicros: UInt64 = 0, preprocessMicros: UInt64 = 0) {
        self.choices = choices
        self.variants = variants
        self.job = job
        self.inputBytes = inputBytes
        self.source = source
        self.clientQueueMicros = clientQueueMicros
        self.preprocessMicros = preprocessMicros
    }
}

/// One attempt as the distributor saw it.
public struct AttemptRecord: Sendable, Equatable {
    public var host: String
    /// nil when the attempt gave the compiler's verdict.
    public var failure: JobFailure?
    public var deadline: Duration
}

/// Where a job ended up.
public enum Distribution: Sendable, Equatable {
    /// The compiler's verdict from `host`, run as `variant`, with the job's timings (queue: on the client before
    /// the successful attempt plus on the helper; preprocess; transfer: the attempt's time that was neither
    /// queue nor compile).
    case remote(JobResult, host: String, variant: JobVariant, attempts: [AttemptRecord])
    /// Compile locally, for `reason` (a fallback reason counted in stats).
    case local(reason: String, attempts: [AttemptRecord])
}

/// Chooses, sends, retries and falls back: the policy of distributing one job, over a ``HostSource`` and a
/// ``HelperTransport`` so that it is tested without sockets.
///
/// An attempt that gives the compiler's verdict ends the job, whatever the verdict (a compile error is never
/// compiled twice). An infrastructure failure is reported to the scheduler (the host backs off), the host is
/// excluded and the next host tried, up to ``maximumAttempts``; then the job compiles locally. A failure of the
/// job's own compiles locally at once, and no host is blamed. A job its helper gave back before starting it (the
/// scheduler moves it to an idle host) goes to the next host without spending an attempt.
public struct JobDistributor: Sendable {
    public let hosts: any HostSource
    public let helpers: any HelperTransport
    public var maximumAttempts: Int
    public var deadlines: DeadlinePolicy

    public init(hosts: any HostSource, helpers: any HelperTransport, maximumAttempts: Int = 3, deadlines: DeadlinePolicy = DeadlinePolicy()) {
        self.hosts = hosts
        self.helpers = helpers
        self.maximumAttempts = maximumAttempts
        self.deadlines = deadlines
    }

    /// Places `prepared`: on `granted` first when given (a host asked for while the job was prepared, for one of its
    /// toolchains), else on the hosts the scheduler grants, one attempt after another.
    public func distribute(_ prepared: PreparedJob, granted: HostGrant? = nil) async -> Distribution {
        let clock = ContinuousClock()
        let began = clock.now
        var tried: [String] = []
        var attempts: [AttemptRecord] = []
        var lastReason = "no-helper"
        var granted = granted
        func report(_ grant: HostGrant, _ outcome: JobOutcome, reason: String = "", sent: UInt64 = 0) async {
            await hosts.report(JobReport(id: grant.id, outcome: outcome, host: grant.name, source: prepared.source, reason: reason, bytesOut: sent))
        }
        // A job given back (``JobFailure/movedCode``) tries again without spending an attempt, at most once per host
        // it was given back by (each is excluded after).
        var moves = 0
        while attempts.count - moves < max(1, maximumAttempts) {
            let answer: HostAnswer
            if let grant = granted {
                answer = .granted(grant)
                granted = nil
            } else {
                answer = await hosts.requestHost(choices: prepared.choices, exclude: tried)
            }
            guard case let .granted(grant) = answer else {
                if tried.isEmpty { lastReason = answer == .unreachable ? "scheduler-unreachable" : "no-helper" }
                break
            }
            guard let variant = prepared.variants[grant.choice.toolchain] else {
                // A grant for a toolchain the job did not offer: the scheduler misbehaves; do not use it.
                await report(grant, .refused, reason: "bad-grant")
                lastReason = "no-helper"
                break
            }
            tried.append(grant.name)
            var job = prepared.job
            job.toolchain = grant.choice.toolchain
            job.compiler = variant.compiler
            job.arguments = variant.arguments
            let deadline = deadlines.deadline(inputBytes: prepared.inputBytes, speed: grant.speed)
            let meter = AttemptMeter()
            let attemptStart = clock.now
            await hosts.started(grant, source: prepared.source)
            switch await helpers.attempt(job, on: grant, deadline: deadline, meter: meter) {
            case var .verdict(result):
                attempts.append(AttemptRecord(host: grant.name, failure: nil, deadline: deadline))
                let helperQueue = result.timings.queue
                let attemptMicros = Self.micros(clock.now - attemptStart)
                result.timings.queue = prepared.clientQueueMicros + Self.micros(attemptStart - began) + helperQueue
                result.timings.preprocess = prepared.preprocessMicros
                result.timings.transfer = attemptMicros > result.timings.compile + helperQueue ? attemptMicros - result.timings.compile - helperQueue : 0
                let received = result.outputs.reduce(UInt64(result.stdout.count + result.stderr.count)) { $0 + UInt64($1.contents.count) }
                await hosts.report(JobReport(id: grant.id, outcome: .remote, host: grant.name, compileMicros: result.timings.compile,
                                             inputBytes: prepared.inputBytes, source: prepared.source, timings: result.timings,
                                             bytesOut: meter.bytesSent, bytesIn: received))
                return .remote(result, host: grant.name, variant: variant, attempts: attempts)
            case let .failed(failure):
                attempts.append(AttemptRecord(host: grant.name, failure: failure, deadline: deadline))
                if failure.code == JobFailure.movedCode {
                    // Given back before it started, for a host with an idle processor: no blame, and no attempt spent.
                    await report(grant, .moved, reason: failure.code, sent: meter.bytesSent)
                    moves += 1
                    continue
                }
                if failure.failureClass == .job {
                    await report(grant, .refused, reason: failure.code, sent: meter.bytesSent)
                    return .local(reason: "job-refused", attempts: attempts)
                }
                await report(grant, .failed, reason: failure.code, sent: meter.bytesSent)
                lastReason = failure.code == "deadline" ? "helper-deadline" : "helper-failed"
            }
        }
        return .local(reason: lastReason, attempts: attempts)
    }

    static func micros(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000_000)
    }
}
