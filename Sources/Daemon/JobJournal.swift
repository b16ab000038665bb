import Glibc
import SystemSupport
import Wire

/// Appends one JSON line per distributed job to `<state>/jobs.jsonl`, so that `swlaunch ninjalog` can tell how
/// much of a compile step was spent waiting for a helper and how much working.
///
/// A line: `{"end_us":…,"host":"h1","outputs":["/abs/a.o"],"queue_us":…,"preprocess_us":…,"transfer_us":…,
/// "compile_us":…}`. The file is rotated to `jobs.jsonl.1` past ``limitBytes``.
actor JobJournal {
    let path: String
    let limitBytes: Int

    init(path: String, limitBytes: Int = 16 << 20) {
        self.path = path
        self.limitBytes = limitBytes
    }

    func record(host: String, outputs: [String], timings: JobTimings) {
        let line = JSON.object([
            ("end_us", String(Posix.nowMicros())), ("host", JSON.quote(host)),
            ("outputs", JSON.array(outputs.map(JSON.quote))),
            ("queue_us", String(timings.queue)), ("preprocess_us", String(timings.preprocess)),
            ("transfer_us", String(timings.transfer)), ("compile_us", String(timings.compile)),
        ]) + "\n"
        var info = stat()
        if stat(path, &info) == 0, Int(info.st_size) > limitBytes { rename(path, path + ".1") }
        Posix.append(to: path, Array(line.utf8))
    }
}
