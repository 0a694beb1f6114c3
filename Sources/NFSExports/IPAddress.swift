/// An IPv4 or IPv6 address as a value, with the text forms the kernel's
/// auth.unix.ip channel and exports(5) use. Pure: no resolver involved.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    /// Network byte order, 16 bytes.
    case v6(high: UInt64, low: UInt64)

    /// Strict dotted quad: four decimal octets 0-255.
    public init?(ipv4 text: Substring) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        self = .v4(value)
    }

    /// RFC 4291 text: full, `::`-compressed, or with a trailing dotted quad.
    public init?(ipv6 text: Substring) {
        guard text.contains(":"), text.count <= 45 else { return nil }
        var groups: [UInt16] = []
        var gapAt: Int? = nil
        var rest = text[...]
        if rest.hasPrefix("::") {
            gapAt = 0
            rest = rest.dropFirst(2)
        } else if rest.hasPrefix(":") {
            return nil
        }
        while !rest.isEmpty {
            let end = rest.firstIndex(of: ":") ?? rest.endIndex
            let piece = rest[..<end]
            if piece.contains(".") {
                // Embedded IPv4 must be last.
                guard end == rest.endIndex, case .v4(let v4)? = IPAddress(ipv4: piece) else { return nil }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(v4 & 0xffff))
                rest = rest[end...]
                break
            }
            guard !piece.isEmpty, piece.count <= 4, let group = UInt16(piece, radix: 16) else { return nil }
            groups.append(group)
            rest = rest[end...]
            if rest.hasPrefix("::") {
                guard gapAt == nil else { return nil }
                gapAt = groups.count
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix(":") {
                rest = rest.dropFirst()
                guard !rest.isEmpty else { return nil }
            }
        }
        if let gapAt {
            guard groups.count <= 7 else { return nil }
            groups.insert(contentsOf: Array(repeating: 0, count: 8 - groups.count), at: gapAt)
        }
        guard groups.count == 8 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, group) in groups.enumerated() {
            if index < 4 { high = high << 16 | UInt64(group) } else { low = low << 16 | UInt64(group) }
        }
        self = .v6(high: high, low: low)
    }

    /// Either family.
    public init?(_ text: Substring) {
        if let v4 = IPAddress(ipv4: text) { self = v4 } else if let v6 = IPAddress(ipv6: text) { self = v6 } else { return nil }
    }

    public init?(_ text: String) { self.init(text[...]) }

    public var isIPv4: Bool { if case .v4 = self { true } else { false } }

    /// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as plain IPv4.
    public var unmapped: IPAddress {
        if case .v6(let high, let low) = self, high == 0, low >> 32 == 0xffff {
            return .v4(UInt32(truncatingIfNeeded: low))
        }
        return self
    }

    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    /// Dotted quad, or the kernel's uncompressed IPv6 form
    /// (2001:0db8:0000:0000:0000:0000:0000:0001).
    public var kernelText: String {
        switch self {
        case .v4: return description
        case .v6(let high, let low):
            return IPAddress.groups(high: high, low: low).map { group -> String in
                let hex = String(group, radix: 16)
                return String(repeating: "0", count: 4 - hex.count) + hex
            }.joined(separator: ":")
        }
    }

    /// Dotted quad or compressed IPv6 (RFC 5952).
    public var description: String {
        switch self {
        case .v4(let value):
            return "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
        case .v6(let high, let low):
            let groups = IPAddress.groups(high: high, low: low)
            // Longest run of two or more zero groups becomes "::".
            var bestStart = -1, bestLength = 0, runStart = -1
            for index in 0...8 {
                if index < 8 && groups[index] == 0 {
                    if runStart < 0 { runStart = index }
                } else if runStart >= 0 {
                    if index - runStart > bestLength { bestStart = runStart; bestLength = index - runStart }
                    runStart = -1
                }
            }
            func hex(_ range: Range<Int>) -> String {
                groups[range].map { String($0, radix: 16) }.joined(separator: ":")
            }
            if bestLength < 2 { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        }
    }

    /// The eight 16-bit groups of an IPv6 address.
    static func groups(high: UInt64, low: UInt64) -> [UInt16] {
        var groups: [UInt16] = []
        groups.reserveCapacity(8)
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: low >> UInt64(shift))) }
        return groups
    }

    /// True when the first `prefix` bits equal those of `network`.
    public func isIn(network: IPAddress, prefix: Int) -> Bool {
        switch (self.unmapped, network) {
        case (.v4(let a), .v4(let n)):
            guard prefix > 0 else { return true }
            let mask: UInt32 = prefix >= 32 ? .max : ~(UInt32.max >> UInt32(prefix))
            return a & mask == n & mask
        case (.v6(let ah, let al), .v6(let nh, let nl)):
            func masked(_ h: UInt64, _ l: UInt64) -> (UInt64, UInt64) {
                let hm: UInt64 = prefix >= 64 ? .max : (prefix <= 0 ? 0 : ~(UInt64.max >> UInt64(prefix)))
                let lm: UInt64 = prefix >= 128 ? .max : (prefix <= 64 ? 0 : ~(UInt64.max >> UInt64(prefix - 64)))
                return (h & hm, l & lm)
            }
            return masked(ah, al) == masked(nh, nl)
        default:
            return false
        }
    }
}
