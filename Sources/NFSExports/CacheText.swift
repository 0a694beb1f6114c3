/// The word encoding of the kernel's sunrpc cache channels: words separated
/// by one space; text words escape space, tab, newline and backslash as
/// `\ooo`; binary words are `\x` + lowercase hex.
public enum CacheText {
    public static func word(_ text: String) -> String {
        OctalEscape.escape(text) { byte in byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x5C }
    }

    public static func hexWord(_ bytes: [UInt8]) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        var out = "\\x"
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return out
    }
}

/// `\ooo` escaping of selected bytes, leaving every other byte (UTF-8
/// sequences included) as it is.
enum OctalEscape {
    static func escape(_ text: String, where needsEscape: (UInt8) -> Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 8)
        for byte in text.utf8 {
            if needsEscape(byte) {
                bytes.append(0x5C)
                bytes.append(0x30 + (byte >> 6))
                bytes.append(0x30 + (byte >> 3 & 7))
                bytes.append(0x30 + (byte & 7))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
