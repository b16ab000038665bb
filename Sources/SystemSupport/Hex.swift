/// Lowercase hexadecimal text of bytes (two digits a byte): content ids, nonces and MACs.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: text, as: UTF8.self)
}

/// `count` bytes from the system's random source, as lowercase hexadecimal (nonces, host ids).
public func randomHexString(bytes count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return hexString((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
}
