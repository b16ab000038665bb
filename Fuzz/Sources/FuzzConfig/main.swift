import Config

/// The configuration parser (the TOML subset of swlaunch.toml): any bytes parse or fail with a line.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? TOMLSubsetParser.parse(Array(UnsafeBufferPointer(start: data, count: size)), file: "swlaunch.toml")
    return 0
}
