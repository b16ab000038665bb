import Foundation
import GRDB
import Records

/// The scheduler's job history and each host's measured speed, in one SQLite file (GRDB), kept across restarts
/// and under a size bound: when the live pages pass ``maximumBytes`` (checked every ``checkEvery`` jobs), the
/// oldest quarter of the jobs goes and their pages are reused.
///
/// Layout (docs/monitoring.md): table `jobs` (one row per finished job or remote attempt: `time`, `client`,
/// `host`, `source`, `outcome`, `reason`, the four timings in microseconds, `bytes_out`, `bytes_in`; indexed by
/// time), table `hosts` (`name` primary key, `id`, `speed`, `jobs_done`, `updated`).
public final class JobHistory: Sendable {
    public let path: String
    public let maximumBytes: Int64
    private let queue: DatabaseQueue
    let checkEvery = 1000

    /// Opens (creating) the history at `path`; the error names the file.
    public init(path: String, maximumBytes: Int64 = 64 << 20) throws(HistoryError) {
        self.path = path
        self.maximumBytes = maximumBytes
        do {
            if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
                try FileManager.default.createDirectory(atPath: String(path[..<slash]), withIntermediateDirectories: true)
            }
            var configuration = Configuration()
            configuration.label = "swlaunch-history"
            // Write-ahead log: readers (the dashboard, `swlaunch stats --since`) do not wait on the writer, and no
            // journal file is made and removed per write.
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA journal_mode = WAL") }
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS jobs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, client TEXT NOT NULL, host TEXT NOT NULL,
                        source TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
                        queue_us INTEGER NOT NULL, preprocess_us INTEGER NOT NULL, transfer_us INTEGER NOT NULL, compile_us INTEGER NOT NULL,
                        bytes_out INTEGER NOT NULL, bytes_in INTEGER NOT NULL);
                    CREATE INDEX IF NOT EXISTS jobs_time ON jobs(time);
                    CREATE TABLE IF NOT EXISTS hosts (
                        name TEXT PRIMARY KEY, id TEXT NOT NULL, speed REAL NOT NULL, jobs_done INTEGER NOT NULL, updated REAL NOT NULL);
                    """)
            }
        } catch {
            throw HistoryError(path: path, error)
        }
    }

    /// Appends finished jobs (their `finished` time is the row's time), then trims to the size bound.
    public func append(_ jobs: [JobEvent]) throws(HistoryError) {
        guard !jobs.isEmpty else { return }
        do {
            try queue.write { db in
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO jobs (time, client, host, source, outcome, reason, queue_us, preprocess_us, transfer_us, compile_us, bytes_out, bytes_in)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                for job in jobs {
                    try insert.execute(arguments: [job.finished, job.client, job.host, job.source, job.outcome, job.reason,
                                                   Int64(clamping: job.queueUs), Int64(clamping: job.preprocessUs),
                                                   Int64(clamping: job.transferUs), Int64(clamping: job.compileUs),
                                                   Int64(clamping: job.bytesOut), Int64(clamping: job.bytesIn)])
                }
                let last = db.lastInsertedRowID
                if last / Int64(checkEvery) != (last - Int64(jobs.count)) / Int64(checkEvery) { try trim(db) }
            }
            // The log goes back into the file after each batch, so the two together stay under the bound.
            try queue.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        } catch {
            throw HistoryError(path: path, error)
        }
    }

    /// The bytes of pages in use (the file's size less its free pages).
    public func usedBytes() throws(HistoryError) -> Int64 {
        do {
            return try queue.read { db in try Self.usedBytes(db) }
        } catch {
            throw HistoryError(path: path, error)
        }
    }

    static func usedBytes(_ db: Database) throws -> Int64 {
        let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        return (pages - free) * size
    }

    /// Drops the oldest quarter of the jobs while the used pages pass 85 % of the bound (the rest is headroom for
    /// the next ``checkEvery`` jobs and the index).
    private func trim(_ db: Database) throws {
        while try Self.usedBytes(db) > maximumBytes * 85 / 100 {
            guard let count = try Int64.fetchOne(db, sql: "SELECT count(*) FROM jobs"), count > 0 else { return }
            try db.execute(sql: "DELETE FROM jobs WHERE id <= (SELECT min(id) FROM jobs) + ?", arguments: [max(1, count / 4)])
        }
    }

    /// A host's measured speed and jobs done, kept for the next run.
    public struct HostSpeed: Sendable, Equatable {
        public var name: String, id: String, speed: Double, jobsDone: Int
        public init(name: String, id: String, speed: Double, jobsDone: Int) {
            self.name = name; self.id = id; self.speed = speed; self.jobsDone = jobsDone
        }
    }

    public func saveSpeeds(_ speeds: [HostSpeed], now: Double) throws(HistoryError) {
        guard !speeds.isEmpty else { return }
        do {
            try queue.write { db in
                for s in speeds {
                    try db.execute(sql: """
                        INSERT INTO hosts (name, id, speed, jobs_done, updated) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT(name) DO UPDATE SET id = excluded.id, speed = excluded.speed, jobs_done = excluded.jobs_done, updated = excluded.updated
                        """, arguments: [s.name, s.id, s.speed, s.jobsDone, now])
                }
            }
        } catch {
            throw HistoryError(path: path, error)
        }
    }

    public func speeds() throws(HistoryError) -> [String: HostSpeed] {
        do {
            return try queue.read { db in
                var result: [String: HostSpeed] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT name, id, speed, jobs_done FROM hosts") {
                    let s = HostSpeed(name: row["name"], id: row["id"], speed: row["speed"], jobsDone: row["jobs_done"])
                    result[s.name] = s
                }
                return result
            }
        } catch {
            throw HistoryError(path: path, error)
        }
    }

    /// What happened from `since` (seconds since the epoch) to `now`.
    public func summary(since: Double, now: Double) throws(HistoryError) -> HistoryRecord {
        do {
            return try queue.read { db in
                var record = HistoryRecord(since: since, seconds: now - since)
                record.oldest = try Double.fetchOne(db, sql: "SELECT min(time) FROM jobs") ?? 0
                for row in try Row.fetchAll(db, sql: "SELECT outcome, count(*) AS n FROM jobs WHERE time >= ? GROUP BY outcome", arguments: [since]) {
                    let n: Int = row["n"]
                    record.outcomes[row["outcome"]] = n
                    record.jobs += n
                }
                for row in try Row.fetchAll(db, sql: "SELECT reason, count(*) AS n FROM jobs WHERE time >= ? AND outcome = 'local' GROUP BY reason",
                                            arguments: [since]) {
                    record.fallbackReasons[row["reason"]] = row["n"]
                }
                for row in try Row.fetchAll(db, sql: "SELECT client, count(*) AS n FROM jobs WHERE time >= ? GROUP BY client", arguments: [since]) {
                    record.clients[row["client"]] = row["n"]
                }
                let speeds = try Row.fetchAll(db, sql: "SELECT name, speed FROM hosts").reduce(into: [String: Double]()) { $0[$1["name"]] = $1["speed"] }
                for row in try Row.fetchAll(db, sql: """
                    SELECT host, count(*) AS n, sum(compile_us) AS c FROM jobs WHERE time >= ? AND outcome = 'remote' GROUP BY host ORDER BY host
                    """, arguments: [since]) {
                    let host: String = row["host"]
                    record.hosts.append(.init(host: host, jobs: row["n"], compileUs: UInt64(max(0, row["c"] as Int64)), speed: speeds[host]))
                }
                if let row = try Row.fetchOne(db, sql: """
                    SELECT sum(queue_us) AS q, sum(preprocess_us) AS p, sum(transfer_us) AS t, sum(compile_us) AS c,
                           sum(bytes_out) AS o, sum(bytes_in) AS i FROM jobs WHERE time >= ? AND outcome = 'remote'
                    """, arguments: [since]) {
                    func value(_ column: String) -> UInt64 { UInt64(max(0, (row[column] as Int64?) ?? 0)) }
                    record.timingsUs.queue = value("q"); record.timingsUs.preprocess = value("p")
                    record.timingsUs.transfer = value("t"); record.timingsUs.compile = value("c")
                    record.bytesOut = value("o"); record.bytesIn = value("i")
                }
                return record
            }
        } catch {
            throw HistoryError(path: path, error)
        }
    }
}

/// The history file could not be opened, read or written.
public struct HistoryError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    init(path: String, _ error: any Error) {
        self.path = path
        // SQLite's extended code says which operation failed (10 is any I/O error; 10 + 256 * n says which).
        reason = (error as? DatabaseError).map { "\($0) (extended code \($0.extendedResultCode.rawValue))" } ?? "\(error)"
    }
    public var description: String { "job history \(path): \(reason)" }
}
