/// make's command line and MAKEFLAGS as the wrapper reads and rewrites them.
///
/// The job count is the user's own when the command line or MAKEFLAGS has `-j`/`--jobs`. A load limit
/// (`-l`/`--load-average`/`--max-load`) typed on the command line is kept; one inherited through MAKEFLAGS (a
/// parent build, colcon) is dropped: it stops make from starting jobs exactly when the client's own preprocessing
/// loads its cores, which leaves the cluster idle. The jobserver options a parent make passes
/// (`--jobserver-auth=...`, `--jobserver-fds=...`) are left alone: a sub-make joins its parent's jobserver.
public struct MakeInvocation: Sendable, Equatable {
    public var arguments: [String]
    public var makeflags: String?
    /// The user's `-j`, from the command line or MAKEFLAGS.
    public var userJobs: UserJobs?
    /// Whether a parent make's jobserver is in MAKEFLAGS (then the wrapper adds no `-j` of its own).
    public var joinsJobserver: Bool
    /// Load limits dropped from MAKEFLAGS.
    public var droppedLoadLimits: [String]

    public init(arguments: [String], makeflags: String?) {
        self.arguments = arguments
        userJobs = Self.jobs(in: arguments)
        var kept: [String] = [], dropped: [String] = []
        var flagsJobs: UserJobs?
        var joins = false
        if let makeflags {
            let words = Self.makeflagsWords(makeflags)
            var index = 0
            while index < words.count {
                let word = words[index]
                if word.hasPrefix("--jobserver-auth") || word.hasPrefix("--jobserver-fds") { joins = true }
                if let load = Self.loadLimit(words, at: index) {
                    dropped.append(words[index..<(index + load)].joined(separator: " "))
                    index += load
                    continue
                }
                if let jobs = Self.jobs(in: [word]) { flagsJobs = jobs }
                kept.append(word)
                index += 1
            }
            self.makeflags = kept.joined(separator: " ")
        } else {
            self.makeflags = nil
        }
        userJobs = userJobs ?? flagsJobs
        joinsJobserver = joins
        droppedLoadLimits = dropped
    }

    /// What the wrapper's line says of the dropped load limits (empty when none were).
    public var droppedNote: String {
        droppedLoadLimits.isEmpty ? "" : "; dropped the load limit \(droppedLoadLimits.joined(separator: ", ")) from MAKEFLAGS"
    }

    /// The command line with the chosen count added (unless the user gave one or a jobserver is joined).
    public func arguments(jobs: Int?) -> [String] {
        guard userJobs == nil, !joinsJobserver, let jobs else { return arguments }
        return ["-j\(jobs)"] + arguments
    }

    /// MAKEFLAGS splits on spaces; its first word may be single-letter flags without a dash (`kj8`, `-kj8`).
    static func makeflagsWords(_ flags: String) -> [String] {
        var words = flags.split(separator: " ").map(String.init)
        if let first = words.first, !first.hasPrefix("-"), !first.contains("=") { words[0] = "-" + first }
        return words
    }

    /// The user's `-j` in `arguments` (`-j8`, `-j 8`, `--jobs=8`, `--jobs 8`, `-kj8`, `-j`), the last one winning.
    static func jobs(in arguments: [String]) -> UserJobs? {
        var found: UserJobs?
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let next = index + 1 < arguments.count ? arguments[index + 1] : nil
            if argument == "--" { break }
            if argument == "--jobs" || argument.hasPrefix("--jobs=") {
                let value = argument == "--jobs" ? next.flatMap { Int($0) } : Int(argument.dropFirst(7))
                found = value.map(UserJobs.count) ?? .unlimited
                if argument == "--jobs", value != nil { index += 1 }
            } else if argument.hasPrefix("-"), !argument.hasPrefix("--"), let j = argument.firstIndex(of: "j"),
                      argument[argument.index(after: argument.startIndex)..<j].allSatisfy(Self.isFlagLetter) {
                let rest = argument[argument.index(after: j)...]
                if rest.isEmpty {
                    if let next, let n = Int(next) { found = .count(n); index += 1 } else { found = .unlimited }
                } else if let n = Int(rest) {
                    found = .count(n)
                }
            }
            index += 1
        }
        return found
    }

    /// The number of words a load limit takes at `index` (`-l4`, `-l 4`, `-l`, `--load-average=4`, `--max-load 4`).
    static func loadLimit(_ words: [String], at index: Int) -> Int? {
        let word = words[index]
        let next = index + 1 < words.count ? words[index + 1] : nil
        let takesNumber = next.map { Double($0) != nil } ?? false
        if word == "--load-average" || word == "--max-load" { return takesNumber ? 2 : 1 }
        if word.hasPrefix("--load-average=") || word.hasPrefix("--max-load=") { return 1 }
        if word == "-l" { return takesNumber ? 2 : 1 }
        if word.hasPrefix("-l"), Double(word.dropFirst(2)) != nil { return 1 }
        return nil
    }

    /// Single-letter make flags that take no value and may precede `j` in a cluster (`-kj8`).
    static func isFlagLetter(_ c: Character) -> Bool { "eiknqrsStwBL".contains(c) }
}
