import Glibc
import Records
import SystemSupport
import Wire

/// Appends one JSON line per distributed job to `<state>/jobs.jsonl`, so that `swlaunch ninjalog` can tell how
/// much of a compile step was spent waiting for a helper and how much working.
///
/// A line is a ``JournalEntry``. The file is rotated to `jobs.jsonl.1` past ``limitBytes``.
actor JobJournal {
    let path: String
    let limitBytes: Int

    init(path: String, limitBytes: Int = 16 << 20) {
        self.path = path
        self.limitBytes = limitBytes
    }

    func record(host: String, outputs: [String], timings: JobTimings) {
        let line = RecordJSON.encode(JournalEntry(endUs: Posix.nowMicros(), host: host, outputs: outputs, queueUs: timings.queue,
                                                  preprocessUs: timings.preprocess, transferUs: timings.transfer,
                                                  compileUs: timings.compile)) + "\n"
        var info = stat()
        if stat(path, &info) == 0, Int(info.st_size) > limitBytes { rename(path, path + ".1") }
        Posix.append(to: path, Array(line.utf8))
    }
}
