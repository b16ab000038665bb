import Wire

/// The message decoder: a frame body (kind and payload) of any bytes. What decodes must encode, decode and
/// encode again to the same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    guard let message = try? Frame.decode(body: body, decompressionBudget: 16 << 20) else { return 0 }
    let encoded = Frame.encode(message)
    guard let length = try? Frame.length(header: encoded.prefix(4)), length == encoded.count - 4,
          let decoded = try? Frame.decode(body: Array(encoded.dropFirst(4))), Frame.encode(decoded) == encoded else {
        fatalError("a decoded \(message.kind) message does not survive encoding")
    }
    return 0
}
