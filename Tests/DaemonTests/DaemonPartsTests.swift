import Foundation
import Synchronization
import SystemSupport
import Testing
import Toolchain
import Wire
@testable import Daemon

@Test(arguments: [
    ("/usr/bin/gcc", true), ("g++", true), ("/usr/bin/x86_64-linux-gnu-gcc-12", true), ("clang++-21", true),
    ("arm-linux-gnueabihf-g++", true), ("/opt/swift/usr/bin/clang", true), ("cc", true), ("c++", true),
    ("/bin/rm", false), ("sh", false), ("/usr/bin/gcc-ar", false), ("python3", false), ("gcc-", false),
])
func compilerNames(_ name: String, _ expected: Bool) {
    #expect(isCompilerName(name) == expected)
}

@Test(arguments: ["relative/a.c", "/a/../etc/passwd", "/a/./b", "/a\0b", ""])
func peerPathsMustBeNormalizedAndAbsolute(_ path: String) {
    #expect(throws: ResolveError.self) { try SandboxRunner.checkedPath(path) }
}

@Test func resolverRecordsEverySymlinkOnTheWay() throws {
    let root = NSTemporaryDirectory() + "resolver-" + UUID().uuidString
    let fm = FileManager.default
    try fm.createDirectory(atPath: root + "/real/inc", withIntermediateDirectories: true)
    try "x".write(toFile: root + "/real/inc/a.h", atomically: true, encoding: .utf8)
    try fm.createSymbolicLink(atPath: root + "/link", withDestinationPath: "real")
    try fm.createSymbolicLink(atPath: root + "/real/inc/b.h", withDestinationPath: "../inc/a.h")
    defer { try? fm.removeItem(atPath: root) }
    let resolver = FileResolver()
    let physicalRoot = try resolver.resolve(root).0
    let (path, links) = try resolver.resolve(root + "/link/inc/../inc/b.h")
    #expect(path == physicalRoot + "/real/inc/a.h")
    #expect(links.map(\.target) == ["real", "../inc/a.h"])
    let tree = try resolver.tree(files: ["link/inc/a.h", "real/inc/b.h", "missing.h"], directories: ["link/inc", "nowhere"], in: root)
    #expect(tree.files.count == 1)
    #expect(tree.files[0].hash == FileResolver.digest(Array("x".utf8)))
    #expect(tree.directories == [physicalRoot + "/real/inc"])
}

@Test func blobStoreRefusesContentsThatDoNotMatchTheirName() throws {
    let store = try BlobStore(directory: NSTemporaryDirectory() + "blobs-" + UUID().uuidString)
    defer { try? FileManager.default.removeItem(atPath: store.directory) }
    let good = Array("int x;".utf8)
    try store.store(Blob(hash: FileResolver.digest(good), contents: good))
    #expect(store.contains(FileResolver.digest(good)))
    #expect(throws: ResolveError.self) { try store.store(Blob(hash: FileResolver.digest(good), contents: Array("int y;".utf8))) }
    #expect(throws: ResolveError.self) { try store.store(Blob(hash: "../../etc/passwd", contents: good)) }
}

/// Jobs are prepared on the pool's own threads, nicer than the daemon's others, and at most one per thread at a
/// time (six 20 ms preparations on two threads: two at once, never more). Fails on the shared blocking pool (more
/// threads, nice 0) and without the priority.
@Test func preparationRunsNicerAndOnePerThread() async throws {
    let pool = PreparationPool(threads: 2)
    let caller = Posix.threadPriority()
    let running = Concurrency()
    let priorities = try await withThrowingTaskGroup(of: Int32.self) { group in
        for _ in 0..<6 {
            group.addTask {
                try await pool.run {
                    running.enter()
                    usleep(20_000)
                    running.leave()
                    return Posix.threadPriority()
                }
            }
        }
        return try await group.reduce(into: [Int32]()) { $0.append($1) }
    }
    #expect(priorities.count == 6)
    #expect(priorities.allSatisfy { $0 >= PreparationPool.niceness }, "\(priorities)")
    #expect(running.most == 2)
    #expect(Posix.threadPriority() == caller)
}

/// How many callers are between `enter` and `leave` now, and the most there were at once.
private final class Concurrency: Sendable {
    private let counts = Mutex<(now: Int, most: Int)>((0, 0))
    func enter() { counts.withLock { $0.now += 1; $0.most = max($0.most, $0.now) } }
    func leave() { counts.withLock { $0.now -= 1 } }
    var most: Int { counts.withLock { $0.most } }
}

/// Waiters get slots in the order they asked: five waiters queue one by one behind a full pool, then each
/// release wakes exactly the next (a LIFO or unordered pool fails the order).
@Test func slotPoolIsFair() async {
    let pool = SlotPool(capacity: 1)
    await pool.acquire()
    let order = OrderRecorder()
    var waiters: [Task<Void, Never>] = []
    for i in 0..<5 {
        waiters.append(Task {
            await pool.acquire()
            await order.append(i)
        })
        // The barrier: the next waiter starts only once this one is queued.
        while await pool.waiting < i + 1 { await Task.yield() }
    }
    for i in 0..<5 {
        await pool.release()
        while await order.values.count < i + 1 { await Task.yield() }
        #expect(await pool.inUse == 1)
    }
    for waiter in waiters { await waiter.value }
    #expect(await order.values == [0, 1, 2, 3, 4])
    await pool.release()
    let (inUse, waiting) = (await pool.inUse, await pool.waiting)
    #expect(inUse == 0 && waiting == 0)
}

actor OrderRecorder {
    private(set) var values: [Int] = []
    func append(_ value: Int) { values.append(value) }
}

@Test func blobStoreEvictsTheLeastRecentlyUsed() throws {
    let store = try BlobStore(directory: NSTemporaryDirectory() + "blobs-" + UUID().uuidString, limitBytes: 2500)
    defer { try? FileManager.default.removeItem(atPath: store.directory) }
    var hashes: [String] = []
    for i in 0..<3 {
        let contents = Array(String(repeating: Character(String(i)), count: 1000).utf8)
        let hash = FileResolver.digest(contents)
        try store.store(Blob(hash: hash, contents: contents))
        var times = [timeval(tv_sec: 1000 * (i + 1), tv_usec: 0), timeval(tv_sec: 1000 * (i + 1), tv_usec: 0)]
        utimes(store.path(hash), &times)
        hashes.append(hash)
    }
    store.touch([hashes[0]])  // used just now: the oldest is now the second
    #expect(store.trim() == 1000)
    #expect(store.contains(hashes[0]))
    #expect(!store.contains(hashes[1]))
    #expect(store.contains(hashes[2]))
}

@Test func probesAreFoundWithTheirNames() {
    let text = """
        #if __has_include(<a/b.h>) && __has_include_next( "c.h" )
        # if defined(X) && __has_include (<sys/sdt.h>)
        #if __has_include(MACRO) || __has_include("unterminated
        """
    let probes = ProbedHeaders.probes(in: Array(text.utf8))
    #expect(probes == [ProbedHeaders.Probe(name: "a/b.h", quoted: false), ProbedHeaders.Probe(name: "c.h", quoted: true),
                       ProbedHeaders.Probe(name: "sys/sdt.h", quoted: false)])
    let (quoted, angled) = ProbedHeaders.directories(arguments: ["-iquote", "q", "-Iinc", "-I", "/abs", "-isystem", "s", "-idirafter", "late", "-include", "x.h"],
                                                     workingDirectory: "/w", system: ["/usr/include"])
    #expect(angled == ["/w/inc", "/abs", "/w/s", "/usr/include", "/w/late"])
    #expect(quoted == ["/w/q"] + angled)
}

@Test func theHostIdIsMadeOnceAndKept() throws {
    let directory = NSTemporaryDirectory() + "swlaunch-hostid-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let first = try HostIdentity.load(stateDirectory: directory)
    #expect(first.count == 32 && first.allSatisfy(\.isHexDigit))
    #expect(try HostIdentity.load(stateDirectory: directory) == first)
    // A damaged file is replaced by a fresh id, not used.
    try "not an id\n".write(toFile: directory + "/host-id", atomically: true, encoding: .utf8)
    let second = try HostIdentity.load(stateDirectory: directory)
    #expect(second != first && second.count == 32)
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["host-id"])
}

/// Jobs that need the same missing environment at once: one fetches, the others wait for its outcome (all four
/// are waiting before it ends: a barrier, so the test cannot pass by the jobs running one after another), and a
/// job that needs another environment does not wait at all.
@Test func concurrentClaimsFetchOnceAndTheOthersGetItsOutcome() async {
    let fetches = EnvironmentFetches()
    #expect(await fetches.claim("env", waitAtMost: .seconds(30)) == .fetch)
    let outcomes = await withTaskGroup(of: EnvironmentFetches.Claim.self) { group in
        for _ in 0..<4 { group.addTask { await fetches.claim("env", waitAtMost: .seconds(30)) } }
        var waiting = 0
        for _ in 0..<5000 where waiting < 4 {
            waiting = await fetches.waiters(for: "env")
            try? await Task.sleep(for: .milliseconds(1))
        }
        #expect(waiting == 4, "the other jobs did not wait for the fetch under way")
        #expect(await fetches.claim("other", waitAtMost: .seconds(30)) == .fetch)
        await fetches.finish("env", installed: true)
        return await group.reduce(into: []) { $0.append($1) }
    }
    #expect(outcomes == Array(repeating: .finished(installed: true), count: 4))
    // Over: the next job to miss it fetches again.
    #expect(await fetches.claim("env", waitAtMost: .seconds(30)) == .fetch)
}

@Test func aWaiterGivesUpAtItsOwnDeadlineAndTheOthersWaitOn() async {
    let fetches = EnvironmentFetches()
    #expect(await fetches.claim("env", waitAtMost: .seconds(30)) == .fetch)
    async let patient = fetches.claim("env", waitAtMost: .seconds(30))
    // The barrier: the patient waiter is in line before the impatient one comes (on a loaded machine it may not have
    // run yet when the impatient one gives up and the fetch ends, and would then fetch itself).
    for _ in 0..<5000 where await fetches.waiters(for: "env") < 1 { try? await Task.sleep(for: .milliseconds(1)) }
    #expect(await fetches.waiters(for: "env") == 1)
    #expect(await fetches.claim("env", waitAtMost: .milliseconds(200)) == .gaveUp)
    await fetches.finish("env", installed: false)
    #expect(await patient == .finished(installed: false))
}

/// Contents left by an earlier run are hashed on their first use: a damaged one is removed (the client sends it
/// again), a sound one is kept; contents this run stored are not hashed again.
@Test func blobsFromAnEarlierRunAreCheckedOnFirstUse() throws {
    let directory = NSTemporaryDirectory() + "blobs-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let sound = Array("int x;".utf8), damaged = Array("int y;".utf8)
    let earlier = try BlobStore(directory: directory)
    for contents in [sound, damaged] { try earlier.store(Blob(hash: FileResolver.digest(contents), contents: contents)) }
    // A crash, a disk error or a hand changes one file: same name, other contents, an older change time.
    let damagedPath = earlier.path(FileResolver.digest(damaged))
    chmod(damagedPath, 0o644)
    try "int z;".write(toFile: damagedPath, atomically: false, encoding: .utf8)
    #expect(earlier.contains(FileResolver.digest(damaged)), "this run's own file is trusted without hashing")
    usleep(20_000)
    let restarted = try BlobStore(directory: directory)
    #expect(restarted.contains(FileResolver.digest(sound)))
    #expect(!restarted.contains(FileResolver.digest(damaged)))
    #expect(!FileManager.default.fileExists(atPath: damagedPath))
}

/// A finished job's folder leaves its place at once and is removed once jobs stop ending for a while, or at once
/// past the bound.
@Test func jobFoldersAreMovedAsideAndRemovedWhenQuietOrPastTheBound() throws {
    let base = NSTemporaryDirectory() + "trash-" + UUID().uuidString.prefix(8)
    defer { try? FileManager.default.removeItem(atPath: base) }
    func makeJob(_ n: Int) throws -> String {
        let job = base + "/jobs/\(n)"
        try FileManager.default.createDirectory(atPath: job + "/root/usr/include", withIntermediateDirectories: true)
        try "x".write(toFile: job + "/root/usr/include/a.h", atomically: false, encoding: .utf8)
        return job
    }
    let trash = JobTrash(directory: base + "/jobs/.trash", bound: 3)
    for n in 1...2 {
        let job = try makeJob(n)
        trash.discard(job)
        #expect(!FileManager.default.fileExists(atPath: job), "moved aside at once")
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/jobs/.trash").count == 2)
    #expect(!trash.isDue(quiet: .seconds(30)), "a job ended just now")
    usleep(20_000)
    #expect(trash.isDue(quiet: .milliseconds(10)))
    trash.sweep()
    #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/jobs/.trash").isEmpty)
    #expect(!trash.isDue(quiet: .zero), "nothing waits")
    // The bound: the third folder waiting sweeps them all at once.
    for n in 3...5 { trash.discard(try makeJob(n)) }
    #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/jobs/.trash").isEmpty)
}

/// A freed slot goes to the waiter of the highest priority (a helper's processor to the waiting job with the most
/// input), among equal priorities to the one that waited longest, and to a waiter passed over twice whatever waits:
/// 1 and 3 (300) pass 0 (100), which then goes before 4 (200). (A FIFO pool gives [0, 1, 2, 3, 4],
/// a LIFO one [4, 3, 2, 1, 0], priorities alone [1, 3, 4, 0, 2].)
@Test func slotPoolServesTheHighestPriorityFirstButStarvesNoOne() async {
    let pool = SlotPool(capacity: 1)
    await pool.acquire()
    let order = OrderRecorder()
    let priorities: [UInt64] = [100, 300, 100, 300, 200]
    var waiters: [Task<Void, Never>] = []
    for (i, priority) in priorities.enumerated() {
        waiters.append(Task {
            _ = await pool.acquire(unlessGivenBack: nil, priority: priority)
            await order.append(i)
        })
        while await pool.waiting < i + 1 { await Task.yield() }
    }
    for i in 0..<5 {
        await pool.release()
        while await order.values.count < i + 1 { await Task.yield() }
    }
    for waiter in waiters { await waiter.value }
    #expect(await order.values == [1, 3, 0, 4, 2])
    await pool.release()
    #expect(await pool.inUse == 0)
}

/// A waiter that names a tag can be given back: the newest whose tag is asked for leaves the line (its acquire answers
/// false) and the others keep their places; an untagged waiter, or one whose tag is not asked for, never leaves.
@Test func slotPoolGivesBackTheNewestWaiterOfTheToolchainsAsked() async {
    let pool = SlotPool(capacity: 1)
    await pool.acquire()
    let order = OrderRecorder()
    let tags: [String?] = [nil, "t", "u", "t", nil]
    var waiters: [Task<Void, Never>] = []
    for (i, tag) in tags.enumerated() {
        waiters.append(Task {
            await order.append(await pool.acquire(unlessGivenBack: tag) ? i : -1 - i)
        })
        while await pool.waiting < i + 1 { await Task.yield() }
    }
    #expect(await pool.giveBack(newestTaggedWithAnyOf: ["t"]))
    while await order.values.isEmpty { await Task.yield() }
    #expect(await order.values == [-4], "the newest waiter for t (the fourth) was given back")
    #expect(await pool.giveBack(newestTaggedWithAnyOf: ["v"]) == false)
    let (waiting, inUse) = (await pool.waiting, await pool.inUse)
    #expect(waiting == 4 && inUse == 1)
    for i in 0..<4 {
        await pool.release()
        while await order.values.count < i + 2 { await Task.yield() }
    }
    for waiter in waiters { await waiter.value }
    #expect(await order.values == [-4, 0, 1, 2, 4])
    #expect(await pool.giveBack(newestTaggedWithAnyOf: ["t", "u"]) == false, "no one waits")
}
