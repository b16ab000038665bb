import Records
import Testing
@testable import SchedulerHTTP

/// The value of one sample line (`name{labels} value`) of a Prometheus text exposition.
func sample(_ text: String, _ series: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

@Suite struct MetricsTests {
    @Test func jobsHostsAndHistogramsAreExposed() {
        let metrics = SchedulerMetrics()
        metrics.granted(needsEnvironment: true)
        metrics.granted(needsEnvironment: false)
        metrics.refusedForLackOfHosts()
        metrics.waitedForSlot(seconds: 0.3)
        var remote = JobEvent(key: "c#1", client: "c", host: "h1", outcome: "remote", granted: 1, finished: 2)
        remote.compileUs = 1_500_000
        remote.bytesOut = 1000
        metrics.finished(remote)
        metrics.finished(JobEvent(key: "c!1", client: "c", host: "", outcome: "local", reason: "no-helper", granted: 1, finished: 2))
        metrics.hosts([host("h1", slots: 4, running: 3, speed: 2.5), host("h2")])
        var text = metrics.exposition()
        #expect(sample(text, "swlaunch_jobs_total{outcome=\"remote\"}") == 1)
        #expect(sample(text, "swlaunch_jobs_total{outcome=\"failed\"}") == 0)
        #expect(sample(text, "swlaunch_fallbacks_total{reason=\"no-helper\"}") == 1)
        #expect(sample(text, "swlaunch_grants_total") == 2 && sample(text, "swlaunch_environment_fetches_total") == 1)
        #expect(sample(text, "swlaunch_no_host_total") == 1)
        #expect(sample(text, "swlaunch_slot_wait_seconds_count") == 1 && sample(text, "swlaunch_slot_wait_seconds_bucket{le=\"0.25\"}") == 0
                && sample(text, "swlaunch_slot_wait_seconds_bucket{le=\"0.5\"}") == 1)
        #expect(sample(text, "swlaunch_job_compile_seconds_count") == 1 && sample(text, "swlaunch_job_compile_seconds_sum") == 1.5)
        #expect(sample(text, "swlaunch_job_compile_seconds_bucket{le=\"1.0\"}") == 0 && sample(text, "swlaunch_job_compile_seconds_bucket{le=\"2.5\"}") == 1)
        #expect(sample(text, "swlaunch_host_slots{host=\"h1\"}") == 4 && sample(text, "swlaunch_host_running{host=\"h1\"}") == 3)
        #expect(sample(text, "swlaunch_host_speed{host=\"h1\"}") == 2.5 && sample(text, "swlaunch_hosts") == 2)
        #expect(sample(text, "swlaunch_job_bytes_sent_total") == 1000)
        metrics.hosts([host("h1")])
        text = metrics.exposition()
        #expect(sample(text, "swlaunch_host_slots{host=\"h2\"}") == nil, "a host that left has no gauges")
    }
}
