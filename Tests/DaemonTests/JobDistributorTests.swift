import Testing
import Wire
@testable import Daemon

/// A scheduler that answers from a script and records what it was asked and told.
actor FakeScheduler: HostSource {
    private var answers: [HostAnswer]
    private(set) var excludes: [[String]] = []
    private(set) var reports: [JobReport] = []

    init(_ answers: [HostAnswer]) { self.answers = answers }

    func requestHost(choices: [ToolchainChoice], exclude: [String]) async -> HostAnswer {
        excludes.append(exclude)
        return answers.isEmpty ? .noHost : answers.removeFirst()
    }

    func report(_ report: JobReport) async { reports.append(report) }

    private(set) var started: [String] = []
    func started(_ grant: HostGrant, source: String) async { started.append("\(grant.name) \(source)") }
}

/// Helpers that answer from a script per host, recording each attempt.
actor FakeHelpers: HelperTransport {
    private let outcomes: [String: AttemptOutcome]
    private(set) var attempts: [(host: String, compiler: String, arguments: [String], toolchain: String, deadline: Duration)] = []

    init(_ outcomes: [String: AttemptOutcome]) { self.outcomes = outcomes }

    func attempt(_ job: RemoteJob, on grant: HostGrant, deadline: Duration, meter: AttemptMeter) async -> AttemptOutcome {
        attempts.append((grant.name, job.compiler, job.arguments, job.toolchain, deadline))
        return outcomes[grant.name] ?? .failed(JobFailure(.infrastructure, "connection", "\(grant.name) is not scripted"))
    }
}

func grant(_ name: String, toolchain: String = "native", speed: Double = 0) -> HostAnswer {
    .granted(HostGrant(id: 1, name: name, address: "127.0.0.1", port: 1, choice: ToolchainChoice(platform: "x86_64-linux", toolchain: toolchain), speed: speed))
}

func verdict(_ status: Int32, host: String) -> AttemptOutcome {
    .verdict(JobResult(exitStatus: status, stdout: [], stderr: status == 0 ? [] : Array("a.c:1: error: x\n".utf8),
                       outputs: [OutputFile(path: "/w/a.o", contents: [1, 2, 3])], host: host, timings: JobTimings(compile: 500)))
}

let infrastructure = AttemptOutcome.failed(JobFailure(.infrastructure, "signal", "the compiler was killed by signal 9"))

@Suite struct JobDistributorTests {
    let prepared = PreparedJob(
        choices: [ToolchainChoice(platform: "x86_64-linux", toolchain: "native"), ToolchainChoice(platform: "aarch64-linux", toolchain: "mapped")],
        variants: ["native": JobVariant(compiler: "/usr/bin/g++", arguments: ["-c", "a.cpp"], translated: false),
                   "mapped": JobVariant(compiler: "/usr/bin/x86_64-linux-gnu-g++", arguments: ["-c", "a.cpp", "-nostdinc"], translated: true)],
        job: RemoteJob(toolchain: "", compiler: "", arguments: [], workingDirectory: "/w", environment: [], files: [], symlinks: [],
                       directories: [], outputs: ["/w/a.o"]),
        inputBytes: 2_000_000, source: "a.cpp", clientQueueMicros: 700, preprocessMicros: 300)

    func run(_ answers: [HostAnswer], _ outcomes: [String: AttemptOutcome], attempts: Int = 3) async
        -> (Distribution, FakeScheduler, FakeHelpers) {
        let scheduler = FakeScheduler(answers), helpers = FakeHelpers(outcomes)
        let distributor = JobDistributor(hosts: scheduler, helpers: helpers, maximumAttempts: attempts)
        return (await distributor.distribute(prepared), scheduler, helpers)
    }

    @Test func theFirstVerdictIsTheAnswer() async {
        let (distribution, scheduler, helpers) = await run([grant("h1")], ["h1": verdict(0, host: "h1")])
        guard case let .remote(result, host, variant, attempts) = distribution else { Issue.record("\(distribution)"); return }
        #expect(host == "h1" && result.exitStatus == 0 && variant.compiler == "/usr/bin/g++" && attempts.count == 1)
        #expect(await scheduler.excludes == [[]])
        let reports = await scheduler.reports
        #expect(reports.map { "\($0.id) \($0.outcome) \($0.host) \($0.compileMicros) \($0.inputBytes) \($0.source) \($0.bytesIn)" }
                    == ["1 remote h1 500 2000000 a.cpp 3"])
        // The job's timings start on its client: the time it waited there and its scan come with the report and the result.
        #expect(reports.first?.timings == result.timings)
        #expect(result.timings.preprocess == 300 && result.timings.queue >= 700 && result.timings.compile == 500)
        #expect(await scheduler.started == ["h1 a.cpp"])
        #expect(await helpers.attempts.count == 1)
    }

    @Test func aHostGrantedWhileTheJobWasPreparedIsTriedFirst() async {
        let scheduler = FakeScheduler([grant("h2")]), helpers = FakeHelpers(["h1": infrastructure, "h2": verdict(0, host: "h2")])
        let distributor = JobDistributor(hosts: scheduler, helpers: helpers)
        guard case let .granted(early) = grant("h1") else { return }
        let distribution = await distributor.distribute(prepared, granted: early)
        guard case let .remote(_, host, _, attempts) = distribution else { Issue.record("\(distribution)"); return }
        #expect(host == "h2" && attempts.map(\.host) == ["h1", "h2"])
        // The scheduler was asked once, for the second attempt, without the first host.
        #expect(await scheduler.excludes == [["h1"]])
        #expect(await scheduler.reports.map { "\($0.outcome) \($0.host)" } == ["failed h1", "remote h2"])
    }

    @Test func aCompileErrorIsTheCompilersVerdictAndIsNeverRetried() async {
        let (distribution, scheduler, helpers) = await run([grant("h1"), grant("h2")], ["h1": verdict(1, host: "h1"), "h2": verdict(0, host: "h2")])
        guard case let .remote(result, host, _, _) = distribution else { Issue.record("\(distribution)"); return }
        #expect(host == "h1" && result.exitStatus == 1)
        #expect(await helpers.attempts.map(\.host) == ["h1"])
        #expect(await scheduler.reports.map(\.succeeded) == [true])
    }

    @Test func anInfrastructureFailureExcludesTheHostAndTriesTheNext() async {
        let (distribution, scheduler, helpers) = await run([grant("h1"), grant("h2")], ["h1": infrastructure, "h2": verdict(0, host: "h2")])
        guard case let .remote(_, host, _, attempts) = distribution else { Issue.record("\(distribution)"); return }
        #expect(host == "h2")
        #expect(attempts.map(\.host) == ["h1", "h2"] && attempts[0].failure?.code == "signal" && attempts[1].failure == nil)
        #expect(await scheduler.excludes == [[], ["h1"]])
        #expect(await scheduler.reports.map { "\($0.host) \($0.succeeded) \($0.jobFault)" } == ["h1 false false", "h2 true false"])
        #expect(await helpers.attempts.map(\.host) == ["h1", "h2"])
    }

    @Test func afterTheLastAttemptTheJobCompilesLocally() async {
        let deadline = AttemptOutcome.failed(JobFailure(.infrastructure, "deadline", "no verdict"))
        let (distribution, scheduler, _) = await run([grant("h1"), grant("h2"), grant("h3"), grant("h4")],
                                                     ["h1": infrastructure, "h2": infrastructure, "h3": deadline, "h4": verdict(0, host: "h4")])
        guard case let .local(reason, attempts) = distribution else { Issue.record("\(distribution)"); return }
        #expect(reason == "helper-deadline")
        #expect(attempts.map(\.host) == ["h1", "h2", "h3"])
        #expect(await scheduler.excludes == [[], ["h1"], ["h1", "h2"]])
        #expect(await scheduler.reports.allSatisfy { !$0.succeeded && !$0.jobFault })
    }

    /// A job its helper gave back (the scheduler moves it to an idle helper) goes to the next host, reported `moved`
    /// (no blame), and spends no attempt: with one attempt allowed it still runs on the host after.
    @Test func aJobGivenBackGoesToTheNextHostWithoutSpendingAnAttempt() async {
        let moved = AttemptOutcome.failed(JobFailure(.infrastructure, JobFailure.movedCode, "h1: gave the job back"))
        let (distribution, scheduler, _) = await run([grant("h1"), grant("h2")], ["h1": moved, "h2": verdict(0, host: "h2")], attempts: 1)
        guard case let .remote(_, host, _, attempts) = distribution else { Issue.record("\(distribution)"); return }
        #expect(host == "h2" && attempts.map(\.host) == ["h1", "h2"] && attempts[0].failure?.code == "moved")
        #expect(await scheduler.excludes == [[], ["h1"]])
        #expect(await scheduler.reports.map { "\($0.host) \($0.outcome)" } == ["h1 moved", "h2 remote"])
        // Moved from every host it is granted: the scheduler runs out of hosts (each is excluded after), and the job
        // compiles locally.
        let (everywhere, _, _) = await run([grant("h1"), grant("h2")], ["h1": moved, "h2": moved], attempts: 1)
        guard case let .local(reason, tried) = everywhere else { Issue.record("\(everywhere)"); return }
        #expect(reason == "no-helper" && tried.map(\.host) == ["h1", "h2"])
    }

    @Test func aJobsOwnFailureCompilesLocallyAtOnceAndBlamesNoHost() async {
        let refused = AttemptOutcome.failed(JobFailure(.job, "policy", "-fplugin=/w/evil.so: outside the environment"))
        let (distribution, scheduler, helpers) = await run([grant("h1"), grant("h2")], ["h1": refused, "h2": verdict(0, host: "h2")])
        #expect(distribution == .local(reason: "job-refused", attempts: [AttemptRecord(host: "h1", failure: JobFailure(.job, "policy", "-fplugin=/w/evil.so: outside the environment"),
                                                                                       deadline: .seconds(180) + .milliseconds(2000))]))
        #expect(await helpers.attempts.map(\.host) == ["h1"])
        #expect(await scheduler.reports == [JobReport(id: 1, outcome: .refused, host: "h1", source: "a.cpp", reason: "policy")])
    }

    @Test(arguments: [
        ([HostAnswer.unreachable], "scheduler-unreachable"), ([HostAnswer.noHost], "no-helper"), ([grant("h1"), .unreachable], "helper-failed"),
    ])
    func noHostMeansLocalWithItsReason(_ answers: [HostAnswer], _ reason: String) async {
        let (distribution, _, _) = await run(answers, ["h1": infrastructure])
        guard case let .local(got, _) = distribution else { Issue.record("\(distribution)"); return }
        #expect(got == reason)
    }

    @Test func theGrantedChoiceDecidesTheCompilerAndArguments() async {
        let (distribution, _, helpers) = await run([grant("arm", toolchain: "mapped")], ["arm": verdict(0, host: "arm")])
        guard case let .remote(_, _, variant, _) = distribution else { Issue.record("\(distribution)"); return }
        #expect(variant.translated)
        let attempt = await helpers.attempts.first
        #expect(attempt?.compiler == "/usr/bin/x86_64-linux-gnu-g++" && attempt?.arguments.last == "-nostdinc" && attempt?.toolchain == "mapped")
    }

    @Test func aGrantForAToolchainNotOfferedIsNotUsed() async {
        let (distribution, scheduler, helpers) = await run([grant("h1", toolchain: "other")], [:])
        #expect(distribution == .local(reason: "no-helper", attempts: []))
        #expect(await helpers.attempts.isEmpty)
        #expect(await scheduler.reports.map(\.jobFault) == [true])
    }

    @Test func deadlinesFollowTheHostsSpeedWithinFloorAndCeiling() async {
        let policy = DeadlinePolicy()
        // 2 MB at 0.5 bytes/µs: 4 s expected, x4 = 16 s, plus 2 s to send: 18 s, under the 30 s floor.
        #expect(policy.deadline(inputBytes: 2_000_000, speed: 0.5) == .seconds(30))
        // 2 MB at 0.05 bytes/µs: 40 s expected, x4 = 160 s, plus 2 s.
        #expect(policy.deadline(inputBytes: 2_000_000, speed: 0.05) == .seconds(162))
        // Very slow: the ceiling.
        #expect(policy.deadline(inputBytes: 2_000_000, speed: 0.001) == .seconds(600))
        // Unmeasured: 180 s plus the transfer.
        #expect(policy.deadline(inputBytes: 2_000_000, speed: 0) == .seconds(182))
        let (_, _, helpers) = await run([grant("h1", speed: 0.05)], ["h1": verdict(0, host: "h1")])
        #expect(await helpers.attempts.first?.deadline == .seconds(162))
    }
}
