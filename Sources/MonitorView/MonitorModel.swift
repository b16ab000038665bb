import Records

/// What a monitor knows of the cluster, built from its event stream (``ClusterEvent``).
public struct MonitorModel: Sendable {
    public private(set) var hosts: [StatusRecord.Host] = []
    /// Granted jobs not yet finished, by key.
    public private(set) var running: [String: JobEvent] = [:]
    /// Each helper's latest finished jobs, oldest first (at most ``recentPerHost``).
    public private(set) var recent: [String: [JobEvent]] = [:]
    /// Jobs that compiled on their client, newest first (at most ``fallbackLimit``).
    public private(set) var fallbacks: [JobEvent] = []
    /// Finished jobs seen, by outcome.
    public private(set) var outcomes: [String: Int] = [:]
    /// The time of the latest event (the scheduler's clock).
    public private(set) var time: Double = 0
    /// Whether the first snapshot arrived.
    public private(set) var live = false
    public var recentPerHost = 200
    public var fallbackLimit = 100

    public init() {}

    public mutating func apply(_ event: ClusterEvent) {
        time = max(time, event.time)
        switch event.kind {
        case .snapshot:
            live = true
            hosts = event.hosts ?? []
            running = [:]
            for job in event.jobs ?? [] {
                if job.isRunning { running[job.key] = job } else { finish(job) }
            }
        case .hosts:
            hosts = event.hosts ?? hosts
        case .hostJoined:
            for host in event.hosts ?? [] {
                hosts.removeAll { $0.name == host.name }
                hosts.append(host)
            }
            hosts.sort { $0.name < $1.name }
        case .hostLeft:
            let gone = Set((event.hosts ?? []).map(\.name))
            hosts.removeAll { gone.contains($0.name) }
        case .jobGranted, .jobStarted:
            for job in event.jobs ?? [] { running[job.key] = job }
        case .jobFinished:
            for job in event.jobs ?? [] { finish(job) }
        }
    }

    private mutating func finish(_ job: JobEvent) {
        running[job.key] = nil
        outcomes[job.outcome, default: 0] += 1
        if job.outcome == "local" {
            fallbacks.insert(job, at: 0)
            if fallbacks.count > fallbackLimit { fallbacks.removeLast() }
        } else if !job.host.isEmpty {
            recent[job.host, default: []].append(job)
            if recent[job.host]!.count > recentPerHost { recent[job.host]!.removeFirst() }
        }
    }
}
