import NFSExports

/// Splits one cache channel line into its words, undoing the kernel's
/// encoding: `\ooo` octal escapes in text words, `\x<hex>` binary words.
public enum CacheWords {
    public enum Word: Sendable, Equatable {
        case text(String)
        case binary([UInt8])

        public var text: String? { if case .text(let value) = self { value } else { nil } }
        public var binary: [UInt8]? { if case .binary(let value) = self { value } else { nil } }
    }

    /// A line that is not what the kernel sends: NFSExports' Problem.
    public typealias Malformed = Problem

    public static func split(_ line: Substring) throws(Malformed) -> [Word] {
        var words: [Word] = []
        for raw in line.split(separator: " ", omittingEmptySubsequences: true) {
            words.append(try decode(raw))
        }
        return words
    }

    static func decode(_ raw: Substring) throws(Malformed) -> Word {
        let bytes = Array(raw.utf8)
        if bytes.count >= 2 && bytes[0] == 0x5C && bytes[1] == 0x78 {  // "\x"
            let hex = bytes[2...]
            guard hex.count % 2 == 0 else { throw Malformed("odd number of hex digits in \(raw)") }
            var out: [UInt8] = []
            out.reserveCapacity(hex.count / 2)
            var index = hex.startIndex
            while index < hex.endIndex {
                guard let high = hexValue(hex[index]), let low = hexValue(hex[index + 1]) else {
                    throw Malformed("bad hex digit in \(raw)")
                }
                out.append(high << 4 | low)
                index += 2
            }
            return .binary(out)
        }
        return .text(String(decoding: OctalEscape.decode(bytes), as: UTF8.self))
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x61...0x66: byte - 0x61 + 10
        case 0x41...0x46: byte - 0x41 + 10
        default: nil
        }
    }
}

/// `nfsd 192.168.1.5` / `nfsd 2001:0db8:...` / `nfsd vsock:5` on auth.unix.ip.
public struct AuthUnixIPRequest: Sendable, Equatable {
    public var serviceClass: String
    /// The address exactly as the kernel sent it (echoed in the reply).
    public var addressText: String
    public var client: ClientAddress

    public static func parse(_ line: Substring) throws(CacheWords.Malformed) -> AuthUnixIPRequest {
        let words = try CacheWords.split(line)
        guard words.count == 2, let serviceClass = words[0].text, let addressText = words[1].text else {
            throw CacheWords.Malformed("expected '<class> <address>'")
        }
        if addressText.hasPrefix(ClientSpec.vsockPrefix) {
            guard let cid = UInt32(addressText.dropFirst(ClientSpec.vsockPrefix.count)), cid <= ClientSpec.maxCID else {
                throw CacheWords.Malformed("bad vsock address \(addressText)")
            }
            return AuthUnixIPRequest(serviceClass: serviceClass, addressText: addressText, client: .vsock(cid))
        }
        guard let address = IPAddress(addressText) else {
            throw CacheWords.Malformed("bad address \(addressText)")
        }
        return AuthUnixIPRequest(serviceClass: serviceClass, addressText: addressText, client: .ip(address.unmapped))
    }
}

/// `<domain> <path>` on nfsd.export.
public struct ExportRequest: Sendable, Equatable {
    public var domain: String
    public var path: String

    public static func parse(_ line: Substring) throws(CacheWords.Malformed) -> ExportRequest {
        let words = try CacheWords.split(line)
        guard words.count == 2, let domain = words[0].text, let path = words[1].text, path.hasPrefix("/") else {
            throw CacheWords.Malformed("expected '<domain> <path>'")
        }
        return ExportRequest(domain: domain, path: path)
    }
}

/// `<domain> <fsidtype> \x<fsid>` on nfsd.fh.
public struct FileHandleRequest: Sendable, Equatable {
    public var domain: String
    public var fsidType: Int
    public var fsid: [UInt8]

    /// Byte length of each fsid type.
    public static let fsidLengths: [Int: Int] = [0: 8, 1: 4, 2: 12, 3: 8, 4: 8, 5: 8, 6: 16, 7: 24]

    public static func parse(_ line: Substring) throws(CacheWords.Malformed) -> FileHandleRequest {
        let words = try CacheWords.split(line)
        guard words.count == 3, let domain = words[0].text, let typeText = words[1].text, let type = Int(typeText),
              let fsid = words[2].binary
        else { throw CacheWords.Malformed("expected '<domain> <fsidtype> \\x<fsid>'") }
        guard let length = fsidLengths[type] else { throw CacheWords.Malformed("unknown fsid type \(type)") }
        guard fsid.count == length else {
            throw CacheWords.Malformed("fsid type \(type) needs \(length) bytes, got \(fsid.count)")
        }
        return FileHandleRequest(domain: domain, fsidType: type, fsid: fsid)
    }
}

/// `<uid>` on auth.unix.gid.
public struct GroupsRequest: Sendable, Equatable {
    public var uid: UInt32

    public static func parse(_ line: Substring) throws(CacheWords.Malformed) -> GroupsRequest {
        let words = try CacheWords.split(line)
        guard words.count == 1, let text = words[0].text, let uid = UInt32(text) else {
            throw CacheWords.Malformed("expected '<uid>'")
        }
        return GroupsRequest(uid: uid)
    }
}
