import Foundation
import SystemSupport
import Testing
import Toolchain
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// The fixtures directory beside this file.
let fixtures: String = {
    let file = #filePath
    return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures"
}()

/// A hostile environment for a real helper: its `/usr/bin/gcc` is a static program that tries what the
/// arguments say (read, write, chmod, symlink, connect) from inside the sandbox, exactly as a job's compiler runs.
struct AttackerEnvironment {
    let id: String
    let archive: [UInt8]
    /// A file of the environment that jobs must not be able to change (it stands for `cc1`).
    let cc1 = "/usr/libexec/gcc/cc1"

    init(in directory: String) throws {
        let root = directory + "/attacker-root"
        try FileManager.default.createDirectory(atPath: root + "/usr/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/usr/libexec/gcc", withIntermediateDirectories: true)
        let status = Spawn.run("/usr/bin/gcc", ["gcc", "-static", "-O1", "-o", root + "/usr/bin/gcc", fixtures + "/attacker.c"],
                               stdoutPath: "/dev/null", stderrPath: directory + "/attacker-build.log")
        guard status == 0 else { throw TestClusterError("cannot build the attacker: \(String(decoding: Posix.readFile(directory + "/attacker-build.log") ?? [], as: UTF8.self))") }
        try "original cc1".write(toFile: root + cc1, atomically: true, encoding: .utf8)
        let files = ["/usr/bin/gcc", cc1].map { path in
            FileEntry(path: path, hash: FileResolver.digest(Posix.readFile(root + path) ?? []), executable: path.hasSuffix("gcc"))
        }
        let platform = currentPlatform()
        id = EnvironmentArchive.identity(files: files, symlinks: [], platform: platform)
        let path = directory + "/attacker.tar.zst"
        try EnvironmentArchive.write(Toolchain(id: id, compiler: "/usr/bin/gcc", files: files, symlinks: []),
                                     manifest: EnvironmentManifest(platform: platform, compilers: ["/usr/bin/gcc"]), to: path, sourceRoot: root)
        archive = Posix.readFile(path) ?? []
    }

    func job(_ actions: [String], files: [FileEntry] = [], symlinks: [SymlinkEntry] = [], outputs: [String] = ["/job/out/a.o"],
             environment: [String] = []) -> RemoteJob {
        // Ends by writing its object, as a compile does (a job that "succeeds" without one is a helper failure).
        let writesObject = actions.contains { $0.hasSuffix(":" + (outputs.first ?? "")) } ? [] : outputs.prefix(1).map { "write:" + $0 }
        return RemoteJob(toolchain: id, compiler: "/usr/bin/gcc", arguments: actions + writesObject, workingDirectory: "/job", environment: environment,
                         files: files, symlinks: symlinks, directories: [], outputs: outputs)
    }
}

/// Hostile jobs sent straight to a real helper (running as root, as the shipped unit did), one per class of
/// attack: each is refused or contained, and nothing outside the job is created, changed or read.
@Suite(.serialized, .enabled(if: getuid() == 0, "the helper runs as root, as a system daemon would"))
struct SandboxAttackTests {
    static let cluster: Result<TestCluster, any Error> = Result { try TestCluster(helpers: 1) }
    static let attacker: Result<AttackerEnvironment, any Error> = Result {
        try AttackerEnvironment(in: try cluster.get().directory)
    }

    /// A directory on the helper's host that jobs aim at.
    static func target(_ name: String) throws -> String {
        let path = try cluster.get().directory + "/host-" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try "host secret".write(toFile: path + "/secret", atomically: true, encoding: .utf8)
        chmod(path + "/secret", 0o600)
        return path
    }

    static func entries(_ path: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }

    func send(_ job: RemoteJob, blobs: [String: [UInt8]] = [:]) throws -> Message? {
        let cluster = try Self.cluster.get()
        return try RawPeer(port: cluster.helperPorts[0]).run(job, environment: try Self.attacker.get().archive, blobs: blobs)
    }

    func stdout(_ reply: Message?) -> String {
        if case let .result(result)? = reply { return String(decoding: result.stdout, as: UTF8.self) }
        return "no result: \(String(describing: reply))"
    }

    @Test func aJobSymlinkToTheHostCannotPlaceOrReadAnything() throws {
        let cluster = try Self.cluster.get(), attacker = try Self.attacker.get()
        let target = try Self.target("links")
        let blob = Array("planted".utf8), hash = FileResolver.digest(Array("planted".utf8))
        // An absolute target: refused outright.
        let absolute = attacker.job([], files: [FileEntry(path: "/job/evil/planted", hash: hash, executable: false)],
                                    symlinks: [SymlinkEntry(path: "/job/evil", target: target)], outputs: ["/job/evil/out.o"])
        guard case let .jobFailed(refusal)? = try send(absolute, blobs: [hash: blob]) else { Issue.record("absolute link accepted"); return }
        #expect(refusal.failureClass == .job && refusal.reason.contains("targets must be relative"), "\(refusal)")
        // A relative target that climbs out of the tree: the daemon never follows it on the host.
        let climbing = String(repeating: "../", count: 40) + String(target.dropFirst())
        let relative = attacker.job([], files: [FileEntry(path: "/job/evil/planted", hash: hash, executable: false)],
                                    symlinks: [SymlinkEntry(path: "/job/evil", target: climbing)], outputs: ["/job/evil/out.o"])
        guard case let .jobFailed(refusal2)? = try send(relative, blobs: [hash: blob]) else { Issue.record("climbing link accepted"); return }
        #expect(refusal2.failureClass == .job && refusal2.reason.contains("symbolic link"), "\(refusal2)")
        #expect(Self.entries(target) == ["secret"])
        #expect(try String(contentsOfFile: target + "/secret", encoding: .utf8) == "host secret")
        #expect(cluster.isAlive("helper1"))
    }

    @Test func anOutputTurnedIntoASymlinkIsNotReadBack() throws {
        let attacker = try Self.attacker.get()
        let target = try Self.target("output")
        let reply = try send(attacker.job(["symlink:\(target)/secret:/job/out/a.o", "symlink:../../../../../..\(target)/secret:/job/out/b.o"],
                                          outputs: ["/job/out/a.o", "/job/out/b.o"]))
        // Neither link is read: the object is missing, so the helper answers with a failure, not the secret.
        guard case let .jobFailed(failure)? = reply else { Issue.record("\(String(describing: reply))"); return }
        #expect(failure.code == "missing-output", "\(failure)")
    }

    @Test func jobVariablesReachNeitherBubblewrapNorTheCompiler() throws {
        let cluster = try Self.cluster.get(), attacker = try Self.attacker.get()
        let mark = cluster.directory + "/preloaded-mark"
        let library = cluster.directory + "/preload.so"
        #expect(Spawn.run("/usr/bin/gcc", ["gcc", "-shared", "-fPIC", "-DMARK=\"\(mark)\"", "-o", library, fixtures + "/preload.c"],
                          stdoutPath: "/dev/null", stderrPath: "/dev/null") == 0)
        let reply = try send(attacker.job(["env:LD_PRELOAD", "env:GCC_EXEC_PREFIX", "env:LANG"],
                                          environment: ["LD_PRELOAD=\(library)", "GCC_EXEC_PREFIX=/evil/", "LANG=C.UTF-8"]))
        #expect(stdout(reply).contains("ENV LD_PRELOAD=(unset)"))
        #expect(stdout(reply).contains("ENV GCC_EXEC_PREFIX=(unset)"))
        #expect(stdout(reply).contains("ENV LANG=C.UTF-8"))
        #expect(!Posix.fileExists(mark), "LD_PRELOAD ran on the helper's host")
    }

    @Test func cachedHeadersAndTheEnvironmentCannotBeRewritten() throws {
        let cluster = try Self.cluster.get(), attacker = try Self.attacker.get()
        let header = Array("#define CACHED 1\n".utf8), hash = FileResolver.digest(Array("#define CACHED 1\n".utf8))
        // A header deeper than the top of the writable output directory, and one in the read-only part.
        let files = [FileEntry(path: "/job/out/sub/dir/cached.h", hash: hash, executable: false),
                     FileEntry(path: "/job/include/cached.h", hash: hash, executable: false)]
        let reply = try send(attacker.job(["chmodwrite:/job/out/sub/dir/cached.h", "chmodwrite:/job/include/cached.h",
                                           "chmodwrite:\(attacker.cc1)", "write:/usr/libexec/gcc/new"], files: files),
                             blobs: [hash: header])
        let printed = stdout(reply)
        #expect(printed.contains("OK chmodwrite:/job/out/sub/dir/cached.h"), "\(printed)")  // its own copy
        #expect(printed.contains("FAIL chmodwrite:/job/include/cached.h"), "\(printed)")
        #expect(printed.contains("FAIL chmodwrite:\(attacker.cc1)"), "\(printed)")
        #expect(printed.contains("FAIL write:/usr/libexec/gcc/new"), "\(printed)")
        let store = cluster.directory + "/state-helper1"
        #expect(Posix.readFile(store + "/blobs/" + hash) == header)
        #expect(Posix.readFile(store + "/environments/\(attacker.id)\(attacker.cc1)") == Array("original cc1".utf8))
        // The next job sees the header as it was.
        let again = try send(attacker.job(["read:/job/include/cached.h"], files: [files[1]]), blobs: [hash: header])
        #expect(stdout(again).contains("OK read:/job/include/cached.h"))
    }

    @Test func theSandboxHasNoNetworkNoHostSecretsAndNoWritableHost() throws {
        let cluster = try Self.cluster.get(), attacker = try Self.attacker.get()
        let home = try Self.target("home")
        let port = TestCluster.freePort()
        let listener = try listenOnLoopback(port: port)
        defer { close(listener) }
        let reply = try send(attacker.job([
            "connect:127.0.0.1:\(port)", "connect:127.0.0.1:\(cluster.schedulerPort)", "connect:198.18.0.1:80",
            "read:/etc/shadow", "read:\(home)/secret", "read:/root/.bashrc",
            "write:/etc/evil", "write:\(home)/evil", "write:/tmp/evil", "write:/job/evil", "write:/job/out/allowed",
        ]))
        let printed = stdout(reply)
        for action in ["connect:127.0.0.1:\(port)", "connect:127.0.0.1:\(cluster.schedulerPort)", "connect:198.18.0.1:80",
                       "read:/etc/shadow", "read:\(home)/secret", "read:/root/.bashrc",
                       "write:/etc/evil", "write:\(home)/evil", "write:/tmp/evil", "write:/job/evil"] {
            #expect(printed.contains("FAIL \(action)"), "\(action) succeeded:\n\(printed)")
        }
        #expect(printed.contains("OK write:/job/out/allowed"), "\(printed)")
        #expect(!Posix.fileExists("/etc/evil") && !Posix.fileExists(home + "/evil") && !Posix.fileExists("/tmp/evil"))
        #expect(Self.entries(home) == ["secret"])
    }

    /// One address cannot hold more than its share of connections, and a connection that does not finish its
    /// handshake in time is closed however slowly it sends.
    @Test func connectionsAreCappedAndSlowHandshakesDropped() throws {
        let cluster = try Self.cluster.get()
        var peers: [RawPeer] = []
        for _ in 0..<70 { peers.append(try RawPeer(port: cluster.helperPorts[0], timeoutSeconds: 2)) }
        usleep(300_000)
        let closed = peers.filter { $0.isClosedNow() }.count
        // At most 64 stay open (a connection of an earlier test the helper has not yet seen close still counts).
        #expect(70 - closed <= 64 && 70 - closed >= 56, "\(closed) of 70 connections from one address were closed; the cap is 64")
        peers = []
        guard let (slow, start) = try Self.admittedConnection(port: cluster.helperPorts[0]) else {
            Issue.record("no connection admitted after the others closed"); return
        }
        let hello = Frame.encode(.hello(Hello(role: .daemon, name: "slow")))
        var closedAfter: UInt64?
        for byte in hello.prefix(hello.count - 1) {
            slow.send(bytes: [byte])
            if slow.isClosed() { closedAfter = Posix.nowMicros() - start; break }
        }
        #expect(closedAfter != nil, "a handshake trickled over \(hello.count) s was still open")
        if let closedAfter { #expect(closedAfter >= 9_000_000 && closedAfter < 14_000_000, "closed after \(closedAfter) µs") }
        #expect(cluster.isAlive("helper1"))
    }

    /// A connection the helper keeps open, once it has counted out the connections of earlier tests (it does so as
    /// it notices them close), with the time it was opened.
    static func admittedConnection(port: Int) throws -> (RawPeer, UInt64)? {
        for _ in 0..<300 {  // up to 30 s on a loaded machine
            let start = Posix.nowMicros()
            let probe = try RawPeer(port: port, timeoutSeconds: 1)
            usleep(100_000)
            if !probe.isClosedNow() { return (probe, start) }
        }
        return nil
    }

    /// Before its hello, a peer can make the helper hold no more than a handshake frame: a stream of
    /// decompression bombs is refused from its first bytes, and the daemon's memory stays where it was.
    @Test func decompressionBombsBeforeTheHandshakeAreRefusedCheaply() throws {
        let cluster = try Self.cluster.get()
        guard let pid = cluster.pids["helper1"] else { Issue.record("no helper"); return }
        func residentKB() -> Int {
            let status = String(decoding: Posix.readFile("/proc/\(pid)/status") ?? [], as: UTF8.self)
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        _ = try Self.admittedConnection(port: cluster.helperPorts[0])
        let before = residentKB()
        let bomb = Zstd.compress([UInt8](repeating: 0, count: 256 << 20))
        for round in 0..<20 {
            // Small frames (under the handshake limit) of one bomb each, and large ones of many.
            let fields = round % 2 == 0 ? 1 : 200
            var writer = ByteWriter()
            writer.write(UInt32(0)); writer.write(MessageKind.blobs.rawValue)
            writer.write(UInt32(fields))
            for _ in 0..<fields { writer.write(String(repeating: "a", count: 64)); writer.write(UInt8(1)); writer.write(bomb) }
            var bytes = writer.bytes
            let length = UInt32(bytes.count - 4)
            for i in 0..<4 { bytes[i] = UInt8((length >> (8 * UInt32(i))) & 0xff) }
            let peer = try RawPeer(port: cluster.helperPorts[0], timeoutSeconds: 5)
            peer.send(bytes: bytes)
            #expect(peer.isClosed())
        }
        #expect(cluster.isAlive("helper1"))
        #expect(residentKB() - before < 64 << 10, "resident memory grew from \(before) kB to \(residentKB()) kB")
        #expect(bomb.count + 100 < Frame.handshakeMaximumSize)
        #expect(cluster.log("helper1").contains("unexpected blobs message, expected hello"), "\(cluster.log("helper1").suffix(2000))")
        #expect(cluster.log("helper1").contains("exceeds the limit of \(Frame.handshakeMaximumSize)"))
    }
}
