import Foundation
import Records
import Testing

/// The records' JSON fields, written out here by hand, and the fields docs/cli.md lists: a field renamed, added or
/// dropped in the code without the other two fails here.
@Suite struct RecordsTests {
    static let docs: String = {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return (try? String(contentsOf: repo.appendingPathComponent("docs/cli.md"), encoding: .utf8)) ?? ""
    }()

    /// The backticked snake_case words of the docs/cli.md bullet that names `marker`.
    static func documentedFields(_ marker: String) -> Set<String> {
        let bullets = docs.components(separatedBy: "\n- ")
        guard let bullet = bullets.first(where: { $0.contains(marker) }) else { return [] }
        let parts = bullet.components(separatedBy: "`")
        return Set(stride(from: 1, to: parts.count, by: 2).map { parts[$0] }.filter { word in
            !word.isEmpty && word.allSatisfy { $0.isLowercase || $0 == "_" }
        })
    }

    @Test func statsFields() throws {
        let expected = ["remote", "local", "fallback", "served", "helper_failures", "local_reasons", "fallback_reasons",
                        "remote_hosts", "helper_failure_reasons", "remote_timings_us", "input_scans", "compiler_scan_reasons",
                        "cache_hits", "helper_connections", "moved"]
        #expect(StatsRecord.fieldNames == expected)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(RecordJSON.encode(StatsRecord()).utf8)) as? [String: Any])
        #expect(Set(object.keys) == Set(expected))
        #expect(Set((object["remote_timings_us"] as? [String: Any] ?? [:]).keys) == ["queue", "preprocess", "transfer", "compile"])
        // With the keys of input_scans and a reason of compiler_scan_reasons.
        #expect(Self.documentedFields("`StatsRecord`") == Set(expected + ["queue", "preprocess", "transfer", "compile", "daemon", "warm", "compiler", "clang"]))
    }

    @Test func statusFields() throws {
        let host = ["name", "id", "address", "port", "max_jobs", "cores", "running", "load", "speed", "jobs_done", "accepts_remote",
                    "platform", "note", "avoided_for_s"]
        #expect(StatusRecord.fieldNames == ["security", "hosts"])
        #expect(StatusRecord.Host.fieldNames == host)
        let record = StatusRecord(security: "s", hosts: [.init(name: "h", id: "i", address: "a", port: 1, maxJobs: 2, cores: 1, running: 0, load: 0.5,
                                                               speed: nil, jobsDone: 3, acceptsRemote: true, platform: "p", note: "",
                                                               avoidedForS: 0)])
        let text = RecordJSON.encode(record)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let first = try #require((object["hosts"] as? [[String: Any]])?.first)
        // Every field is present, speed as null until measured.
        #expect(Set(first.keys) == Set(host) && first["speed"] is NSNull)
        #expect(try RecordJSON.decode(StatusRecord.self, from: Array(text.utf8)) == record)
        #expect(Self.documentedFields("`StatusRecord`") == Set(["security", "hosts"] + host))
    }

    @Test func journalFields() throws {
        let fields = ["end_us", "host", "outputs", "queue_us", "preprocess_us", "transfer_us", "compile_us"]
        #expect(JournalEntry.fieldNames == fields)
        let entry = JournalEntry(endUs: 1, host: "h", outputs: ["/a.o"], queueUs: 2, preprocessUs: 3, transferUs: 4, compileUs: 5)
        let line = RecordJSON.encode(entry)
        #expect(!line.contains("\n") && line.contains("\"/a.o\""))
        #expect(try RecordJSON.decode(JournalEntry.self, from: Array(line.utf8)) == entry)
        #expect(Self.documentedFields("`JournalEntry`") == Set(fields))
    }

    @Test func wrapRecordFields() throws {
        let fields = ["tool", "jobs", "workers", "reason", "time"]
        #expect(WrapRecord.fieldNames == fields)
        let record = WrapRecord(tool: "colcon", jobs: 6, workers: 2, reason: "-j6: 4 free remote slots", time: 1.5)
        #expect(try RecordJSON.decode(WrapRecord.self, from: Array(RecordJSON.encode(record).utf8)) == record)
        #expect(Self.documentedFields("`WrapRecord`") == Set(fields))
    }

    @Test func monitorRecordFields() throws {
        let job = ["key", "client", "host", "source", "outcome", "reason", "granted", "started", "finished", "queue_us",
                   "preprocess_us", "transfer_us", "compile_us", "bytes_out", "bytes_in"]
        #expect(JobEvent.fieldNames == job)
        #expect(Self.documentedFields("(`JobEvent`)") == Set(job + ["running"]))
        #expect(ClusterEvent.fieldNames == ["kind", "time", "hosts", "jobs"])
        #expect(Self.documentedFields("(`ClusterEvent`)").isSuperset(of: ClusterEvent.fieldNames))
        let event = ClusterEvent(kind: .jobFinished, time: 5, jobs: [JobEvent(key: "c#1", client: "c", host: "h", outcome: "remote", granted: 1)])
        let text = RecordJSON.encode(event)
        #expect(text.contains("\"kind\":\"job_finished\"") && !text.contains("\n"))
        #expect(try RecordJSON.decode(ClusterEvent.self, from: Array(text.utf8)) == event)
        let history = ["since", "seconds", "jobs", "outcomes", "fallback_reasons", "hosts", "clients", "timings_us", "bytes_out",
                       "bytes_in", "oldest"]
        #expect(HistoryRecord.fieldNames == history)
        let documented = Self.documentedFields("(`HistoryRecord`)")
        #expect(documented.isSuperset(of: history + ["host", "jobs", "compile_us", "speed"]), "\(Set(history).subtracting(documented))")
    }

    @Test func aRecordThatDoesNotFitNamesItsType() {
        #expect { try RecordJSON.decode(StatsRecord.self, from: Array(#"{"remote": "many"}"#.utf8)) } throws: { error in
            "\(error)".hasPrefix("not a valid StatsRecord")
        }
    }
}
