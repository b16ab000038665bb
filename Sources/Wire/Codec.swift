extension ByteWriter {
    /// Writes bytes zstd-compressed; small blobs are stored as they are.
    mutating func writeCompressed(_ value: [UInt8]) {
        if value.count < 64 || !compresses {
            write(UInt8(0))
            write(value)
        } else {
            write(UInt8(1))
            write(Zstd.compress(value))
        }
    }
}

extension ByteReader {
    mutating func readCompressed() throws(DecodeError) -> [UInt8] {
        switch try readUInt8() {
        case 0:
            let bytes = try readBytes()
            decompressionBudget -= bytes.count
            return bytes
        case 1:
            let bytes = try Zstd.decompress(try readBytes(), limit: decompressionBudget)
            decompressionBudget -= bytes.count
            return bytes
        case let other: throw .badValue("compression tag \(other)")
        }
    }
}

extension Message {
    func encodePayload(into w: inout ByteWriter) {
        switch self {
        case let .hello(h):
            w.write(h.magic); w.write(h.version); w.write(h.role.rawValue); w.write(h.name)
            w.write(h.authScheme); w.write(h.authToken)
        case let .helloAck(a):
            w.write(a.version); w.write(a.name)
        case let .error(text), let .acquireLocal(text), let .runLocally(text), let .scanNeeded(text), let .stats(text), let .status(text),
             let .event(text), let .history(text):
            w.write(text)
        case .keepAlive, .granted, .statusRequest, .subscribe:
            break
        case let .submit(j):
            w.write(j.compiler); w.write(j.arguments); w.write(j.workingDirectory); w.write(j.environment)
            w.write(j.inputs); w.write(j.directories); w.write(j.outputs); w.write(j.preprocessMicros); w.write(j.environments); w.write(j.language)
            w.write(j.source)
        case let .result(r):
            w.write(r.exitStatus); w.writeCompressed(r.stdout); w.writeCompressed(r.stderr)
            w.write(UInt32(r.outputs.count))
            for o in r.outputs { w.write(o.path); w.writeCompressed(o.contents) }
            w.write(r.host)
            w.write(r.timings.queue); w.write(r.timings.preprocess); w.write(r.timings.transfer); w.write(r.timings.compile)
        case let .statsRequest(reset):
            w.write(reset)
        case let .register(h):
            w.write(h.name); w.write(h.address); w.write(h.port); w.write(h.maxJobs); w.write(h.platform)
            w.write(h.acceptsRemote); w.write(h.toolchains); w.write(h.note); w.write(h.id)
            w.write(h.cores)
        case let .heartbeat(running, load, toolchains):
            w.write(running); w.write(load); w.write(toolchains)
        case let .hostRequest(r):
            w.write(r.id); w.write(r.choices.map(\.platform)); w.write(r.choices.map(\.toolchain)); w.write(r.exclude)
        case let .hostGrant(g):
            w.write(g.id); w.write(g.name); w.write(g.address); w.write(g.port); w.write(g.choice.platform); w.write(g.choice.toolchain)
            w.write(g.speed)
        case let .noHost(id, reason):
            w.write(id); w.write(reason)
        case let .jobDone(r):
            w.write(r.id); w.write(r.outcome.rawValue); w.write(r.host); w.write(r.compileMicros); w.write(r.inputBytes)
            w.write(r.source); w.write(r.reason)
            w.write(r.timings.queue); w.write(r.timings.preprocess); w.write(r.timings.transfer); w.write(r.timings.compile)
            w.write(r.bytesOut); w.write(r.bytesIn)
        case let .jobStarted(id, host, source):
            w.write(id); w.write(host); w.write(source)
        case let .giveBack(host, toolchains):
            w.write(host); w.write(toolchains)
        case let .historyRequest(seconds):
            w.write(seconds)
        case let .compile(j):
            w.write(j.toolchain); w.write(j.compiler); w.write(j.arguments); w.write(j.workingDirectory)
            w.write(j.environment)
            w.write(UInt32(j.files.count))
            for f in j.files { w.write(f.path); w.write(f.hash); w.write(f.executable) }
            w.write(UInt32(j.symlinks.count))
            for s in j.symlinks { w.write(s.path); w.write(s.target) }
            w.write(j.directories); w.write(j.outputs); w.write(j.inputBytes)
        case let .needBlobs(hashes):
            w.write(hashes)
        case let .needEnvironment(id):
            w.write(id)
        case let .environment(id, archive):
            w.write(id); w.write(archive)
        case let .jobFailed(failure):
            w.write(failure.failureClass.rawValue); w.write(failure.code); w.write(failure.reason)
        case let .blobs(blobs):
            w.write(UInt32(blobs.count))
            for b in blobs { w.write(b.hash); w.writeCompressed(b.contents) }
        }
    }

    static func decode(kind: MessageKind, from r: inout ByteReader) throws(DecodeError) -> Message {
        switch kind {
        case .hello:
            let magic = try r.readBytes()
            guard magic == protocolMagic else { throw .badValue("not a swlaunch peer (bad magic)") }
            let version = try r.readUInt32()
            guard let role = PeerRole(rawValue: try r.readUInt8()) else { throw .badValue("unknown peer role") }
            var hello = Hello(role: role, name: try r.readString())
            hello.version = version
            hello.authScheme = try r.readString()
            hello.authToken = try r.readBytes()
            return .hello(hello)
        case .helloAck:
            return .helloAck(HelloAck(version: try r.readUInt32(), name: try r.readString()))
        case .error: return .error(try r.readString())
        case .keepAlive: return .keepAlive
        case .acquireLocal: return .acquireLocal(reason: try r.readString())
        case .granted: return .granted
        case .runLocally: return .runLocally(reason: try r.readString())
        case .scanNeeded: return .scanNeeded(reason: try r.readString())
        case .stats: return .stats(json: try r.readString())
        case .status: return .status(json: try r.readString())
        case .statusRequest: return .statusRequest
        case .submit:
            return .submit(JobRequest(
                compiler: try r.readString(), arguments: try r.readStrings(), workingDirectory: try r.readString(),
                environment: try r.readStrings(), inputs: try r.readStrings(), directories: try r.readStrings(),
                outputs: try r.readStrings(), preprocessMicros: try r.readUInt64(), environments: try r.readStrings(),
                language: try r.readString(), source: try r.readString()))
        case .result:
            let status = try r.readInt32()
            let stdout = try r.readCompressed()
            let stderr = try r.readCompressed()
            var outputs: [OutputFile] = []
            for _ in 0..<(try r.readCount("output", minimumItemSize: 9)) {
                outputs.append(OutputFile(path: try r.readString(), contents: try r.readCompressed()))
            }
            let host = try r.readString()
            let timings = JobTimings(queue: try r.readUInt64(), preprocess: try r.readUInt64(),
                                     transfer: try r.readUInt64(), compile: try r.readUInt64())
            return .result(JobResult(exitStatus: status, stdout: stdout, stderr: stderr, outputs: outputs, host: host, timings: timings))
        case .statsRequest: return .statsRequest(reset: try r.readBool())
        case .register:
            return .register(HostInfo(
                name: try r.readString(), address: try r.readString(), port: try r.readUInt32(),
                maxJobs: try r.readUInt32(), platform: try r.readString(), acceptsRemote: try r.readBool(),
                toolchains: try r.readStrings(), note: try r.readString(), id: try r.readString(), cores: try r.readUInt32()))
        case .heartbeat: return .heartbeat(running: try r.readUInt32(), load: try r.readDouble(), toolchains: try r.readStrings())
        case .hostRequest:
            let id = try r.readUInt64(), platforms = try r.readStrings(), toolchains = try r.readStrings()
            guard platforms.count == toolchains.count else { throw DecodeError.badValue("host request: \(platforms.count) platforms, \(toolchains.count) toolchains") }
            return .hostRequest(HostRequest(id: id, choices: zip(platforms, toolchains).map { ToolchainChoice(platform: $0, toolchain: $1) },
                                            exclude: try r.readStrings()))
        case .hostGrant:
            return .hostGrant(HostGrant(id: try r.readUInt64(), name: try r.readString(), address: try r.readString(), port: try r.readUInt32(),
                                        choice: ToolchainChoice(platform: try r.readString(), toolchain: try r.readString()),
                                        speed: try r.readDouble()))
        case .noHost: return .noHost(id: try r.readUInt64(), reason: try r.readString())
        case .jobDone:
            let id = try r.readUInt64()
            guard let outcome = JobOutcome(rawValue: try r.readUInt8()) else { throw DecodeError.badValue("unknown job outcome") }
            return .jobDone(JobReport(id: id, outcome: outcome, host: try r.readString(), compileMicros: try r.readUInt64(),
                                      inputBytes: try r.readUInt64(), source: try r.readString(), reason: try r.readString(),
                                      timings: JobTimings(queue: try r.readUInt64(), preprocess: try r.readUInt64(),
                                                          transfer: try r.readUInt64(), compile: try r.readUInt64()),
                                      bytesOut: try r.readUInt64(), bytesIn: try r.readUInt64()))
        case .jobStarted: return .jobStarted(id: try r.readUInt64(), host: try r.readString(), source: try r.readString())
        case .giveBack: return .giveBack(host: try r.readString(), toolchains: try r.readStrings())
        case .subscribe: return .subscribe
        case .event: return .event(json: try r.readString())
        case .historyRequest: return .historyRequest(seconds: try r.readUInt64())
        case .history: return .history(json: try r.readString())
        case .compile:
            let toolchain = try r.readString(), compiler = try r.readString(), arguments = try r.readStrings()
            let cwd = try r.readString(), environment = try r.readStrings()
            var files: [FileEntry] = []
            for _ in 0..<(try r.readCount("file", minimumItemSize: 9)) {
                files.append(FileEntry(path: try r.readString(), hash: try r.readString(), executable: try r.readBool()))
            }
            var links: [SymlinkEntry] = []
            for _ in 0..<(try r.readCount("symlink", minimumItemSize: 8)) {
                links.append(SymlinkEntry(path: try r.readString(), target: try r.readString()))
            }
            return .compile(RemoteJob(toolchain: toolchain, compiler: compiler, arguments: arguments, workingDirectory: cwd,
                                      environment: environment, files: files, symlinks: links,
                                      directories: try r.readStrings(), outputs: try r.readStrings(), inputBytes: try r.readUInt64()))
        case .needBlobs: return .needBlobs(try r.readStrings())
        case .needEnvironment: return .needEnvironment(id: try r.readString())
        case .environment: return .environment(id: try r.readString(), archive: try r.readBytes())
        case .jobFailed:
            guard let failureClass = FailureClass(rawValue: try r.readUInt8()) else { throw DecodeError.badValue("unknown failure class") }
            return .jobFailed(JobFailure(failureClass, try r.readString(), try r.readString()))
        case .blobs:
            var blobs: [Blob] = []
            for _ in 0..<(try r.readCount("blob", minimumItemSize: 9)) {
                blobs.append(Blob(hash: try r.readString(), contents: try r.readCompressed()))
            }
            return .blobs(blobs)
        }
    }
}
