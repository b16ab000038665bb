import SystemSupport
import Wire

/// This machine's jobs by where they ran, with reasons for local runs and fallbacks.
public actor JobStats {
    public private(set) var remote = 0
    public private(set) var local = 0
    public private(set) var fallback = 0
    /// Jobs compiled here for peers.
    public private(set) var served = 0
    /// Remote attempts that failed on a helper and were tried again elsewhere (or fell back).
    public private(set) var helperFailures = 0
    private var localReasons: [String: Int] = [:]
    private var fallbackReasons: [String: Int] = [:]
    private var byHost: [String: Int] = [:]
    private var failureCodes: [String: Int] = [:]
    private var timings = JobTimings()

    public init() {}

    public func countRemote(host: String, timings t: JobTimings) {
        remote += 1
        byHost[host, default: 0] += 1
        timings.queue += t.queue
        timings.preprocess += t.preprocess
        timings.transfer += t.transfer
        timings.compile += t.compile
    }
    public func countLocal(reason: String) { local += 1; localReasons[reason, default: 0] += 1 }
    public func countFallback(reason: String) { fallback += 1; fallbackReasons[reason, default: 0] += 1 }
    public func countServed() { served += 1 }
    /// A remote attempt that did not give the compiler's verdict, by its failure code (`deadline`, `signal`, ...).
    public func countHelperFailure(code: String) { helperFailures += 1; failureCodes[code, default: 0] += 1 }

    public func reset() {
        remote = 0; local = 0; fallback = 0; served = 0; helperFailures = 0
        localReasons = [:]; fallbackReasons = [:]; byHost = [:]; failureCodes = [:]; timings = JobTimings()
    }

    public func json() -> String {
        func map(_ d: [String: Int]) -> String {
            JSON.object(d.sorted { $0.key < $1.key }.map { ($0.key, String($0.value)) })
        }
        return JSON.object([
            ("remote", String(remote)), ("local", String(local)), ("fallback", String(fallback)), ("served", String(served)), ("helper_failures", String(helperFailures)),
            ("local_reasons", map(localReasons)), ("fallback_reasons", map(fallbackReasons)), ("remote_hosts", map(byHost)),
            ("helper_failure_reasons", map(failureCodes)),
            ("remote_timings_us", JSON.object([
                ("queue", String(timings.queue)), ("preprocess", String(timings.preprocess)),
                ("transfer", String(timings.transfer)), ("compile", String(timings.compile)),
            ])),
        ])
    }
}
