import CompilerArgs

/// The argument classifier and the helper's policy: arguments split at NUL bytes. A distributable compile must
/// name its source among the arguments.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let arguments = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    if case let .distribute(compile) = classify(arguments) {
        precondition(arguments.contains(compile.source), "source \(compile.source) not among \(arguments)")
    }
    _ = HelperPolicy.refusal(of: arguments, inEnvironment: { $0.hasPrefix("/usr/lib/gcc/") })
    _ = HelperPolicy.environment(arguments)
    return 0
}
