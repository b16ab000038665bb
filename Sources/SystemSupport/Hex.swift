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

/// Whether `text` is a SHA-256 digest as content ids are written: 64 lowercase hexadecimal digits.
public func isSHA256Hex(_ text: some StringProtocol) -> Bool {
    text.utf8.count == 64 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
}

/// `count` bytes from the system's random source, as lowercase hexadecimal (nonces, host ids).
public func randomHexString(bytes count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return hexString((0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
}
