import Foundation
import SystemSupport

/// What packing a toolchain needs from an ELF file, read without running it: its machine, its program
/// interpreter and the shared libraries it names. This is how an x86_64 cross compiler is packed on an ARM Pi,
/// where neither it nor `ldd` on it can run.
struct ELFFile: Equatable {
    /// `e_machine`: 62 x86_64, 183 aarch64, 40 arm.
    var machine: UInt16
    var interpreter: String?
    var needed: [String]
    /// DT_RUNPATH, else DT_RPATH, split at `:`.
    var runPath: [String]

    /// Parses a little-endian ELF file; nil when `bytes` is not one (or is cut short).
    init?(bytes: [UInt8]) {
        guard bytes.count >= 52, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46, bytes[5] == 1 else { return nil }
        let wide = bytes[4] == 2
        func integer(_ offset: Int, _ size: Int) -> Int? {
            guard offset >= 0, size <= 8, offset + size <= bytes.count else { return nil }
            var value: UInt64 = 0
            for i in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + i]) }
            return value > UInt64(Int.max) ? nil : Int(value)
        }
        func word(_ offset: Int) -> Int? { integer(offset, wide ? 8 : 4) }
        func string(at offset: Int) -> String? {
            guard offset >= 0, offset < bytes.count else { return nil }
            let end = bytes[offset...].firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[offset..<end], as: UTF8.self)
        }
        guard let machine = integer(18, 2), let headers = word(wide ? 32 : 28), let size = integer(wide ? 54 : 42, 2),
              let count = integer(wide ? 56 : 44, 2) else { return nil }
        self.machine = UInt16(machine)
        struct Segment { var type: Int, offset: Int, address: Int, size: Int }
        var segments: [Segment] = []
        for index in 0..<count {
            let at = headers + index * size
            let fields = wide ? (integer(at, 4), word(at + 8), word(at + 16), word(at + 32))
                              : (integer(at, 4), word(at + 4), word(at + 8), word(at + 16))
            guard let type = fields.0, let offset = fields.1, let address = fields.2, let fileSize = fields.3 else { return nil }
            segments.append(Segment(type: type, offset: offset, address: address, size: fileSize))
        }
        interpreter = segments.first { $0.type == 3 }.flatMap { string(at: $0.offset) }
        needed = []
        runPath = []
        guard let dynamic = segments.first(where: { $0.type == 2 }) else { return }
        var entries: [(tag: Int, value: Int)] = []
        let entrySize = wide ? 16 : 8
        var at = dynamic.offset
        while at + entrySize <= dynamic.offset + dynamic.size, let tag = word(at), let value = word(at + entrySize / 2), tag != 0 {
            entries.append((tag, value))
            at += entrySize
        }
        // DT_STRTAB is an address: the loadable segment holding it maps it to a file offset.
        guard let table = entries.first(where: { $0.tag == 5 })?.value,
              let load = segments.first(where: { $0.type == 1 && $0.address <= table && table < $0.address + $0.size }) else { return }
        let base = table - load.address + load.offset
        needed = entries.filter { $0.tag == 1 }.compactMap { string(at: base + $0.value) }
        let path = entries.first { $0.tag == 29 } ?? entries.first { $0.tag == 15 }
        runPath = path.flatMap { string(at: base + $0.value) }.map { $0.split(separator: ":").map(String.init) } ?? []
    }

    /// The multiarch library folders of Debian for a machine.
    static func libraryDirectories(machine: UInt16) -> [String] {
        let triplet: String
        switch machine {
        case 62: triplet = "x86_64-linux-gnu"
        case 183: triplet = "aarch64-linux-gnu"
        case 40: triplet = "arm-linux-gnueabihf"
        default: triplet = ""
        }
        let multiarch = triplet.isEmpty ? [] : ["/lib/" + triplet, "/usr/lib/" + triplet]
        return multiarch + (machine == 62 || machine == 183 ? ["/lib64", "/usr/lib64"] : []) + ["/lib", "/usr/lib"]
    }

    /// Every shared library `path` loads, and their libraries in turn, with its interpreter, found in the
    /// runpath and the machine's library folders (the way ld.so would, minus ld.so.conf's additions); inside
    /// `root` when given (paths in and out are as seen from it).
    static func sharedLibraries(of path: String, root: String = "") -> [String] {
        let resolver = FileResolver(root: root)
        func exists(_ candidate: String) -> Bool { (try? resolver.resolve(candidate)) != nil }
        var found: [String] = []
        var seen = Set<String>()
        var queue = [path]
        while let next = queue.popLast() {
            guard let physical = try? resolver.resolve(next).0, let bytes = Posix.readFile(root + physical),
                  let file = ELFFile(bytes: bytes) else { continue }
            let origin = String(next[..<(next.lastIndex(of: "/") ?? next.endIndex)])
            let directories = file.runPath.map { $0.replacingOccurrences(of: "$ORIGIN", with: origin) } + libraryDirectories(machine: file.machine)
            var libraries = file.interpreter.map { [$0] } ?? []
            for name in file.needed {
                if name.contains("/") { libraries.append(name); continue }
                if let hit = directories.lazy.map({ $0 + "/" + name }).first(where: exists) { libraries.append(hit) }
            }
            for library in libraries where seen.insert(library).inserted && exists(library) {
                found.append(library)
                queue.append(library)
            }
        }
        return found
    }

    /// The machine of the running program.
    static let hostMachine: UInt16? = machine(of: "/proc/self/exe")

    /// The `e_machine` of an ELF file, from its first bytes.
    static func machine(of path: String) -> UInt16? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 20)
        guard read(fd, &header, 20) == 20, header[0] == 0x7f, header[1] == 0x45, header[2] == 0x4c, header[3] == 0x46, header[5] == 1 else { return nil }
        return UInt16(header[18]) | UInt16(header[19]) << 8
    }
}

/// The machine an ELF file is for (`e_machine`: 62 x86_64, 183 aarch64, 40 arm), for tools that name a platform
/// from a program.
public enum ELFMachine {
    public static func of(_ path: String) -> UInt16? { ELFFile.machine(of: path) }
}
