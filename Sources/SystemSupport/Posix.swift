#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Thin, Foundation-free wrappers over the system calls the compile path needs.
public enum Posix {
    public static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    public static func currentDirectory() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    public static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        return access(path, X_OK) == 0
    }

    public static func fileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Bytes available to an unprivileged user on the file system holding `path`, or nil when it cannot be asked.
    public static func freeBytes(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// The first `count` bytes of a file (fewer when it is shorter), or nil when it cannot be read.
    public static func readPrefix(_ path: String, count: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, count) }
        return n < 0 ? nil : Array(bytes.prefix(n))
    }

    /// The names in the directory at `path` (without `.` and `..`), in the order the file system gives; nil when it
    /// cannot be opened.
    public static func directoryEntries(_ path: String) -> [String]? {
        guard let stream = opendir(path) else { return nil }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Reads a whole file, or returns nil when it cannot be opened or read.
    public static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readAll(fd)
    }

    /// Everything left to read from `fd`, read straight into the result (sized from `fstat`; a longer file is
    /// read on in blocks).
    public static func readAll(_ fd: Int32) -> [UInt8]? {
        var info = stat()
        let expected = fstat(fd, &info) == 0 && info.st_size > 0 ? Int(info.st_size) : 0
        var failed = false
        var ended = false
        // One byte more than expected, so a file of the expected size ends in this pass.
        var result = [UInt8](unsafeUninitializedCapacity: max(expected + 1, 4096)) { buffer, count in
            count = 0
            while count < buffer.count {
                let n = read(fd, buffer.baseAddress! + count, buffer.count - count)
                if n < 0 {
                    if errno == EINTR { continue }
                    failed = true
                    return
                }
                if n == 0 { ended = true; return }
                count += n
            }
        }
        if failed { return nil }
        if ended { return result }
        var block = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = block.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return result }
            result.append(contentsOf: block[0..<n])
        }
    }

    /// Writes all bytes to `fd`, retrying short writes.
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        transferAll(bytes) { write(fd, $0, $1) }
    }

    /// Sends all bytes on the socket `fd`, retrying short sends; a closed peer fails with `EPIPE` in `errno`
    /// instead of raising SIGPIPE, which would end the process. false with `errno` set on failure.
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        #if canImport(Darwin)
        transferAll(bytes) { write(fd, $0, $1) }
        #else
        transferAll(bytes) { send(fd, $0, $1, Int32(MSG_NOSIGNAL)) }
        #endif
    }

    /// Calls `transfer` (a `write` or a `send`) until all of `bytes` went, again after `EINTR`.
    private static func transferAll(_ bytes: [UInt8], _ transfer: (UnsafeRawPointer, Int) -> Int) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { transfer($0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    /// Appends bytes to a log file, creating it (0644) when missing. One `write` with O_APPEND, so lines from
    /// several processes do not interleave. Returns false when the file cannot be opened or written.
    @discardableResult
    public static func append(to path: String, _ bytes: [UInt8]) -> Bool {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return writeAll(fd, bytes)
    }

    /// Writes a file through a temporary name in the same directory and renames it into place,
    /// so that readers never see a partial file, whatever interrupts the write.
    public static func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) -> Int32? {
        let template = path + ".swlaunch-XXXXXX"
        var name = Array(template.utf8CString)
        let fd = name.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return errno }
        let tmp = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var ok = writeAll(fd, bytes)
        var failure = ok ? 0 : errno
        if ok, fchmod(fd, mode & ~currentUmask()) != 0 { ok = false; failure = errno }
        if close(fd) != 0, ok { ok = false; failure = errno }
        if ok, rename(tmp, path) != 0 { ok = false; failure = errno }
        if !ok { unlink(tmp); return failure }
        return nil
    }

    static func currentUmask() -> mode_t {
        let mask = umask(0o022)
        umask(mask)
        return mask
    }

    public static func removeFile(_ path: String) { unlink(path) }

    public static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Replaces this process with `path`, passing `arguments` (argv[0] included) and the current environment.
    /// Returns only on failure, with errno.
    public static func exec(_ path: String, _ arguments: [String]) -> Int32 {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        execv(path, &argv)
        return errno
    }

    /// Wall-clock time in seconds since the epoch.
    public static func wallSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Monotonic time in microseconds.
    public static func nowMicros() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    /// Now, on the clock the file system stamps change times with (which may lag the wall clock by a tick):
    /// writes `marker` and returns its change time in nanoseconds, or 0 when it cannot be written.
    public static func changeTimeNow(marker: String) -> Int64 {
        unlink(marker)
        let fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return 0 }
        return nanos(info.st_ctim)
    }

    public static func nanos(_ time: timespec) -> Int64 { Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec) }

    /// Closes the jobserver descriptors a parent make named in MAKEFLAGS (`--jobserver-auth=R,W`,
    /// `--jobserver-fds=R,W`) and drops MAKEFLAGS and MFLAGS, so that a daemon a recipe started neither holds the
    /// build's jobserver open nor passes it to the compiles it runs. Only the named descriptors are closed (the
    /// Swift runtime's own are left alone); make 4.4's `fifo:PATH` passes no descriptor. Returns those closed.
    @discardableResult
    public static func closeJobserverDescriptors() -> [Int32] {
        guard let flags = environment("MAKEFLAGS") else { return [] }
        var closed: [Int32] = []
        for word in flags.split(separator: " ") where word.hasPrefix("--jobserver-auth=") || word.hasPrefix("--jobserver-fds=") {
            let value = word[word.index(after: word.firstIndex(of: "=")!)...]
            for part in value.split(separator: ",") {
                if let fd = Int32(part), fd > 2, fcntl(fd, F_GETFD) != -1 {
                    close(fd)
                    closed.append(fd)
                }
            }
        }
        unsetenv("MAKEFLAGS")
        unsetenv("MFLAGS")
        return closed
    }
}
