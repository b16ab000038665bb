/// Coalesces fetches of the same environment: when several jobs need one that is missing, one
/// connection fetches it and the others wait for the outcome instead of transferring it again.
actor EnvironmentFetches {
    private var waiting: [String: [CheckedContinuation<Bool, Never>]] = [:]

    /// True when the caller should fetch `id` itself; false after another fetch of it ended, which the
    /// caller then checks in the cache.
    func claim(_ id: String) async -> Bool {
        if waiting[id] == nil {
            waiting[id] = []
            return true
        }
        _ = await withCheckedContinuation { waiting[id, default: []].append($0) }
        return false
    }

    func finish(_ id: String, installed: Bool) {
        for continuation in waiting.removeValue(forKey: id) ?? [] { continuation.resume(returning: installed) }
    }
}
