import Foundation
import Records
import Testing
@testable import History

func scratchFile(_ name: String) -> String {
    let directory = NSTemporaryDirectory() + "swlaunch-history-" + UUID().uuidString.prefix(8)
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory + "/" + name
}

func finished(_ n: Int, time: Double, host: String = "h1", outcome: String = "remote", reason: String = "") -> JobEvent {
    JobEvent(key: "c#\(n)", client: "c", host: outcome == "local" ? "" : host, source: "src/file_\(n).cpp", outcome: outcome, reason: reason,
             granted: time - 1, finished: time, queueUs: 10, preprocessUs: 20, transferUs: 30, compileUs: 1000, bytesOut: 500, bytesIn: 100)
}

@Suite struct HistoryTests {
    @Test func aReopenedHistoryAnswersForTheMorningAndKeepsSpeeds() throws {
        let path = scratchFile("history.sqlite")
        let morning = 1_800_000_000.0
        do {
            let history = try JobHistory(path: path)
            try history.append((1...5).map { finished($0, time: morning + Double($0)) } + [finished(6, time: morning + 6, outcome: "local", reason: "no-helper")])
            try history.append([finished(7, time: morning + 7, host: "h2", outcome: "failed", reason: "deadline")])
            try history.saveSpeeds([.init(name: "h1", id: "abc", speed: 3.5, jobsDone: 5)], now: morning + 10)
        }
        let reopened = try JobHistory(path: path)
        let afternoon = morning + 6 * 3600
        let day = try reopened.summary(since: afternoon - 86_400, now: afternoon)
        #expect(day.jobs == 7 && day.outcomes == ["remote": 5, "local": 1, "failed": 1])
        #expect(day.fallbackReasons == ["no-helper": 1])
        #expect(day.hosts == [.init(host: "h1", jobs: 5, compileUs: 5000, speed: 3.5)])
        #expect(day.timingsUs.compile == 5000 && day.bytesOut == 2500 && day.clients == ["c": 7])
        #expect(try reopened.summary(since: afternoon - 3600, now: afternoon).jobs == 0)
        #expect(try reopened.speeds()["h1"] == .init(name: "h1", id: "abc", speed: 3.5, jobsDone: 5))
    }

    @Test func aMillionJobsStayUnderTheSizeBound() throws {
        let path = scratchFile("big.sqlite")
        let bound: Int64 = 8 << 20
        let history = try JobHistory(path: path, maximumBytes: bound)
        let start = 1_800_000_000.0
        var n = 0
        while n < 1_000_000 {
            try history.append((n..<n + 10_000).map { finished($0, time: start + Double($0) / 100) })
            n += 10_000
        }
        func size(_ file: String) -> Int64 { (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value ?? 0 }
        let total = size(path) + size(path + "-wal") + size(path + "-shm")
        #expect(total <= bound, "the history's files are \(total) bytes, over its bound of \(bound)")
        let kept = try history.summary(since: 0, now: start + 20_000)
        #expect(kept.jobs > 10_000, "the bound keeps the newest jobs, not none")
        #expect(kept.oldest > start, "the oldest jobs went first")
        let newest = try history.summary(since: start + 9_999, now: start + 20_000)
        #expect(newest.jobs == 100, "the last second's jobs are all there")
    }
}
