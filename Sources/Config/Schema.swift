import SystemSupport

/// What a configuration key accepts.
public enum KeyKind: Sendable, Equatable {
    case string
    case path(mustExist: Bool)
    case address
    /// `HOST:PORT[,HOST:PORT...]`, in order (a scheduler and its standbys).
    case addressList
    case integer(ClosedRange<Int>)
    case boolean
    case choice([String])
    /// A table of platform name to environment archive path (under `[toolchains]`).
    case toolchainTable
}

/// One documented configuration key.
public struct KeySpec: Sendable {
    public let key: String
    public let kind: KeyKind
    /// The `SWLAUNCH_*` variable that overrides every file.
    public let environment: String?
    public let defaultValue: ConfigValue?
    public let help: String
}

/// Every key swlaunch reads. `toolchains.<compiler>` keys are open-ended and checked by ``KeyKind/toolchainTable``.
public let configKeys: [KeySpec] = [
    KeySpec(key: "scheduler.address", kind: .addressList, environment: "SWLAUNCH_SCHEDULER", defaultValue: nil,
            help: "HOST:PORT of the scheduler daemons register with; standbys follow after commas, in order of preference."),
    KeySpec(key: "scheduler.netname", kind: .string, environment: "SWLAUNCH_NETNAME", defaultValue: nil,
            help: "Network name for UDP discovery when no address is set."),
    KeySpec(key: "cluster.key_file", kind: .path(mustExist: false), environment: "SWLAUNCH_KEY_FILE", defaultValue: nil,
            help: "The cluster key (from `swlaunch key generate`): every TCP connection is mutual TLS from it."),
    KeySpec(key: "cluster.insecure", kind: .boolean, environment: "SWLAUNCH_INSECURE", defaultValue: .boolean(false),
            help: "Listen on other addresses than loopback without a cluster key (any host that reaches the port can join)."),
    KeySpec(key: "daemon.socket", kind: .string, environment: "SWLAUNCH_SOCKET", defaultValue: nil,
            help: "Unix socket where launchers reach the local daemon."),
    KeySpec(key: "daemon.listen", kind: .address, environment: "SWLAUNCH_LISTEN", defaultValue: .string("0.0.0.0:\(DefaultPorts.daemon)"),
            help: "Address and port where the daemon takes jobs from peers."),
    KeySpec(key: "daemon.max_jobs", kind: .integer(1...4096), environment: "SWLAUNCH_MAX_JOBS", defaultValue: nil,
            help: "Remote jobs the daemon runs at once for peers (default: cores)."),
    KeySpec(key: "daemon.local_jobs", kind: .integer(1...4096), environment: "SWLAUNCH_LOCAL_JOBS", defaultValue: nil,
            help: "Local slots for preprocessing, links and fallbacks (default: cores)."),
    KeySpec(key: "daemon.remote", kind: .boolean, environment: "SWLAUNCH_REMOTE", defaultValue: .boolean(true),
            help: "Whether the daemon compiles for other machines."),
    KeySpec(key: "daemon.state_dir", kind: .path(mustExist: false), environment: "SWLAUNCH_STATE_DIR", defaultValue: nil,
            help: "Directory for caches and sandboxes."),
    KeySpec(key: "jobs.fallback", kind: .choice(["local", "fail"]), environment: "SWLAUNCH_FALLBACK", defaultValue: .string("local"),
            help: "What an infrastructure failure does: compile locally, or fail the compile (for CI)."),
    KeySpec(key: "remote.backend", kind: .choice(["scheduler", "reapi"]), environment: "SWLAUNCH_BACKEND", defaultValue: .string("scheduler"),
            help: "Where jobs go: swlaunch's own scheduler and helpers, or a Remote Execution API service (docs/reapi.md)."),
    KeySpec(key: "remote.endpoint", kind: .string, environment: "SWLAUNCH_REAPI_ENDPOINT", defaultValue: nil,
            help: "The REAPI service: host:port or grpc://host:port (plaintext), grpcs://host:port (TLS)."),
    KeySpec(key: "remote.instance_name", kind: .string, environment: "SWLAUNCH_REAPI_INSTANCE", defaultValue: .string(""),
            help: "The REAPI instance name."),
    KeySpec(key: "remote.ca_file", kind: .path(mustExist: true), environment: "SWLAUNCH_REAPI_CA_FILE", defaultValue: nil,
            help: "PEM roots to trust for a grpcs:// endpoint (default: the system's)."),
    KeySpec(key: "remote.token_file", kind: .path(mustExist: true), environment: "SWLAUNCH_REAPI_TOKEN_FILE", defaultValue: nil,
            help: "A file holding the bearer token sent with every REAPI call."),
    KeySpec(key: "remote.properties", kind: .string, environment: "SWLAUNCH_REAPI_PROPERTIES", defaultValue: .string(""),
            help: "Platform properties beside OSFamily and ISA, as NAME=VALUE,NAME=VALUE."),
    KeySpec(key: "remote.platform", kind: .string, environment: "SWLAUNCH_REAPI_PLATFORM", defaultValue: nil,
            help: "The platform whose environment REAPI actions run (x86_64-linux: a [toolchains] cross compiler on x86 workers); default this machine's."),
    KeySpec(key: "jobs.cache", kind: .choice(["read-write", "read", "off"]), environment: "SWLAUNCH_CACHE", defaultValue: .string("read-write"),
            help: "The REAPI action cache: look up and let executions be cached, look up only, or neither."),
    KeySpec(key: "jobs.compression_level", kind: .integer(1...19), environment: "SWLAUNCH_COMPRESSION_LEVEL", defaultValue: .integer(1),
            help: "zstd level for file contents sent to helpers."),
    KeySpec(key: "jobs.scan", kind: .choice(["daemon", "compiler"]), environment: "SWLAUNCH_SCAN", defaultValue: .string("daemon"),
            help: "How a compile's inputs are found: the daemon's include scan (no preprocessor run; the compiler's scan when it cannot tell) or always the compiler's."),
    KeySpec(key: "jobs.count", kind: .integer(1...4096), environment: "SWLAUNCH_JOBS", defaultValue: nil,
            help: "The -j the build wrappers use (written by `swlaunch ninjalog --write`)."),
    KeySpec(key: "log.level", kind: .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]),
            environment: "SWLAUNCH_LOG_LEVEL", defaultValue: .string("info"), help: "Daemon log level."),
    KeySpec(key: "log.file", kind: .path(mustExist: false), environment: "SWLAUNCH_LOG_FILE", defaultValue: nil,
            help: "File the launcher appends fallback reasons to (default: none)."),
]

/// Suggests the known key closest to `key`, when it is within a couple of edits.
public func suggestion(for key: String) -> String? {
    var best: (String, Int)?
    for spec in configKeys {
        let d = editDistance(key, spec.key)
        if d <= 2, d < (best?.1 ?? Int.max) { best = (spec.key, d) }
    }
    if best == nil, let dot = key.firstIndex(of: ".") {
        // A known section with an unknown name after it: compare the last part alone.
        let tail = key[key.index(after: dot)...]
        for spec in configKeys where spec.key.hasPrefix(key[...dot]) {
            let d = editDistance(String(tail), String(spec.key.split(separator: ".").last!))
            if d <= 2, d < (best?.1 ?? Int.max) { best = (spec.key, d) }
        }
    }
    return best?.0
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var row = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where j <= b.count {
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = row
    }
    return previous[b.count]
}
