import Foundation
import Synchronization
import SystemSupport
import Toolchain

/// Job folders a helper is done with: moved aside at once (one `rename`) and removed when no job has ended for a
/// while, or at once when ``bound`` wait. Removing a job's tree between a build's compiles costs the
/// compiles' CPU, and on ext4 it slows the next trees' folders too (new inodes skip those freed in the last seconds).
final class JobTrash: Sendable {
    let directory: String
    let bound: Int
    private let state = Mutex<(waiting: Int, serial: UInt64, lastDiscard: ContinuousClock.Instant)>((0, 0, .now))

    init(directory: String, bound: Int = 256) {
        self.directory = directory
        self.bound = bound
    }

    /// Moves a job's folder aside (or removes it now when it cannot be moved).
    func discard(_ path: String) {
        let due: Bool? = state.withLock { state in
            state.serial += 1
            let target = directory + "/" + String(state.serial)
            if rename(path, target) != 0 {
                // The first time (or after a restart's recovery removed it): the folder is made, and tried again.
                guard errno == ENOENT, (try? SandboxTree.ensureDirectory(directory)) != nil, rename(path, target) == 0 else { return nil }
            }
            state.waiting += 1
            state.lastDiscard = .now
            return state.waiting >= bound
        }
        switch due {
        case nil: try? FileManager.default.removeItem(atPath: path)
        case true?: sweep()
        case false?: break
        }
    }

    /// Whether folders wait and none was added for `quiet`.
    func isDue(quiet: Duration) -> Bool {
        state.withLock { $0.waiting > 0 && ContinuousClock.now - $0.lastDiscard >= quiet }
    }

    /// Removes the folders moved aside so far.
    func sweep() {
        let names = Posix.directoryEntries(directory) ?? []
        for name in names { try? FileManager.default.removeItem(atPath: directory + "/" + name) }
        state.withLock { $0.waiting = max(0, $0.waiting - names.count) }
    }
}
