import Testing
import Wire
@testable import Scheduling

func host(_ name: String, jobs: UInt32 = 2, remote: Bool = true, platform: String = "x86_64-linux") -> HostInfo {
    HostInfo(name: name, address: "127.0.0.1", port: 1, maxJobs: jobs, platform: platform, acceptsRemote: remote, toolchains: [])
}

func request(_ exclude: [String] = [], platform: String = "x86_64-linux") -> HostRequest {
    HostRequest(id: 1, choices: [ToolchainChoice(platform: platform, toolchain: "t")], exclude: exclude)
}

@Test func grantsFreeSlotsBeforeQueueing() {
    var cluster = Cluster()
    cluster.join(host("a", jobs: 1), now: 0)
    cluster.join(host("b", jobs: 1), now: 0)
    let first = cluster.grant(request(), now: 0)?.host.info.name
    let second = cluster.grant(request(), now: 0)?.host.info.name
    #expect(Set([first, second]) == ["a", "b"])
}

@Test func neverGrantsNoRemoteHostsOrExcludedOrOtherPlatforms() {
    var cluster = Cluster()
    cluster.join(host("client", remote: false), now: 0)
    cluster.join(host("arm", platform: "aarch64-linux"), now: 0)
    cluster.join(host("tried"), now: 0)
    #expect(cluster.grant(request(["tried"]), now: 0) == nil)
    cluster.join(host("good"), now: 0)
    #expect(cluster.grant(request(["tried"]), now: 0)?.host.info.name == "good")
}

@Test func prefersFasterHosts() {
    var cluster = Cluster()
    cluster.join(host("slow", jobs: 4), now: 0)
    cluster.join(host("fast", jobs: 4), now: 0)
    cluster.record(JobReport(host: "slow", succeeded: true, compileMicros: 4000, inputBytes: 1000), now: 0)
    cluster.record(JobReport(host: "fast", succeeded: true, compileMicros: 1000, inputBytes: 1000), now: 0)
    #expect(cluster.grant(request(), now: 0)?.host.info.name == "fast")
    // Once the fast host is saturated well beyond its slots, the slow one wins.
    for _ in 0..<20 { _ = cluster.grant(request(["slow"]), now: 0) }
    #expect(cluster.grant(request(), now: 0)?.host.info.name == "slow")
}

/// Jobs of the same input size take from tens of milliseconds to seconds: a host that happened to get the short ones
/// must not look several times faster than its twin, and win a job it can only queue over a free slot.
@Test func aHostsSpeedIsItsBytesOverItsTimeNotAnAverageOfJobs() {
    var cluster = Cluster()
    cluster.join(host("a"), now: 0)
    cluster.join(host("b"), now: 0)
    for micros: UInt64 in [50_000, 950_000] {
        cluster.record(JobReport(host: "a", succeeded: true, compileMicros: micros, inputBytes: 300_000), now: 0)
    }
    for _ in 0..<2 { cluster.record(JobReport(host: "b", succeeded: true, compileMicros: 500_000, inputBytes: 300_000), now: 0) }
    let a = cluster.hosts["a"]!.speed!, b = cluster.hosts["b"]!.speed!
    #expect(abs(a - b) / b < 0.1, "a \(a), b \(b)")
    // Two running and one queued on a, one running on b: the free slot wins.
    cluster.heartbeat("a", running: 3, load: 0, now: 0)
    cluster.heartbeat("b", running: 1, load: 0, now: 0)
    #expect(cluster.grant(request(), now: 0)?.host.info.name == "b")
}

/// One twin gets a build's longest compile: it must still win the next job with its free slot over its twin's queue.
@Test func aLongJobDoesNotMakeATwinLookSlow() {
    var cluster = Cluster()
    cluster.join(host("a"), now: 0)
    cluster.join(host("b"), now: 0)
    for name in ["a", "b"] {
        for _ in 0..<20 { cluster.record(JobReport(host: name, succeeded: true, compileMicros: 500_000, inputBytes: 300_000), now: 0) }
    }
    cluster.record(JobReport(host: "a", succeeded: true, compileMicros: 3_500_000, inputBytes: 300_000), now: 0)
    cluster.record(JobReport(host: "b", succeeded: true, compileMicros: 500_000, inputBytes: 300_000), now: 0)
    // a has a slot free; b's are full, and the job would wait half a round there.
    cluster.heartbeat("a", running: 1, load: 0, now: 0)
    cluster.heartbeat("b", running: 2, load: 0, now: 0)
    #expect(cluster.grant(request(), now: 0)?.host.info.name == "a", "a \(cluster.hosts["a"]!.speed!), b \(cluster.hosts["b"]!.speed!)")
}

/// A host that joins a measured cluster starts from the cluster's average: its first short job does not make it
/// look several times faster than the rest.
@Test func aNewHostsFirstJobMovesItFromTheAverage() {
    var cluster = Cluster()
    for name in ["a", "b"] {
        cluster.join(host(name), now: 0)
        for _ in 0..<10 { cluster.record(JobReport(host: name, succeeded: true, compileMicros: 500_000, inputBytes: 300_000), now: 0) }
    }
    cluster.join(host("c"), now: 0)
    #expect(cluster.hosts["c"]!.speed == nil)
    cluster.record(JobReport(host: "c", succeeded: true, compileMicros: 50_000, inputBytes: 300_000), now: 0)
    let average = cluster.hosts["a"]!.speed!, c = cluster.hosts["c"]!.speed!
    #expect(c > average && c < 1.5 * average, "c \(c), the others \(average)")
}

/// A slot frees when its job is reported done, not at the helper's next heartbeat.
@Test func aSlotFreesWhenItsJobIsReportedNotAtTheNextHeartbeat() {
    var cluster = Cluster()
    cluster.join(host("a", jobs: 1), now: 0)
    guard case .granted? = Optional(cluster.place(request(), now: 0, queueing: false)) else { Issue.record("not granted"); return }
    cluster.heartbeat("a", running: 1, load: 0, now: 1)
    #expect(cluster.place(request(), now: 1, queueing: false) == .full)
    cluster.record(JobReport(host: "a", succeeded: true, compileMicros: 1000, inputBytes: 1000), now: 1.5)
    guard case let .granted(host, _) = cluster.place(request(), now: 1.5, queueing: false) else {
        Issue.record("the freed slot still looked busy")
        return
    }
    #expect(host.info.name == "a")
}

/// A grant its client did not use (asked for while the job was prepared, which then failed) frees the slot at once,
/// and neither blames the host nor changes its speed.
@Test func anUnusedGrantFreesItsSlotAndTeachesNothing() {
    var cluster = Cluster()
    cluster.join(host("a", jobs: 1), now: 0)
    cluster.record(JobReport(host: "a", succeeded: true, compileMicros: 1000, inputBytes: 1000), now: 0)
    let speed = cluster.hosts["a"]?.speed
    guard case .granted? = Optional(cluster.place(request(), now: 0, queueing: false)) else { Issue.record("not granted"); return }
    #expect(cluster.place(request(), now: 0, queueing: false) == .full)
    cluster.record(JobReport(id: 1, outcome: .unused, host: "a", reason: "not-prepared"), now: 0.5)
    #expect(cluster.hosts["a"]?.running == 0 && cluster.hosts["a"]?.speed == speed)
    guard case let .granted(again, _) = cluster.place(request(), now: 0.5, queueing: false) else {
        Issue.record("the unused grant's host was avoided or still looked busy")
        return
    }
    #expect(again.info.name == "a")
}

/// A free slot on a host measured somewhat slower beats a queue on the fastest; one several times slower does not.
@Test func aFreeSlotWinsUnlessItIsSeveralTimesSlower() {
    var cluster = Cluster()
    let speeds = [("fast", UInt64(1000)), ("slower", 2500), ("tenth", 10_000)]
    for (name, _) in speeds { cluster.join(host(name, jobs: 1), now: 0) }
    for (name, micros) in speeds { cluster.record(JobReport(host: name, succeeded: true, compileMicros: micros, inputBytes: 1000), now: 0) }
    cluster.heartbeat("fast", running: 1, load: 0, now: 0)
    guard case let .granted(first, _) = cluster.place(request(), now: 0, queueing: false) else { Issue.record("not granted"); return }
    #expect(first.info.name == "slower")
    // Now only the tenth-speed host is free: better to wait for the fast one.
    #expect(cluster.place(request(), now: 0, queueing: false) == .full)
    guard case let .granted(queued, _) = cluster.place(request(), now: 0, queueing: true) else { Issue.record("not queued"); return }
    #expect(queued.info.name == "fast")
}

/// Of two one-processor helpers with two slots each, a job goes to the one with nothing running: beside a running
/// job it would get half a processor. Where slots do not outnumber processors, a running job costs a new one nothing
/// and ties go by name.
@Test func aJobGoesWhereAProcessorIsIdleNotJustASlot() {
    var cluster = Cluster()
    for name in ["a", "b"] {
        var info = host(name, jobs: 2)
        info.cores = 1
        cluster.join(info, now: 0)
    }
    let names = (0..<4).compactMap { _ in cluster.grant(request(), now: 0)?.host.info.name }
    #expect(names == ["a", "b", "a", "b"])

    var wide = Cluster()
    for name in ["a", "b"] {
        var info = host(name, jobs: 2)
        info.cores = 2
        wide.join(info, now: 0)
    }
    #expect((0..<2).compactMap { _ in wide.grant(request(), now: 0)?.host.info.name } == ["a", "a"])
    // A host that does not say (cores 0, an older daemon's) counts a processor per slot.
    var unsaid = Cluster()
    for name in ["a", "b"] { unsaid.join(host(name, jobs: 2), now: 0) }
    #expect((0..<2).compactMap { _ in unsaid.grant(request(), now: 0)?.host.info.name } == ["a", "a"])
}

@Test func avoidsFailingHostsForAWhile() {
    var cluster = Cluster()
    cluster.join(host("flaky"), now: 0)
    cluster.join(host("steady", jobs: 1), now: 0)
    _ = cluster.grant(request(), now: 0)
    cluster.record(JobReport(host: "flaky", succeeded: false, compileMicros: 0, inputBytes: 0), now: 0)
    cluster.heartbeat("steady", running: 5, load: 0, now: 1)
    #expect(cluster.grant(request(), now: 1)?.host.info.name == "steady")
    cluster.heartbeat("steady", running: 5, load: 0, now: 20)
    cluster.heartbeat("flaky", running: 0, load: 0, now: 20)
    #expect(cluster.grant(request(), now: 20)?.host.info.name == "flaky")
}

@Test func expiresSilentHosts() {
    var cluster = Cluster(heartbeatTimeout: 10)
    cluster.join(host("a"), now: 0)
    cluster.join(host("b"), now: 0)
    cluster.heartbeat("b", running: 0, load: 0, now: 8)
    #expect(cluster.expire(now: 12) == ["a"])
    #expect(cluster.hosts.keys.sorted() == ["b"])
}

@Test func prefersHostsThatHoldTheEnvironment() {
    var cluster = Cluster()
    cluster.join(host("aaa"), now: 0)
    cluster.join(host("zzz"), now: 0)
    cluster.heartbeat("zzz", running: 0, load: 0, toolchains: ["t"], now: 0)
    #expect(cluster.grant(request(), now: 0)?.host.info.name == "zzz")
    // ... but not at any price: a busy holder loses to an idle host without it.
    cluster.heartbeat("zzz", running: 4, load: 0, toolchains: ["t"], now: 0)
    #expect(cluster.grant(request(), now: 0)?.host.info.name == "aaa")
}

/// Mixed x86_64 and aarch64 helpers: a job goes only where one of its environments runs, and the grant names it.
@Test func mixedPlatformsGetTheirOwnEnvironment() {
    var cluster = Cluster()
    cluster.join(host("x86", jobs: 1), now: 0)
    cluster.join(host("arm", jobs: 4, platform: "aarch64-linux"), now: 0)
    let native = HostRequest(id: 1, choices: [ToolchainChoice(platform: "x86_64-linux", toolchain: "native")], exclude: [])
    let mapped = HostRequest(id: 2, choices: [ToolchainChoice(platform: "x86_64-linux", toolchain: "native"),
                                              ToolchainChoice(platform: "aarch64-linux", toolchain: "arm-env")], exclude: [])
    // Only x86 can run the native environment, however busy it gets.
    for _ in 0..<3 { #expect(cluster.grant(native, now: 0)?.host.info.name == "x86") }
    // With an aarch64 environment as well, the idle arm host takes it, with the aarch64 environment.
    let granted = cluster.grant(mapped, now: 0)
    #expect(granted?.host.info.name == "arm")
    #expect(granted?.choice == ToolchainChoice(platform: "aarch64-linux", toolchain: "arm-env"))
    // Excluding arm leaves x86 with the native environment.
    let retry = HostRequest(id: 3, choices: mapped.choices, exclude: ["arm"])
    #expect(cluster.grant(retry, now: 0)?.choice.toolchain == "native")
}

/// A helper's heartbeat counts the compiles it runs, not the jobs queued behind its slots: it must not hide the
/// grants still outstanding, or a fast helper collects every job while a slower one idles (seen in the dashboard).
@Test func aHeartbeatDoesNotHideOutstandingGrants() {
    var cluster = Cluster()
    cluster.join(host("fast", jobs: 3), now: 0)
    cluster.join(host("slow", jobs: 3), now: 0)
    cluster.record(JobReport(host: "fast", succeeded: true, compileMicros: 1000, inputBytes: 5000), now: 0)
    cluster.record(JobReport(host: "slow", succeeded: true, compileMicros: 1000, inputBytes: 4000), now: 0)
    var placed: [String: Int] = [:]
    for i in 0..<8 {
        guard let name = cluster.grant(request(), now: 0)?.host.info.name else { Issue.record("no grant"); return }
        placed[name, default: 0] += 1
        // The fast helper's heartbeat after each grant: its 3 slots busy, whatever waits behind them.
        cluster.heartbeat("fast", running: min(3, placed["fast", default: 0]), load: 0, now: Double(i))
    }
    #expect(placed["slow", default: 0] >= 3, "\(placed)")
    #expect(cluster.hosts["fast"]?.running == placed["fast"], "running counts the outstanding grants")
    // A client that left with jobs in flight gives their slots back.
    for _ in 0..<placed["fast", default: 0] { cluster.release("fast") }
    cluster.heartbeat("fast", running: 0, load: 0, now: 9)
    #expect(cluster.hosts["fast"]?.running == 0)
}

@Test func tiesGoToTheFirstNameEvenPastTheEightBytesPlacementComparesFirst() {
    var cluster = Cluster()
    for name in ["buildhost-c", "buildhost-a", "buildhost-b", "zz", "buildhos"] { cluster.join(host(name, jobs: 1), now: 0) }
    var order: [String] = []
    for _ in 0..<5 { order.append(cluster.grant(request(), now: 0)?.host.info.name ?? "-") }
    #expect(order == ["buildhos", "buildhost-a", "buildhost-b", "buildhost-c", "zz"])
}

@Test func theAverageSpeedFollowsEveryReportAndDeparture() {
    var cluster = Cluster()
    for name in ["a", "b", "c"] { cluster.join(host(name, jobs: 4), now: 0) }
    var expected: [String: Double] = [:], sums: [String: (bytes: Double, micros: Double)] = [:]
    // Many reports, so that the running sum is also summed afresh on the way (every 4096 changes).
    for i in 0..<5000 {
        let name = ["a", "b", "c"][i % 3]
        let micros = UInt64(1000 + (i * 7919) % 3000)
        cluster.record(JobReport(host: name, succeeded: true, compileMicros: micros, inputBytes: 1000), now: 0)
        let before = sums[name] ?? (0, 0)
        let after = (bytes: before.bytes * Cluster.speedDecay + 1000, micros: before.micros * Cluster.speedDecay + Double(micros))
        sums[name] = after
        expected[name] = after.bytes / after.micros
    }
    let table = cluster.placementTable
    #expect(abs(table.averageSpeed - expected.values.reduce(0, +) / 3) < 1e-9)
    cluster.leave("b")
    #expect(abs(cluster.placementTable.averageSpeed - (expected["a"]! + expected["c"]!) / 2) < 1e-9)
}

/// A host with a processor free takes a job waiting for another host's processor: the scheduler names the host with
/// the most jobs past its processors that shares an environment, and nobody while the idle host is busy, refuses
/// remote jobs or backs off, or when no job waits.
@Test func aHostWithAnIdleProcessorIsGivenAJobWaitingElsewhere() {
    func info(_ name: String, cores: UInt32 = 1, toolchains: [String] = ["t"], remote: Bool = true) -> HostInfo {
        HostInfo(name: name, address: "127.0.0.1", port: 1, maxJobs: 2 * cores, platform: "x86_64-linux", acceptsRemote: remote,
                 toolchains: toolchains, cores: cores)
    }
    var cluster = Cluster()
    cluster.join(info("busy"), now: 0)
    cluster.join(info("busier", cores: 2), now: 0)
    cluster.join(info("idle"), now: 0)
    cluster.join(info("other", toolchains: ["u"]), now: 0)
    let never: (String) -> Bool = { _ in false }
    #expect(cluster.hostToGiveBack(for: "idle", now: 0, skip: never) == nil, "no job waits anywhere")
    // One job on "busy" runs, the second waits; "busier" runs two on its two processors.
    cluster.heartbeat("busy", running: 2, load: 0, now: 0)
    cluster.heartbeat("busier", running: 2, load: 0, now: 0)
    #expect(cluster.hostToGiveBack(for: "idle", now: 0, skip: never) == "busy")
    #expect(cluster.hostToGiveBack(for: "idle", now: 0, skip: { $0 == "busy" }) == nil)
    #expect(cluster.hostToGiveBack(for: "other", now: 0, skip: never) == nil, "no environment in common")
    #expect(cluster.hostToGiveBack(for: "busy", now: 0, skip: never) == nil, "the asking host has no processor free")
    // With three on its two processors, "busier" has one waiting too: the job goes to whichever has more waiting.
    cluster.heartbeat("busier", running: 4, load: 0, now: 0)
    #expect(cluster.hostToGiveBack(for: "idle", now: 0, skip: never) == "busier")
    cluster.heartbeat("idle", running: 1, load: 0, now: 0)
    #expect(cluster.hostToGiveBack(for: "idle", now: 0, skip: never) == nil, "its one processor is busy")
    cluster.heartbeat("idle", running: 0, load: 0, now: 0)
    cluster.record(JobReport(host: "idle", succeeded: false, compileMicros: 0, inputBytes: 0), now: 1)
    #expect(cluster.hostToGiveBack(for: "idle", now: 1, skip: never) == nil, "it backs off after a failure")
    cluster.join(info("refuses", remote: false), now: 1)
    #expect(cluster.hostToGiveBack(for: "refuses", now: 1, skip: never) == nil)
    // The jobs end: nothing waits any more, and the count of hosts with waiting jobs follows every change.
    cluster.heartbeat("busier", running: 1, load: 0, now: 1)
    cluster.leave("busy")
    #expect(cluster.placementTable.hostsWithWaitingJobs == 0)
    cluster.join(info("fresh"), now: 1)
    #expect(cluster.hostToGiveBack(for: "fresh", now: 1, skip: never) == nil)
}

/// A job given back by its helper (moved to an idle one) leaves the host's count, blames nobody and teaches nothing.
@Test func aMovedJobLeavesItsHostWithoutBlame() {
    var cluster = Cluster()
    cluster.join(host("a", jobs: 2), now: 0)
    cluster.record(JobReport(host: "a", succeeded: true, compileMicros: 1000, inputBytes: 1000), now: 0)
    let speed = cluster.hosts["a"]?.speed
    _ = cluster.grant(request(), now: 0)
    _ = cluster.grant(request(), now: 0)
    cluster.heartbeat("a", running: 2, load: 0, now: 0)
    cluster.record(JobReport(id: 2, outcome: .moved, host: "a", reason: "moved"), now: 0.1)
    let a = cluster.hosts["a"]
    #expect(a?.running == 1 && a?.granted == 1 && a?.reported == 1)
    #expect(a?.speed == speed && a?.avoidUntil == 0 && a?.consecutiveFailures == 0 && a?.jobsDone == 1)
}
