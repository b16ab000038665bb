import Foundation
import Toolchain
import Wire

/// The environment archive unpacker: any bytes as a tar (zstd-compressed here, so that the fuzzer mutates the tar
/// itself), unpacked into a fresh directory on tmpfs. It refuses or unpacks; nothing may land outside the directory.
enum Scratch {
    /// Globals of main.swift are set by top-level code, which libFuzzer's main never runs: these are lazy.
    static let directory = "/dev/shm/swlaunch-fuzz-\(getpid())"
    nonisolated(unsafe) static var round = 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Scratch.round += 1
    let base = Scratch.directory + "/\(Scratch.round)"
    try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: base) }
    let archive = base + "/in.tar.zst"
    let tar = Array(UnsafeBufferPointer(start: data, count: size))
    FileManager.default.createFile(atPath: archive, contents: Data(Zstd.compress(tar)))
    _ = try? EnvironmentArchive.unpack(archive, into: base + "/out")
    let left = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
    precondition(Set(left).isSubset(of: ["in.tar.zst", "out"]), "the unpacker wrote beside its directory: \(left)")
    return 0
}
