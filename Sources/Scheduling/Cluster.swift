import Wire

/// What the scheduler knows about one daemon.
public struct HostState: Sendable, Equatable {
    public var info: HostInfo
    /// Jobs granted to it and not yet reported done, or what its last heartbeat said, whichever is larger (a
    /// helper runs at most its slots and queues the rest, so its own count alone hides the queue).
    public var running: Int { max(granted, reported) }
    /// Jobs this scheduler granted to it that no client has reported yet.
    public var granted: Int
    /// Jobs running there by its last heartbeat.
    public var reported: Int
    public var load: Double
    /// Measured throughput in input bytes per microsecond of compile time (exponentially averaged); nil until measured.
    public var speed: Double?
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
public struct Cluster: Sendable {
    public private(set) var hosts: [String: HostState] = [:]
    /// Seconds without a heartbeat after which a host is dropped.
    public var heartbeatTimeout: Double
    /// Base of the back-off after a failure, doubled per consecutive failure, capped at ``maximumAvoidance``.
    public var avoidance: Double = 10
    public var maximumAvoidance: Double = 300
    /// Extra expected time, in average jobs, for a host that must first fetch the job's environment.
    public var environmentTransferCost: Double = 0.5

    public init(heartbeatTimeout: Double = 15) {
        self.heartbeatTimeout = heartbeatTimeout
    }

    public mutating func join(_ info: HostInfo, now: Double) {
        var state = hosts[info.name] ?? HostState(info: info, now: now)
        state.info = info
        state.lastSeen = now
        hosts[info.name] = state
    }

    public mutating func leave(_ name: String) { hosts[name] = nil }

    /// A job granted to `name` that will never be reported (its client left).
    public mutating func release(_ name: String) {
        guard let state = hosts[name], state.granted > 0 else { return }
        hosts[name]?.granted = state.granted - 1
    }

    /// Gives a host the speed and job count measured before (an earlier run, an earlier connection).
    public mutating func restore(_ name: String, speed: Double, jobsDone: Int) {
        guard speed > 0, speed.isFinite, var state = hosts[name] else { return }
        state.speed = speed
        state.jobsDone = max(state.jobsDone, jobsDone)
        hosts[name] = state
    }

    public mutating func heartbeat(_ name: String, running: Int, load: Double, toolchains: [String]? = nil, now: Double) {
        guard var state = hosts[name] else { return }
        if let toolchains { state.info.toolchains = toolchains }
        state.reported = running
        state.load = load
        state.lastSeen = now
        hosts[name] = state
    }

    /// Drops hosts whose heartbeat is overdue; returns their names.
    public mutating func expire(now: Double) -> [String] {
        let gone = hosts.values.filter { now - $0.lastSeen > heartbeatTimeout }.map(\.info.name)
        for name in gone { hosts[name] = nil }
        return gone
    }

    /// Records the outcome of a job on `report.host`: speed on success, back-off on an infrastructure failure.
    public mutating func record(_ report: JobReport, now: Double) {
        guard var state = hosts[report.host] else { return }
        state.granted = max(0, state.granted - 1)
        if report.jobFault {
            // The job could not run remotely for reasons of its own: nothing learnt about the host.
        } else if report.succeeded {
            state.consecutiveFailures = 0
            state.jobsDone += 1
            if report.compileMicros > 0, report.inputBytes > 0 {
                let sample = Double(report.inputBytes) / Double(report.compileMicros)
                state.speed = state.speed.map { 0.8 * $0 + 0.2 * sample } ?? sample
            }
        } else {
            state.consecutiveFailures += 1
            let backoff = min(maximumAvoidance, avoidance * Double(1 << min(state.consecutiveFailures - 1, 10)))
            state.avoidUntil = now + backoff
        }
        hosts[report.host] = state
    }

    /// Expected time until a new job would finish on `state`, in units of one average job on a speed-1 host.
    public func expectedFinish(_ state: HostState) -> Double {
        expectedFinish(state, averageSpeed: averageSpeed)
    }

    /// The mean measured speed of the hosts (1 when none is measured): the speed assumed for an unmeasured host.
    public var averageSpeed: Double {
        var sum = 0.0, count = 0
        for state in hosts.values { if let speed = state.speed { sum += speed; count += 1 } }
        return count == 0 ? 1 : sum / Double(count)
    }

    func expectedFinish(_ state: HostState, averageSpeed: Double) -> Double {
        let speed = max(state.speed ?? averageSpeed, 1e-9) / averageSpeed
        let slots = max(1, Int(state.info.maxJobs))
        let waitingRounds = Double(max(0, state.running + 1 - slots)) / Double(slots)
        return (1 + waitingRounds + state.load * 0.1) / speed
    }

    /// Picks the host expected to finish the job first, and counts the job as running there; a host that
    /// already holds the job's environment saves its transfer. Candidates accept remote jobs, run the
    /// job's platform, are not excluded and not backing off. One pass over the hosts (a thousand hosts cost
    /// microseconds: `scripts/bench-scheduler.sh`).
    public mutating func grant(_ request: HostRequest, now: Double) -> (host: HostState, choice: ToolchainChoice)? {
        let average = averageSpeed
        let anyPlatform = request.choices.first { $0.platform.isEmpty }
        var best: (name: String, cost: Double, choice: ToolchainChoice)?
        for (name, state) in hosts {
            guard state.info.acceptsRemote, state.avoidUntil <= now else { continue }
            // A host can run the job when one of the choices is for its platform (an empty platform: any).
            guard let choice = request.choices.first(where: { $0.platform == state.info.platform }) ?? anyPlatform,
                  !request.exclude.contains(name) else { continue }
            let cost = expectedFinish(state, averageSpeed: average)
                + (state.info.toolchains.contains(choice.toolchain) ? 0 : environmentTransferCost)
            if let current = best, current.cost < cost || (current.cost == cost && current.name < name) { continue }
            best = (name, cost, choice)
        }
        guard let best, var state = hosts[best.name] else { return nil }
        state.granted += 1
        hosts[best.name] = state
        return (state, best.choice)
    }

}
