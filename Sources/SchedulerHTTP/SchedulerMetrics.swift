import CoreMetrics
import Prometheus
import Records
import Synchronization

/// The scheduler's Prometheus metrics (`/metrics`), recorded through swift-metrics into its own registry.
///
/// Names (docs/monitoring.md): `swlaunch_jobs_total{outcome}`, `swlaunch_fallbacks_total{reason}`,
/// `swlaunch_grants_total`, `swlaunch_no_host_total`, `swlaunch_environment_fetches_total`, `swlaunch_give_backs_total`
/// (helpers asked to give a waiting job back for an idle one),
/// `swlaunch_slot_wait_seconds` (host requests that waited for a free slot), the histograms
/// `swlaunch_job_queue_seconds`, `swlaunch_job_preprocess_seconds`, `swlaunch_job_transfer_seconds` and
/// `swlaunch_job_compile_seconds` (remote jobs), `swlaunch_job_bytes_sent_total`, `swlaunch_job_bytes_received_total`,
/// and per host `swlaunch_host_slots`, `swlaunch_host_running`, `swlaunch_host_load`, `swlaunch_host_speed`,
/// with `swlaunch_hosts` in all.
public final class SchedulerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let grants: CoreMetrics.Counter
    private let noHost: CoreMetrics.Counter
    private let environmentFetches: CoreMetrics.Counter
    private let giveBacks: CoreMetrics.Counter
    private let bytesSent: CoreMetrics.Counter
    private let bytesReceived: CoreMetrics.Counter
    private let queue: CoreMetrics.Timer
    private let preprocess: CoreMetrics.Timer
    private let transfer: CoreMetrics.Timer
    private let compile: CoreMetrics.Timer
    private let slotWait: CoreMetrics.Timer
    private let hostCount: CoreMetrics.Gauge
    private let perHost = Mutex<[String: HostGauges]>([:])
    /// Counters with a label value, made once each (`jobs_total` by outcome, `fallbacks_total` by reason).
    private let labelled = Mutex<[String: CoreMetrics.Counter]>([:])

    private func counter(_ label: String, _ dimension: String, _ value: String) -> CoreMetrics.Counter {
        let key = label + "\u{0}" + value
        return labelled.withLock { made in
            if let counter = made[key] { return counter }
            let counter = Counter(label: label, dimensions: [(dimension, value)], factory: factory)
            made[key] = counter
            return counter
        }
    }

    private struct HostGauges: @unchecked Sendable {
        let slots: CoreMetrics.Gauge, running: CoreMetrics.Gauge, load: CoreMetrics.Gauge, speed: CoreMetrics.Gauge
        func destroy() { slots.destroy(); running.destroy(); load.destroy(); speed.destroy() }
    }

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                   .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
                                   .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300)]
        factory.defaultDurationHistogramBuckets = seconds
        self.factory = factory
        grants = Counter(label: "swlaunch_grants_total", factory: factory)
        noHost = Counter(label: "swlaunch_no_host_total", factory: factory)
        environmentFetches = Counter(label: "swlaunch_environment_fetches_total", factory: factory)
        giveBacks = Counter(label: "swlaunch_give_backs_total", factory: factory)
        bytesSent = Counter(label: "swlaunch_job_bytes_sent_total", factory: factory)
        bytesReceived = Counter(label: "swlaunch_job_bytes_received_total", factory: factory)
        queue = Timer(label: "swlaunch_job_queue_seconds", factory: factory)
        preprocess = Timer(label: "swlaunch_job_preprocess_seconds", factory: factory)
        transfer = Timer(label: "swlaunch_job_transfer_seconds", factory: factory)
        compile = Timer(label: "swlaunch_job_compile_seconds", factory: factory)
        slotWait = Timer(label: "swlaunch_slot_wait_seconds", factory: factory)
        hostCount = Gauge(label: "swlaunch_hosts", factory: factory)
        // Every outcome is present from the start (at 0), so that a rate over it is defined.
        for outcome in JobEvent.finishedOutcomes {
            counter("swlaunch_jobs_total", "outcome", outcome).increment(by: 0)
        }
    }

    /// A host granted; `needsEnvironment` when it lacks the job's toolchain environment and will fetch it.
    public func granted(needsEnvironment: Bool) {
        grants.increment()
        if needsEnvironment { environmentFetches.increment() }
    }

    public func refusedForLackOfHosts() { noHost.increment() }

    /// A helper asked to give a job waiting for its processor back, for a host with one idle.
    public func askedToGiveBack() { giveBacks.increment() }

    /// A host request answered after waiting `seconds` for a free slot.
    public func waitedForSlot(seconds: Double) { slotWait.recordNanoseconds(Int64(max(0, seconds) * 1e9)) }

    /// A job (or remote attempt) finished.
    public func finished(_ job: JobEvent) {
        counter("swlaunch_jobs_total", "outcome", job.outcome).increment()
        if job.outcome == "local" {
            counter("swlaunch_fallbacks_total", "reason", job.reason).increment()
        }
        if job.outcome == "remote" {
            queue.recordMicroseconds(job.queueUs)
            preprocess.recordMicroseconds(job.preprocessUs)
            transfer.recordMicroseconds(job.transferUs)
            compile.recordMicroseconds(job.compileUs)
        }
        bytesSent.increment(by: Int64(clamping: job.bytesOut))
        bytesReceived.increment(by: Int64(clamping: job.bytesIn))
    }

    /// The hosts as they are now: per-host gauges for these, none for hosts that left.
    public func hosts(_ hosts: [StatusRecord.Host]) {
        hostCount.record(hosts.count)
        perHost.withLock { gauges in
            let names = Set(hosts.map(\.name))
            for (name, gone) in gauges where !names.contains(name) {
                gone.destroy()
                gauges[name] = nil
            }
            for host in hosts {
                let g = gauges[host.name] ?? {
                    let labels = [("host", host.name)]
                    return HostGauges(slots: Gauge(label: "swlaunch_host_slots", dimensions: labels, factory: factory),
                                      running: Gauge(label: "swlaunch_host_running", dimensions: labels, factory: factory),
                                      load: Gauge(label: "swlaunch_host_load", dimensions: labels, factory: factory),
                                      speed: Gauge(label: "swlaunch_host_speed", dimensions: labels, factory: factory))
                }()
                gauges[host.name] = g
                g.slots.record(host.acceptsRemote ? host.maxJobs : 0)
                g.running.record(host.running)
                g.load.record(host.load)
                g.speed.record(host.speed ?? 0)
            }
        }
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }
}
