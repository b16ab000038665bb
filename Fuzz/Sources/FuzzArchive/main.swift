import Foundation
import Toolchain

/// The environment archive unpacker: any bytes as a `.tar.zst`, unpacked into a fresh directory on tmpfs. It
/// refuses or unpacks; nothing may land outside the directory.
let scratch = "/dev/shm/swlaunch-fuzz-\(getpid())"
nonisolated(unsafe) var round = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    round += 1
    let base = scratch + "/\(round)"
    try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: base) }
    let archive = base + "/in.tar.zst"
    FileManager.default.createFile(atPath: archive, contents: Data(bytes: data, count: size))
    _ = try? EnvironmentArchive.unpack(archive, into: base + "/out")
    let left = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
    precondition(Set(left).isSubset(of: ["in.tar.zst", "out"]), "the unpacker wrote beside its directory: \(left)")
    return 0
}
