/// Just enough XDR (RFC 4506) for MOUNT's results: big-endian 4-byte units,
/// variable data as length + bytes + zero padding to a 4-byte boundary,
/// optional data (linked lists) as a boolean before each element.
struct XDREncoder {
    private(set) var bytes: [UInt8] = []

    mutating func uint32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    mutating func int32(_ value: Int32) { uint32(UInt32(bitPattern: value)) }

    mutating func bool(_ value: Bool) { uint32(value ? 1 : 0) }

    /// opaque[n]: the bytes and padding, no length.
    mutating func fixedOpaque(_ data: some Collection<UInt8>) {
        bytes.append(contentsOf: data)
        pad(data.count)
    }

    /// opaque<> and string<>: length, bytes, padding.
    mutating func variableOpaque(_ data: some Collection<UInt8>) {
        uint32(UInt32(data.count))
        fixedOpaque(data)
    }

    mutating func string(_ text: String) { variableOpaque(Array(text.utf8)) }

    private mutating func pad(_ count: Int) {
        let padding = (4 - count % 4) % 4
        bytes.append(contentsOf: repeatElement(0, count: padding))
    }
}

/// Why bytes are not the XDR that was expected.
struct XDRDecodingError: Error, Sendable, CustomStringConvertible {
    var offset: Int
    var reason: String
    var description: String { "malformed XDR at byte \(offset): \(reason)" }
}

struct XDRDecoder {
    let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func uint32() throws(XDRDecodingError) -> UInt32 {
        guard bytes.count - offset >= 4 else { throw XDRDecodingError(offset: offset, reason: "truncated") }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16
            | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    mutating func int32() throws(XDRDecodingError) -> Int32 { Int32(bitPattern: try uint32()) }

    mutating func bool() throws(XDRDecodingError) -> Bool {
        switch try uint32() {
        case 0: return false
        case 1: return true
        case let other: throw XDRDecodingError(offset: offset - 4, reason: "boolean \(other)")
        }
    }

    mutating func fixedOpaque(count: Int) throws(XDRDecodingError) -> [UInt8] {
        let padded = count + (4 - count % 4) % 4
        guard count >= 0, bytes.count - offset >= padded else {
            throw XDRDecodingError(offset: offset, reason: "\(count) bytes announced, \(bytes.count - offset) left")
        }
        defer { offset += padded }
        return Array(bytes[offset..<offset + count])
    }

    mutating func variableOpaque(maxLength: Int) throws(XDRDecodingError) -> [UInt8] {
        let length = try uint32()
        guard length <= maxLength else {
            throw XDRDecodingError(offset: offset - 4, reason: "length \(length) over the limit \(maxLength)")
        }
        return try fixedOpaque(count: Int(length))
    }

    mutating func string(maxLength: Int) throws(XDRDecodingError) -> String {
        let start = offset
        let data = try variableOpaque(maxLength: maxLength)
        guard let text = String(validating: data, as: UTF8.self) else {
            throw XDRDecodingError(offset: start, reason: "string is not UTF-8")
        }
        return text
    }
}
