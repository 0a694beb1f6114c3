/// The word encoding of the kernel's sunrpc cache channels: words separated
/// by one space; text words escape space, tab, newline and backslash as
/// `\ooo`; binary words are `\x` + lowercase hex.
public enum CacheText {
    public static func word(_ text: String) -> String {
        OctalEscape.escape(text) { byte in byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x5C }
    }

    /// A text word read back: its `\ooo` escapes undone (`OctalEscape.decode`).
    public static func text(ofWord word: Substring) -> String {
        let bytes = Array(word.utf8)
        guard bytes.contains(0x5C) else { return String(word) }
        return String(decoding: OctalEscape.decode(bytes), as: UTF8.self)
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
/// sequences included) as it is: the cache channels' words, etab paths,
/// /proc/self/mounts fields, exports(5) paths and the bridge's status file.
public enum OctalEscape {
    public static func escape(_ text: String, where needsEscape: (UInt8) -> Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count + 8)
        for byte in text.utf8 {
            if needsEscape(byte) {
                bytes += escaped(byte)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `\` and the byte's three octal digits.
    public static func escaped(_ byte: UInt8) -> [UInt8] {
        [0x5C, 0x30 + (byte >> 6), 0x30 + (byte >> 3 & 7), 0x30 + (byte & 7)]
    }

    /// The byte the escape starting at `index` stands for: `\` and three
    /// octal digits, the first 0 to 3. Anything else, `\4xx` to `\777`
    /// included, is no escape (nil): those values are no byte, and the
    /// kernel's and nfs-utils' qword_get leave them as they are too.
    public static func escapedByte(at index: Int, in bytes: [UInt8]) -> UInt8? {
        guard index >= 0, index + 3 < bytes.count, bytes[index] == 0x5C,
              let a = digit(bytes[index + 1]), a < 4,
              let b = digit(bytes[index + 2]), let c = digit(bytes[index + 3]) else { return nil }
        return a << 6 | b << 3 | c
    }

    /// `bytes` with every escape undone; a backslash that starts none
    /// stays a backslash.
    public static func decode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if let byte = escapedByte(at: index, in: bytes) {
                out.append(byte)
                index += 4
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    private static func digit(_ byte: UInt8) -> UInt8? { (0x30...0x37).contains(byte) ? byte - 0x30 : nil }
}
