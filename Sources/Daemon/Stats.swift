import Records
import Wire

/// This machine's jobs by where they ran, with reasons for local runs and fallbacks (``StatsRecord``).
public actor JobStats {
    public private(set) var record = StatsRecord()

    public init() {}

    public func countRemote(host: String, timings t: JobTimings, cached: Bool = false) {
        record.remote += 1
        if cached { record.cacheHits += 1 }
        record.remoteHosts[host, default: 0] += 1
        record.remoteTimingsUs.queue += t.queue
        record.remoteTimingsUs.preprocess += t.preprocess
        record.remoteTimingsUs.transfer += t.transfer
        record.remoteTimingsUs.compile += t.compile
    }
    public func countLocal(reason: String) { record.local += 1; record.localReasons[reason, default: 0] += 1 }
    public func countFallback(reason: String) { record.fallback += 1; record.fallbackReasons[reason, default: 0] += 1 }
    public func countHelperConnection() { record.helperConnections += 1 }
    public func countServed() { record.served += 1 }
    /// A job's inputs found by `method` (`daemon` or `compiler`).
    public func countInputScan(_ method: String) { record.inputScans[method, default: 0] += 1 }
    /// The daemon's scan left a job to the compiler's, for `reason` (its first words, without paths).
    public func countCompilerScan(reason: String) { record.compilerScanReasons[reason, default: 0] += 1 }
    /// A remote attempt that did not give the compiler's verdict, by its failure code (`deadline`, `signal`, ...).
    public func countMoved() { record.moved += 1 }
    public func countHelperFailure(code: String) { record.helperFailures += 1; record.helperFailureReasons[code, default: 0] += 1 }

    public func reset() { record = StatsRecord() }

    public func json() -> String { RecordJSON.encode(record) }
}
