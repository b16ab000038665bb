import SystemSupport
import Testing
@testable import Wire

let samples: [Message] = [
    .hello(Hello(role: .launcher, name: "pi")),
    .helloAck(HelloAck(name: "helper")),
    .error("nope"), .keepAlive, .acquireLocal(reason: "link"), .granted,
    .submit(JobRequest(compiler: "/usr/bin/gcc", arguments: ["-c", "a b.c"], workingDirectory: "/w", environment: ["LANG=C"],
                       inputs: ["a b.c", "/usr/include/stdio.h"], directories: ["inc"], outputs: ["a.o", "a.d"], preprocessMicros: 42,
                       environments: ["aarch64-linux=/p/envs/arm.tar.zst"], language: "c", source: "a b.c")),
    .result(JobResult(exitStatus: 1, stdout: [], stderr: Array(String(repeating: "warning: x\n", count: 50).utf8),
                      outputs: [OutputFile(path: "a.o", contents: [UInt8](repeating: 7, count: 5000))], host: "h",
                      timings: JobTimings(queue: 1, preprocess: 2, transfer: 3, compile: 4))),
    .runLocally(reason: "no-helper"), .scanNeeded(reason: "computed #include at a.h:3"), .statsRequest(reset: true), .stats(json: "{}"),
    .register(HostInfo(name: "h", address: "10.0.0.1", port: 8766, maxJobs: 8, platform: "x86_64-linux", acceptsRemote: true, toolchains: ["t"], note: "n", id: "0123abcd", cores: 4)),
    .heartbeat(running: 3, load: 1.5, toolchains: ["t"]),
    .hostRequest(HostRequest(id: 9, choices: [ToolchainChoice(platform: "x86_64-linux", toolchain: "t"), ToolchainChoice(platform: "aarch64-linux", toolchain: "u")], exclude: ["a"])),
    .hostGrant(HostGrant(id: 9, name: "h", address: "10.0.0.1", port: 8766, choice: ToolchainChoice(platform: "aarch64-linux", toolchain: "u"), speed: 1.25)),
    .noHost(id: 9, reason: "busy"),
    .jobDone(JobReport(host: "h", succeeded: false, compileMicros: 5, inputBytes: 6, jobFault: true)),
    .jobDone(JobReport(id: 7, outcome: .remote, host: "h", compileMicros: 5, inputBytes: 6, source: "src/a b.cpp", reason: "",
                       timings: JobTimings(queue: 1, preprocess: 2, transfer: 3, compile: 5), bytesOut: 1234, bytesIn: 567)),
    .jobDone(JobReport(outcome: .local, host: "", source: "a.c", reason: "no-helper")),
    .jobStarted(id: 7, host: "h", source: "src/a.cpp"),
    .giveBack(host: "h2", toolchains: ["t", "u"]),
    .jobDone(JobReport(id: 8, outcome: .moved, host: "h", source: "src/b.cpp", reason: "moved")),
    .subscribe, .event(json: "{\"kind\":\"hosts\"}"), .historyRequest(seconds: 3600), .history(json: "{}"),
    .statusRequest, .status(json: "{\"hosts\":[]}"),
    .compile(RemoteJob(toolchain: "t", compiler: "/usr/bin/gcc", arguments: ["-c"], workingDirectory: "/w", environment: [],
                       files: [FileEntry(path: "/w/a.c", hash: String(repeating: "a", count: 64), executable: false)],
                       symlinks: [SymlinkEntry(path: "/lib", target: "usr/lib")], directories: ["/w"], outputs: ["/w/a.o"],
                       inputBytes: 123_456)),
    .needBlobs(["abc"]),
    .blobs([Blob(hash: "abc", contents: Array("int main(){}".utf8))]),
    .needEnvironment(id: "e"),
    .environment(id: "e", archive: [0x28, 0xb5, 0x2f, 0xfd]),
    .jobFailed(JobFailure(.infrastructure, "limit", "helper1: job stopped: the compile ran longer than 600 s")),
]

@Test func everyKindHasASample() {
    #expect(Set(samples.map(\.kind)) == Set(MessageKind.allCases))
}

@Test(arguments: samples)
func roundTrip(_ message: Message) throws {
    let frame = Frame.encode(message)
    let length = try Frame.length(header: frame.prefix(4))
    #expect(length == frame.count - 4)
    #expect(try Frame.decode(body: Array(frame.dropFirst(4))) == message)
}

@Test(arguments: samples)
func everyTruncationIsRejected(_ message: Message) {
    let body = Array(Frame.encode(message).dropFirst(4))
    for cut in 0..<body.count {
        #expect(throws: FrameError.self) { try Frame.decode(body: Array(body.prefix(cut))) }
    }
}

@Test func oversizedUnknownAndTrailingFramesAreRejected() {
    #expect(throws: FrameError.self) { try Frame.length(header: [0xff, 0xff, 0xff, 0x7f]) }
    #expect(throws: FrameError.self) { try Frame.length(header: [0, 0, 0, 0]) }
    #expect(throws: FrameError.self) { try Frame.decode(body: [200]) }
    #expect(throws: FrameError.self) { try Frame.decode(body: Array(Frame.encode(.granted).dropFirst(4)) + [0]) }
    // A count claiming more items than the bytes could hold is refused before allocating.
    var w = ByteWriter()
    w.write(MessageKind.blobs.rawValue)
    w.write(UInt32.max)
    #expect(throws: FrameError.self) { try Frame.decode(body: w.bytes) }
}

@Test func helloWithWrongMagicIsRefused() {
    var w = ByteWriter()
    w.write(MessageKind.hello.rawValue)
    w.write(Array("HTTP".utf8))
    #expect(throws: FrameError.self) { try Frame.decode(body: w.bytes) }
}

/// On the launchers' Unix socket results travel as they are: no zstd on either side of a local hop.
@Test func aLocalHopSendsResultsUncompressed() throws {
    let object = [UInt8](repeating: 7, count: 100_000)
    let message = Message.result(JobResult(exitStatus: 0, stdout: [], stderr: Array(String(repeating: "note\n", count: 40).utf8),
                                           outputs: [OutputFile(path: "a.o", contents: object)], host: "h", timings: JobTimings()))
    let linked = Frame.encode(message), local = Frame.encode(message, compress: false)
    #expect(linked.count < 2_000 && local.count > 100_000)
    for frame in [linked, local] {
        #expect(try Frame.decode(body: Array(frame.dropFirst(Frame.headerSize))) == message)
    }
    #expect(FramePolicy.launcherServer.compressesOutgoing == false && FramePolicy.helperServer.compressesOutgoing)
}

@Test func corruptCompressedPayloadIsAnError() {
    var body = Array(Frame.encode(.blobs([Blob(hash: "h", contents: [UInt8](repeating: 1, count: 4096))])).dropFirst(4))
    body[body.count - 3] ^= 0xff
    #expect(throws: FrameError.self) { try Frame.decode(body: body) }
}

@Test func jsonQuoting() {
    #expect(JSON.quote("a\"b\\c\n\u{1}") == #""a\"b\\c\n\u0001""#)
}
