/// A vsock context identifier (u32). 0 hypervisor, 1 local, 2 host, 3+ guests.
public typealias VsockCID = UInt32

/// One exports(5) client specification, parsed.
public enum ClientSpec: Sendable, Hashable {
    /// A host name, matched by the addresses it resolves to or by name.
    case host(String)
    /// A single address written literally.
    case address(IPAddress)
    /// `a.b.c.d/len`, `a.b.c.d/m.a.s.k`, `v6/len`.
    case network(IPAddress, prefix: Int)
    /// `a.b.c.d/m.a.s.k` with a mask that is not a prefix (nfs-utils
    /// accepts these and compares address & mask).
    case maskedNetwork(address: UInt32, mask: UInt32)
    /// Host-name pattern with `*`, `?`, `[...]`.
    case wildcard(String)
    /// `@name`.
    case netgroup(String)
    /// `*` (or no client at all): every IPv4/IPv6 client, never a vsock one.
    case anonymous
    /// Legacy `gss/krb5`-style client.
    case gss(String)
    /// `vsock:N`.
    case vsock(VsockCID)
    /// `vsock:A-B`, inclusive.
    case vsockRange(VsockCID, VsockCID)
    /// `vsock:*`.
    case vsockAny

    /// nfs-utils' client classes; matching tries them in this order and the
    /// first class with a matching entry decides.
    public enum Kind: Int, Sendable, Comparable, CaseIterable {
        case host = 0, network, wildcard, netgroup, anonymous, gss
        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    public var kind: Kind {
        switch self {
        case .host, .address, .vsock: .host
        case .network, .maskedNetwork, .vsockRange: .network
        case .wildcard, .vsockAny: .wildcard
        case .netgroup: .netgroup
        case .anonymous: .anonymous
        case .gss: .gss
        }
    }

    public var isVsock: Bool {
        switch self {
        case .vsock, .vsockRange, .vsockAny: true
        default: false
        }
    }

    /// Why a client spec is unusable.
    public struct ParseError: Error, Sendable, Equatable {
        public var message: String
        public var hint: String?
        /// 0-based offset within the spec text where the problem starts.
        public var offset: Int
    }

    public static let vsockPrefix = "vsock:"
    /// VMADDR_CID_ANY; not a usable CID.
    public static let maxCID: VsockCID = 0xFFFF_FFFE
    /// The lowest guest CID: 0 is the hypervisor, 1 the local loopback
    /// transport, 2 the host.
    public static let firstGuestCID: VsockCID = 3

    /// Whether `cid` is a guest's (what vsock:* and ranges match).
    public static func isGuestCID(_ cid: VsockCID) -> Bool { cid >= firstGuestCID && cid <= maxCID }

    /// Parses the client part of an exports entry (before any `(`).
    public static func parse(_ text: Substring) -> Result<ClientSpec, ParseError> {
        if text.isEmpty || text == "*" { return .success(.anonymous) }
        // Quotes can put white space into a client token; no host, network,
        // netgroup or wildcard has it, and etab (which writes the name as
        // it is) would read such a name back as several clients.
        if let position = text.utf8.firstIndex(where: { $0 <= 0x20 || $0 == 0x7F }) {
            return .failure(ParseError(message: "client name \"\(text)\" contains white space or a control character",
                                       hint: "quote only paths; a client name is one word",
                                       offset: text.utf8.distance(from: text.utf8.startIndex, to: position)))
        }
        if text.hasPrefix("gss/") { return .success(.gss(String(text))) }
        if text.hasPrefix("@") {
            guard text.count > 1 else {
                return .failure(ParseError(message: "empty netgroup name", hint: "write @groupname", offset: 0))
            }
            return .success(.netgroup(String(text.dropFirst())))
        }
        if text.lowercased().hasPrefix(vsockPrefix) { return parseVsock(text) }
        // Same classification as nfs-utils: a wildcard character anywhere
        // makes a pattern, a '/' a network, anything else a single host.
        var escaped = false
        for character in text {
            if escaped { escaped = false; continue }
            if character == "\\" { escaped = true; continue }
            if character == "*" || character == "?" || character == "[" { return parseWildcard(text) }
            if character == "/" { return parseNetwork(text) }
        }
        if let address = IPAddress(text) { return .success(.address(address)) }
        return parseHostName(text)
    }

    public static func parse(_ text: String) -> Result<ClientSpec, ParseError> { parse(text[...]) }

    private static func parseCID(_ text: Substring, offset: Int) -> Result<VsockCID, ParseError> {
        guard !text.isEmpty else {
            return .failure(ParseError(message: "missing vsock CID", hint: "write vsock:<cid>, vsock:<first>-<last> or vsock:*", offset: offset))
        }
        guard text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            return .failure(ParseError(message: "bad vsock CID \"\(text)\"", hint: "a CID is a decimal number", offset: offset))
        }
        guard let value = UInt64(text), value <= UInt64(maxCID) else {
            return .failure(ParseError(message: "vsock CID \(text) is out of range", hint: "CIDs go up to \(maxCID)", offset: offset))
        }
        return .success(VsockCID(value))
    }

    private static func parseVsock(_ text: Substring) -> Result<ClientSpec, ParseError> {
        let body = text.dropFirst(vsockPrefix.count)
        let bodyOffset = vsockPrefix.count
        if body == "*" { return .success(.vsockAny) }
        if let dash = body.firstIndex(of: "-") {
            let firstText = body[..<dash]
            let lastText = body[body.index(after: dash)...]
            let first: VsockCID
            switch parseCID(firstText, offset: bodyOffset) {
            case .success(let value): first = value
            case .failure(let error): return .failure(error)
            }
            let lastOffset = bodyOffset + firstText.count + 1
            let last: VsockCID
            switch parseCID(lastText, offset: lastOffset) {
            case .success(let value): last = value
            case .failure(let error): return .failure(error)
            }
            guard first <= last else {
                return .failure(ParseError(message: "empty vsock CID range \(first)-\(last)",
                                           hint: "write the lower CID first", offset: bodyOffset))
            }
            return .success(first == last ? .vsock(first) : .vsockRange(first, last))
        }
        return parseCID(body, offset: bodyOffset).map { .vsock($0) }
    }

    private static func parseNetwork(_ text: Substring) -> Result<ClientSpec, ParseError> {
        guard let slash = text.firstIndex(of: "/") else { preconditionFailure("caller found '/'") }
        let addressText = text[..<slash]
        let maskText = text[text.index(after: slash)...]
        let maskOffset = addressText.count + 1
        guard let address = IPAddress(addressText) else {
            return .failure(ParseError(message: "bad network address \"\(addressText)\"",
                                       hint: "write a.b.c.d/len or an IPv6 prefix", offset: 0))
        }
        let prefix: Int
        if maskText.contains(".") {
            guard address.isIPv4, case .v4(let mask)? = IPAddress(ipv4: maskText) else {
                return .failure(ParseError(message: "bad netmask \"\(maskText)\"", hint: "write a dotted IPv4 mask or a prefix length", offset: maskOffset))
            }
            let length = mask.leadingZeroBitCount == 0 ? (~mask).leadingZeroBitCount : 0
            guard mask == (length == 0 ? 0 : ~(UInt32.max >> UInt32(length))) else {
                guard case .v4(let network) = address else { preconditionFailure("checked IPv4 above") }
                return .success(.maskedNetwork(address: network, mask: mask))
            }
            prefix = length
        } else {
            guard !maskText.isEmpty, maskText.allSatisfy({ $0.isASCII && $0.isNumber }), let length = Int(maskText) else {
                return .failure(ParseError(message: "bad prefix length \"\(maskText)\"", hint: "write /0 to /\(address.bitWidth)", offset: maskOffset))
            }
            guard length <= address.bitWidth else {
                return .failure(ParseError(message: "prefix length /\(length) is too long for an IPv\(address.isIPv4 ? 4 : 6) network",
                                           hint: "the longest is /\(address.bitWidth)", offset: maskOffset))
            }
            prefix = length
        }
        return .success(.network(address, prefix: prefix))
    }

    private static func parseWildcard(_ text: Substring) -> Result<ClientSpec, ParseError> {
        // An unclosed '[' would never match anything: say so.
        var index = text.startIndex
        var offset = 0
        while index < text.endIndex {
            if text[index] == "\\" {
                index = text.index(after: index)
                offset += 1
            } else if text[index] == "[" {
                guard text[text.index(after: index)...].contains("]") else {
                    return .failure(ParseError(message: "unclosed '[' in host pattern \"\(text)\"", hint: "close the character class with ']'", offset: offset))
                }
            }
            if index < text.endIndex { index = text.index(after: index) }
            offset += 1
        }
        return .success(.wildcard(String(text)))
    }

    private static func parseHostName(_ text: Substring) -> Result<ClientSpec, ParseError> {
        // Looks like an address but is not one: a typo, never a host name.
        if text.allSatisfy({ $0.isNumber || $0 == "." }) {
            return .failure(ParseError(message: "malformed IPv4 address \"\(text)\"", hint: "write four numbers 0-255 separated by dots", offset: 0))
        }
        if text.contains(":") {
            return .failure(ParseError(message: "malformed address \"\(text)\"", hint: "write a valid IPv6 address, or vsock:<cid> for a guest", offset: 0))
        }
        for (offset, character) in text.enumerated() {
            let ok = character.isASCII && (character.isLetter || character.isNumber || character == "." || character == "-" || character == "_")
            if !ok {
                return .failure(ParseError(message: "invalid character \"\(character)\" in host name \"\(text)\"", hint: nil, offset: offset))
            }
        }
        return .success(.host(String(text)))
    }

    /// The name nfs-utils would print before resolving: the spec as written
    /// in canonical spelling.
    public var canonicalText: String {
        switch self {
        case .host(let name): name
        case .address(let address): address.description
        case .network(let address, let prefix): "\(address)/\(prefix)"
        case .maskedNetwork(let address, let mask): "\(IPAddress.v4(address))/\(IPAddress.v4(mask))"
        case .wildcard(let pattern): pattern
        case .netgroup(let name): "@" + name
        case .anonymous: "*"
        case .gss(let name): name
        case .vsock(let cid): "vsock:\(cid)"
        case .vsockRange(let first, let last): "vsock:\(first)-\(last)"
        case .vsockAny: "vsock:*"
        }
    }
}
