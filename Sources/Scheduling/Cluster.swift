import Wire

/// What the scheduler knows about one daemon.
public struct HostState: Sendable, Equatable {
    public var info: HostInfo
    /// Jobs granted to it and not yet reported done, or what its last heartbeat said, whichever is larger (a
    /// helper runs at most its slots and queues the rest, so its own count alone hides the queue).
    public var running: Int { max(granted, reported) }
    /// Jobs this scheduler granted to it that no client has reported yet.
    public var granted: Int
    /// Jobs running there by its last heartbeat, less the jobs reported done since.
    public var reported: Int
    public var load: Double
    /// Measured throughput in input bytes per microsecond of compile time: the input bytes of its recent jobs over
    /// their compile time (both sums decaying by ``Cluster/speedDecay`` per job), so that a long job weighs as
    /// long as it ran and a run of short ones does not make a host look fast; nil until measured.
    public var speed: Double?
    /// The decaying sums behind ``speed``.
    var measuredBytes: Double = 0
    var measuredMicros: Double = 0
    public var jobsDone: Int
    public var consecutiveFailures: Int
    /// Time (seconds) before which the host gets no new jobs after failing some.
    public var avoidUntil: Double
    public var lastSeen: Double

    public init(info: HostInfo, now: Double) {
        self.info = info
        granted = 0
        reported = 0
        load = 0
        speed = nil
        jobsDone = 0
        consecutiveFailures = 0
        avoidUntil = 0
        lastSeen = now
    }
}

/// The scheduler's view of the cluster and its placement decisions. Pure: time comes in as arguments.
///
/// Beside ``hosts`` it keeps a compact table of what placement reads (no reference-counted field in a row), so a
/// grant over a thousand hosts is one pass over plain numbers: `scripts/bench-scheduler.sh`.
public struct Cluster: Sendable {
    public private(set) var hosts: [String: HostState] = [:]
    /// Seconds without a heartbeat after which a host is dropped.
    public var heartbeatTimeout: Double
    /// Base of the back-off after a failure, doubled per consecutive failure, capped at ``maximumAvoidance``.
    public var avoidance: Double = 10
    public var maximumAvoidance: Double = 300
    /// Extra expected time, in average jobs, for a host that must first fetch the job's environment.
    public var environmentTransferCost: Double = 0.5
    /// What the sums behind a host's speed keep of the past at each job: jobs' costs vary tenfold for the same input
    /// size (one host gets a build's longest compile, its twin the short ones), so the speed is taken over about
    /// fifty jobs.
    public static let speedDecay = 0.98
    /// How many times longer than the best host's expected finish a host with a free slot may be and still be
    /// preferred to queueing the job on the best host.
    public static let freeSlotPreference = 3.0
    /// The compile time, in microseconds, that a speed known beforehand weighs as against new jobs: a speed restored
    /// from before, or the cluster's average speed for a host that joins unmeasured (its first jobs move it from
    /// there, not from nothing).
    static let priorWeight = 10_000_000.0
    private var table = PlacementTable()
    /// What placement reads (for tests).
    var placementTable: PlacementTable { table }

    public init(heartbeatTimeout: Double = 15) {
        self.heartbeatTimeout = heartbeatTimeout
    }

    /// Every change of a host goes through here, so the placement table follows.
    private mutating func store(_ state: HostState) {
        hosts[state.info.name] = state
        table.update(state)
    }

    private mutating func remove(_ name: String) {
        hosts[name] = nil
        table.remove(name)
    }

    public mutating func join(_ info: HostInfo, now: Double) {
        var state = hosts[info.name] ?? {
            var new = HostState(info: info, now: now)
            if table.measured > 0 {
                new.measuredBytes = table.averageSpeed * Self.priorWeight
                new.measuredMicros = Self.priorWeight
            }
            return new
        }()
        state.info = info
        state.lastSeen = now
        store(state)
    }

    public mutating func leave(_ name: String) { remove(name) }

    /// A job granted to `name` that will never be reported (its client left).
    public mutating func release(_ name: String) {
        guard var state = hosts[name], state.granted > 0 else { return }
        state.granted -= 1
        store(state)
    }

    /// Gives a host the speed and job count measured before (an earlier run, an earlier connection).
    public mutating func restore(_ name: String, speed: Double, jobsDone: Int) {
        guard speed > 0, speed.isFinite, var state = hosts[name] else { return }
        state.speed = speed
        state.measuredBytes = speed * Self.priorWeight
        state.measuredMicros = Self.priorWeight
        state.jobsDone = max(state.jobsDone, jobsDone)
        store(state)
    }

    public mutating func heartbeat(_ name: String, running: Int, load: Double, toolchains: [String]? = nil, now: Double) {
        guard var state = hosts[name] else { return }
        if let toolchains { state.info.toolchains = toolchains }
        state.reported = running
        state.load = load
        state.lastSeen = now
        store(state)
    }

    /// Drops hosts whose heartbeat is overdue; returns their names.
    public mutating func expire(now: Double) -> [String] {
        let gone = hosts.values.filter { now - $0.lastSeen > heartbeatTimeout }.map(\.info.name)
        for name in gone { remove(name) }
        return gone
    }

    /// Records the outcome of a job on `report.host`: speed on success, back-off on an infrastructure failure.
    public mutating func record(_ report: JobReport, now: Double) {
        guard var state = hosts[report.host] else { return }
        state.granted = max(0, state.granted - 1)
        // The last heartbeat's count included this job, most likely: it no longer holds a slot until the next one
        // says otherwise (else a freed slot would look busy for up to a heartbeat's interval). An unused grant never
        // reached the host, whose heartbeats never counted it (and a local job names no host).
        switch report.outcome {
        case .unused, .local: break
        case .remote, .failed, .refused, .moved: state.reported = max(0, state.reported - 1)
        }
        switch report.outcome {
        case .unused, .local, .refused, .moved:
            // Never ran there, or could not for reasons of its own, or went to an idle host: nothing learnt.
            break
        case .remote:
            state.consecutiveFailures = 0
            state.jobsDone += 1
            if report.compileMicros > 0, report.inputBytes > 0 {
                state.measuredBytes = state.measuredBytes * Self.speedDecay + Double(report.inputBytes)
                state.measuredMicros = state.measuredMicros * Self.speedDecay + Double(report.compileMicros)
                state.speed = state.measuredBytes / state.measuredMicros
            }
        case .failed:
            state.consecutiveFailures += 1
            let backoff = min(maximumAvoidance, avoidance * Double(1 << min(state.consecutiveFailures - 1, 10)))
            state.avoidUntil = now + backoff
        }
        store(state)
    }

    /// Whether some host has jobs waiting for a processor (more running than its processors).
    public var hasWaitingJobs: Bool { table.hostsWithWaitingJobs > 0 }

    /// The host that should give one of its jobs waiting for a processor back, now that `idle` has a processor free:
    /// the one with the most such jobs that shares an environment with `idle`, other than those `skip` names; nil when
    /// `idle` takes no job now (it refuses remote jobs, backs off, or its processors are busy) or no host has a job
    /// waiting. The helper gives back its newest waiting job whose environment `idle` holds, and its client asks for a
    /// host again: the job starts at once instead of after the compile ahead of it.
    public func hostToGiveBack(for idle: String, now: Double, skip: (String) -> Bool) -> String? {
        guard hasWaitingJobs, let row = table.row(named: idle) else { return nil }
        let idleRow = table.rows[row]
        guard idleRow.acceptsRemote, idleRow.avoidUntil <= now, idleRow.waiting < 0 else { return nil }
        return table.mostWaiting(sharingWith: row, skip: skip)
    }

    /// Expected time until a new job would finish on a host, in units of one average job on a host of the average
    /// speed: `(1 + rounds it waits for a slot + its share of busy processors + load / 10) × averageSpeed / speed`
    /// (an unmeasured host, speed 0, is taken to run at `averageSpeed`). The share counts the jobs past the host's
    /// processors, which wait for one (a helper compiles one job per processor at a time: a one-processor helper with
    /// two slots starts a second job when the first ends), so of two hosts with a free slot the one whose processors
    /// are idle wins. Placement reads it from a row's
    /// reciprocals, multiplying, and divides only for a host with more slots than processors.
    static func expectedFinish(inverseSpeed: Double, inverseSlots: Double, slots: Int32, running: Int32, cores: Int32,
                               load: Double, averageSpeed: Double) -> Double {
        let waitingRounds = Double(max(0, running + 1 - slots)) * inverseSlots
        // Only a host with more slots than processors shares them (a division, in that case only).
        let sharing = cores < slots ? Double(max(0, min(running + 1, slots) - cores)) / Double(cores) : 0
        return (1 + waitingRounds + sharing + load * 0.1) * averageSpeed * inverseSpeed
    }

    /// Picks the host expected to finish the job first, and counts the job as running there; a host that
    /// already holds the job's environment saves its transfer. Candidates accept remote jobs, run the
    /// job's platform, are not excluded and not backing off.
    public mutating func grant(_ request: HostRequest, now: Double) -> (host: HostState, choice: ToolchainChoice)? {
        guard case let .granted(host, choice) = place(request, now: now, queueing: true) else { return nil }
        return (host, choice)
    }

    /// Where a request goes.
    public enum Placement: Sendable, Equatable {
        /// Granted (and counted as running there).
        case granted(HostState, ToolchainChoice)
        /// The best host has no free slot, and `queueing` was false: nothing granted.
        case full
        /// No host can take the job.
        case none
    }

    /// Places a request like ``grant(_:now:)``: on the host expected to finish it first, or on a host with a slot free
    /// now when that one has none and the free one is expected to take at most ``freeSlotPreference`` times as long.
    /// Else, with `queueing` false, the answer is ``Placement/full`` and nothing is granted: a job committed to one
    /// helper's queue cannot move when another helper's slot frees first.
    public mutating func place(_ request: HostRequest, now: Double, queueing: Bool) -> Placement {
        func holds(_ name: String, _ toolchain: String) -> Bool { hosts[name]?.info.toolchains.contains(toolchain) ?? false }
        guard let found = table.best(for: request, now: now, environmentTransferCost: environmentTransferCost, holds: holds) else {
            return .none
        }
        var pick = found.candidate
        if !found.isFree {
            // A free slot beats a queue unless it is expected to take several times as long: measured speeds are
            // rough (one host gets a build's longest compile), and a free slot left idle is lost for good. (A second
            // pass, only when the best host is busy.)
            if let free = table.best(for: request, now: now, environmentTransferCost: environmentTransferCost, freeOnly: true, holds: holds),
               free.candidate.cost <= Self.freeSlotPreference * found.candidate.cost {
                pick = free.candidate
            } else if !queueing {
                return .full
            }
        }
        guard var state = hosts[pick.name] else { return .none }
        state.granted += 1
        store(state)
        return .granted(state, pick.choice)
    }
}

/// What placement reads of each host, as rows of plain numbers (platforms and environments as small ids), with
/// the hosts' names beside them.
struct PlacementTable: Sendable {
    struct Row: Sendable {
        var acceptsRemote: Bool
        /// Its processors (its slots when it does not say), 1 to 65535: beside the flag, where the row has room.
        var cores: UInt16
        var platform: Int32
        var avoidUntil: Double
        var slots: Int32
        var running: Int32
        var load: Double
        /// 0 until measured.
        var speed: Double
        /// 1 / speed (1 / 1e-9 at most), or 0 until measured, when the average speed's reciprocal stands in.
        var inverseSpeed: Double
        /// 1 / slots, slots at least 1.
        var inverseSlots: Double
        /// Bit n: holds environment n (of the first 64 ids); environments past that are looked up by name.
        var environments: UInt64
        /// The name's first 8 bytes, big-endian: orders most ties without comparing strings.
        var namePrefix: UInt64

        var hasFreeSlot: Bool { running < slots }
        /// Jobs there past its processors, which wait for one (a helper compiles one per processor).
        var waiting: Int32 { running - min(Int32(cores), slots) }
    }

    static func prefix(of name: String) -> UInt64 {
        var key: UInt64 = 0, count = 0
        for byte in name.utf8.prefix(8) {
            key = key << 8 | UInt64(byte)
            count += 1
        }
        return key << (8 * UInt64(8 - count))
    }

    /// Whether row `a` orders before row `b` by name (its UTF-8 bytes).
    private func nameOrders(_ a: Int, before b: Int, _ rows: UnsafeBufferPointer<Row>) -> Bool {
        let pa = rows[a].namePrefix, pb = rows[b].namePrefix
        return pa != pb ? pa < pb : names[a].utf8.lexicographicallyPrecedes(names[b].utf8)
    }

    private(set) var rows: [Row] = []
    private(set) var names: [String] = []
    private var index: [String: Int] = [:]
    private var platforms: [String: Int] = [:]
    private var environments: [String: Int] = [:]
    /// The mean measured speed of the hosts (1 when none is measured): the speed assumed for an unmeasured host.
    private(set) var averageSpeed: Double = 1
    /// How many hosts are measured.
    private(set) var measured = 0
    /// How many hosts have jobs waiting for a processor (``Row/waiting`` above 0).
    private(set) var hostsWithWaitingJobs = 0
    private var speedSum = 0.0, changesSinceSum = 0

    /// The small id of `name` in `ids`, given on first sight.
    private static func id(of name: String, in ids: inout [String: Int]) -> Int {
        if let id = ids[name] { return id }
        ids[name] = ids.count
        return ids.count - 1
    }

    mutating func update(_ state: HostState) {
        var bits: UInt64 = 0
        for toolchain in state.info.toolchains {
            let id = Self.id(of: toolchain, in: &environments)
            if id < 64 { bits |= 1 << UInt64(id) }
        }
        let slots = max(1, Int32(clamping: state.info.maxJobs))
        let cores = UInt16(clamping: state.info.cores == 0 ? Int(slots) : max(1, Int(state.info.cores)))
        let row = Row(acceptsRemote: state.info.acceptsRemote, cores: cores, platform: Int32(Self.id(of: state.info.platform, in: &platforms)), avoidUntil: state.avoidUntil,
                      slots: slots, running: Int32(clamping: state.running), load: state.load,
                      speed: state.speed ?? 0, inverseSpeed: state.speed.map { $0 > 0 ? 1 / max($0, 1e-9) : 0 } ?? 0,
                      inverseSlots: 1 / Double(slots),
                      environments: bits, namePrefix: Self.prefix(of: state.info.name))
        let old: Double
        if let i = index[state.info.name] {
            old = rows[i].speed
            if rows[i].waiting > 0 { hostsWithWaitingJobs -= 1 }
            rows[i] = row
        } else {
            old = 0
            index[state.info.name] = rows.count
            rows.append(row)
            names.append(state.info.name)
        }
        if row.waiting > 0 { hostsWithWaitingJobs += 1 }
        if old != row.speed {
            // The sum follows each change (a job's report changes its host's speed); summed afresh now and then,
            // so rounding cannot build up.
            changesSinceSum += 1
            if changesSinceSum >= 4096 {
                recomputeAverage()
            } else {
                if old > 0 { speedSum -= old; measured -= 1 }
                if row.speed > 0 { speedSum += row.speed; measured += 1 }
                averageSpeed = measured == 0 ? 1 : speedSum / Double(measured)
            }
        }
    }

    mutating func remove(_ name: String) {
        guard let i = index.removeValue(forKey: name) else { return }
        if rows[i].waiting > 0 { hostsWithWaitingJobs -= 1 }
        let last = rows.count - 1
        if i != last {
            rows[i] = rows[last]
            names[i] = names[last]
            index[names[i]] = i
        }
        rows.removeLast()
        names.removeLast()
        recomputeAverage()
    }

    private mutating func recomputeAverage() {
        var sum = 0.0, count = 0
        for row in rows where row.speed > 0 { sum += row.speed; count += 1 }
        speedSum = sum
        measured = count
        changesSinceSum = 0
        averageSpeed = count == 0 ? 1 : sum / Double(count)
    }

    /// The host with the most jobs waiting for a processor that holds an environment of `idle`'s (by the first 64
    /// environments' bits; past those, any), other than `idle` and those `skip` names.
    func mostWaiting(sharingWith idle: Int, skip: (String) -> Bool) -> String? {
        guard hostsWithWaitingJobs > 0 else { return nil }
        let held = rows[idle].environments
        var best: (row: Int, waiting: Int32)?
        for i in rows.indices where i != idle && rows[i].waiting > (best?.waiting ?? 0) {
            guard held == 0 || rows[i].environments == 0 || rows[i].environments & held != 0, !skip(names[i]) else { continue }
            best = (i, rows[i].waiting)
        }
        return best.map { names[$0.row] }
    }

    func row(named name: String) -> Int? { index[name] }

    /// A host for a request: its name, the choice it runs, and its expected finish.
    struct Candidate {
        let name: String
        let choice: ToolchainChoice
        let cost: Double
    }

    /// The host expected to finish the job first, with whether it has a slot free now; among hosts with a slot free
    /// only, with `freeOnly`. Ties go to the first name (by UTF-8 bytes). `holds` answers for environments past the
    /// first 64 ids.
    func best(for request: HostRequest, now: Double, environmentTransferCost: Double, freeOnly: Bool = false,
              holds: (String, String) -> Bool) -> (candidate: Candidate, isFree: Bool)? {
        // Each choice's platform and environment as plain numbers: the loop below copies nothing counted.
        let choicePlatforms = request.choices.map { platforms[$0.platform].map(Int32.init) ?? -1 }
        let choiceBits = request.choices.map { choice -> UInt64 in
            guard let id = environments[choice.toolchain], id < 64 else { return 0 }
            return 1 << UInt64(id)
        }
        let anyPlatform = request.choices.firstIndex { $0.platform.isEmpty } ?? -1
        let average = averageSpeed, inverseAverage = 1 / max(averageSpeed, 1e-9)
        var best: (row: Int, cost: Double, choice: Int)?
        rows.withUnsafeBufferPointer { rows in
            for i in 0..<rows.count {
                let row = rows[i]
                guard row.acceptsRemote, row.avoidUntil <= now, !freeOnly || row.hasFreeSlot else { continue }
                var pick = anyPlatform
                for k in 0..<choicePlatforms.count where choicePlatforms[k] == row.platform {
                    pick = k
                    break
                }
                guard pick >= 0 else { continue }
                if !request.exclude.isEmpty, request.exclude.contains(names[i]) { continue }
                let held: Bool
                if choiceBits[pick] != 0 {
                    held = row.environments & choiceBits[pick] != 0
                } else {
                    let toolchain = request.choices[pick].toolchain
                    held = environments[toolchain] != nil && holds(names[i], toolchain)
                }
                let cost = Cluster.expectedFinish(inverseSpeed: row.inverseSpeed > 0 ? row.inverseSpeed : inverseAverage,
                                                  inverseSlots: row.inverseSlots, slots: row.slots, running: row.running,
                                                  cores: Int32(row.cores), load: row.load,
                                                  averageSpeed: average) + (held ? 0 : environmentTransferCost)
                if let current = best, current.cost < cost || (current.cost == cost && nameOrders(current.row, before: i, rows)) { continue }
                best = (i, cost, pick)
            }
        }
        return best.map { found in
            (Candidate(name: names[found.row], choice: request.choices[found.choice], cost: found.cost),
             rows[found.row].hasFreeSlot)
        }
    }
}
