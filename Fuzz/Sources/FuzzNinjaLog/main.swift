import NinjaLog

/// The ninja log parser: any bytes parse into builds or fail with a reason.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? NinjaLogParser.parse(Array(UnsafeBufferPointer(start: data, count: size)), file: ".ninja_log")
    return 0
}
