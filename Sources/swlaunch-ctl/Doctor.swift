import ArgumentParser
import Config
import Foundation
import Records
import SystemSupport
import Toolchain
import Launch
import Wire

/// `swlaunch doctor`: explains in plain words why jobs are or are not being distributed.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the daemon, scheduler, helpers, sandboxes, compilers and configuration, and say what to fix.",
        discussion: """
            Checks, in order: the configuration files (every mistake with file and line), compilers on PATH, the \
            local daemon, its connection to the scheduler, the helpers that accept jobs, hosts that cannot \
            sandbox, whether this machine can sandbox jobs for others, and the jobs so far with their fallback \
            reasons. Each problem comes with what to do about it.

            EXIT STATUS
              0 when nothing keeps jobs from being distributed, 1 otherwise.
            """)

    final class Report {
        var failures = 0
        func ok(_ what: String, _ detail: String) { print("ok     \(what): \(detail)") }
        func warn(_ what: String, _ detail: String) { print("warn   \(what): \(detail)") }
        func fail(_ what: String, _ detail: String, fix: String) {
            failures += 1
            print("FAIL   \(what): \(detail)\n       fix: \(fix)")
        }
    }

    func run() throws {
        let report = Report()
        let cwd = Posix.currentDirectory() ?? "/"
        var socket = DaemonConnection.defaultSocketPath()
        var configuration: Configuration?
        do {
            let config = try Configuration.load(workingDirectory: cwd, environment: Posix.environment)
            configuration = config
            report.ok("configuration", config.files.isEmpty ? "no files, defaults only" : config.files.joined(separator: ", "))
            socket = config.string("daemon.socket") ?? socket
            if config.failsOnInfrastructureErrors {
                report.warn("fallback", "jobs.fallback = \"fail\" (\(config.settings["jobs.fallback"]!.source)): compiles fail instead of running locally when distribution fails")
            }
        } catch {
            for problem in error.errors {
                report.fail("configuration", problem.description, fix: "edit the file named, or run `swlaunch config --keys` for the valid keys")
            }
        }

        let locator = CompilerLocator()
        let compilers = compilerDriverNames.compactMap { name in locator.locate(name).map { "\(name) (\($0))" } }
        if compilers.isEmpty {
            report.fail("compilers", "no gcc, g++, cc, c++, clang or clang++ on PATH", fix: "install a compiler (apt-get install g++) or fix PATH")
        } else {
            report.ok("compilers", compilers.joined(separator: ", "))
        }
        if let configuration { checkStandIns(configuration, locator: locator, report: report) }

        let stats: StatsRecord
        do {
            stats = try query(.statsRequest(reset: false), socket: socket, as: StatsRecord.self)
            report.ok("daemon", "answering on \(socket)")
        } catch {
            report.fail("daemon", "no swlaunchd answering on \(socket) (\(error)); every compile runs locally",
                        fix: "start it: `swlaunchd --scheduler HOST:PORT` (or `systemctl start swlaunchd`), or point SWLAUNCH_SOCKET at its socket")
            finish(report)
            return
        }

        do {
            let status = try query(.statusRequest, socket: socket, as: StatusRecord.self)
            let hosts = status.hosts
            report.ok("scheduler", "connected; \(hosts.count) host(s) known")
            if status.security.hasPrefix("INSECURE") {
                report.warn("security", status.security + " (make a key with `swlaunch key generate FILE` and give it to every machine: --key-file or cluster.key_file)")
            } else {
                report.ok("security", status.security)
            }
            let helpers = hosts.filter(\.acceptsRemote)
            if helpers.isEmpty {
                report.fail("helpers", "no host accepts remote jobs, so nothing can be distributed",
                            fix: "start `swlaunchd --scheduler ...` without --no-remote on a faster machine")
            } else {
                report.ok("helpers", helpers.map { "\($0.name) (\($0.maxJobs) slots)" }.joined(separator: ", "))
            }
            for host in hosts where !host.acceptsRemote {
                let note = host.note
                if note.hasPrefix("cannot sandbox") {
                    report.fail("sandbox on \(host.name)", note, fix: "install bubblewrap there (apt-get install bubblewrap) and allow user namespaces")
                } else {
                    report.ok(host.name, "takes no remote jobs (\(note.isEmpty ? "by choice" : note))")
                }
            }
        } catch {
            report.fail("scheduler", "\(error)", fix: "start `swlaunch-scheduler` and give the daemon --scheduler HOST:PORT (or scheduler.address in its config)")
        }

        // The daemon's own probe, with its sandbox's flags: doctor says "works" only where swlaunchd would take jobs.
        switch Bubblewrap.unavailableReason() {
        case nil: report.ok("sandbox here", "bubblewrap works")
        case let reason? where Posix.isExecutableFile(Bubblewrap.defaultPath):
            report.warn("sandbox here", "\(reason) (with the sandbox's flags: \(Bubblewrap.isolation.joined(separator: " "))); this machine cannot help others")
        case let reason?:
            report.warn("sandbox here", "\(reason); this machine cannot compile for others (apt-get install bubblewrap)")
        }

        let remote = stats.remote, local = stats.local, fallback = stats.fallback
        let reasons = stats.fallbackReasons.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }
        let summary = "\(remote) remote, \(local) local, \(fallback) fallback" + (reasons.isEmpty ? "" : " (" + reasons.joined(separator: ", ") + ")")
        if fallback > 0, fallback >= remote { report.warn("jobs so far", summary) } else { report.ok("jobs so far", summary) }
        finish(report)
    }

    /// Each `[toolchains]` environment whose compiler stands in for another (a Pi's g++): made for this machine's
    /// compiler as it is now, and whether the two package revisions differ.
    func checkStandIns(_ config: Configuration, locator: CompilerLocator, report: Report) {
        for key in config.settings.keys.sorted() where key.hasPrefix("toolchains.") {
            let name = String(key.dropFirst("toolchains.".count))
            for (platform, path) in config.toolchains(for: name).sorted(by: { $0.key < $1.key }) {
                let what = "toolchain \(name) on \(platform)"
                let manifest: EnvironmentManifest
                do { manifest = try EnvironmentArchive.manifest(of: path) } catch {
                    report.fail(what, "\(error)", fix: "make it again with `swlaunch env create`")
                    continue
                }
                guard let standIn = manifest.compiler(for: name) else {
                    report.fail(what, "\(path) has no compiler for \(name) (it has \(manifest.compilers.joined(separator: ", ")))",
                                fix: "name the right archive in [toolchains]")
                    continue
                }
                guard (standIn as NSString).lastPathComponent != name else {
                    report.ok(what, "\(path) runs \(standIn)")
                    continue
                }
                let fix = "make it again on this machine: `swlaunch env create --cxx \(standIn) --stand-in-for \(name) --platform \(platform) -o \(path)`"
                guard let record = manifest.standIn(for: name) else {
                    report.fail(what, "\(standIn) would stand in for \(name), but \(path) was made without --stand-in-for, so nothing says they compile alike", fix: fix)
                    continue
                }
                guard let client = locator.locate(name) else {
                    report.warn(what, "\(name) is not on PATH here")
                    continue
                }
                let identity: CompilerIdentity
                do { identity = try CompilerIdentity.probe(client) } catch {
                    report.fail(what, "\(error)", fix: "check that \(client) runs")
                    continue
                }
                let differences = record.identity.differences(from: identity)
                if !differences.isEmpty {
                    report.fail(what, "\(standIn) was made to stand in for \(record.identity.summary), but \(client) is now \(identity.summary): "
                                + differences.joined(separator: "; ") + "; its jobs compile locally", fix: fix)
                } else if record.standInPackageVersion != identity.packageVersion {
                    report.ok(what, "\(standIn) stands in for \(client), gcc \(identity.version) for \(identity.target) both; package revisions differ "
                              + "(\(record.standInPackageVersion ?? "none") against \(identity.packageVersion ?? "none")): objects differ only in .comment")
                } else {
                    report.ok(what, "\(standIn) stands in for \(client) (\(identity.summary) both)")
                }
            }
        }
    }

    func finish(_ report: Report) {
        if report.failures > 0 {
            print("\(report.failures) problem(s) keep jobs from being distributed.")
            Foundation.exit(1)
        }
        print("No problems found.")
    }

    func query<Record: Decodable>(_ message: Message, socket: String, as: Record.Type) throws -> Record {
        let connection = try DaemonConnection(path: socket, role: .tool, timeoutSeconds: 10)
        try connection.send(message)
        switch try connection.receive() {
        case let .stats(json), let .status(json):
            return try RecordJSON.decode(Record.self, from: Array(json.utf8))
        case let .error(text):
            throw ValidationError(text)
        case let other:
            throw ValidationError("unexpected reply \(other.kind)")
        }
    }
}
