/// Who is asking: an IP client (with the names its address resolves to) or
/// a vsock guest.
public enum ClientAddress: Sendable, Hashable, CustomStringConvertible {
    case ip(IPAddress)
    case vsock(VsockCID)

    public var description: String {
        switch self {
        case .ip(let address): address.description
        case .vsock(let cid): "vsock:\(cid)"
        }
    }
}

public struct ClientIdentity: Sendable, Hashable {
    public var address: ClientAddress
    /// Canonical name first, then aliases; empty when unresolved.
    public var names: [String]

    public init(address: ClientAddress, names: [String] = []) {
        self.address = address
        self.names = names
    }

    public static func ip(_ address: IPAddress, names: [String] = []) -> ClientIdentity {
        ClientIdentity(address: .ip(address), names: names)
    }

    public static func vsock(_ cid: VsockCID) -> ClientIdentity {
        ClientIdentity(address: .vsock(cid))
    }
}

/// The name-service answers matching needs: host names to addresses and
/// netgroup membership. The daemons back it with the resolver and
/// innetgr(3); tests with a table.
public protocol NameService: Sendable {
    func addresses(ofHost name: String) -> [IPAddress]
    func isMember(hostNames: [String], ofNetgroup netgroup: String) -> Bool
}

/// A fixed table; also the "no name service" default.
public struct StaticNameService: NameService {
    public var hosts: [String: [IPAddress]]
    public var netgroups: [String: Set<String>]

    public init(hosts: [String: [IPAddress]] = [:], netgroups: [String: Set<String>] = [:]) {
        self.hosts = hosts
        self.netgroups = netgroups
    }

    public func addresses(ofHost name: String) -> [IPAddress] { hosts[name.lowercased()] ?? [] }

    public func isMember(hostNames: [String], ofNetgroup netgroup: String) -> Bool {
        guard let members = netgroups[netgroup] else { return false }
        return hostNames.contains { members.contains($0.lowercased()) }
    }
}

extension ClientSpec {
    /// Does this spec name `client`? vsock specs match only vsock guests;
    /// every other form (`*` included) matches only IP clients.
    public func matches(_ client: ClientIdentity, nameService: some NameService) -> Bool {
        switch client.address {
        case .vsock(let cid):
            // vsock:* and ranges mean guests (CIDs 3 and up): CID 1 (the
            // loopback transport, which every process and container on
            // this host reaches) and 2 (the host) only by explicit vsock:N.
            switch self {
            case .vsock(let wanted): return cid == wanted
            case .vsockRange(let first, let last): return ClientSpec.isGuestCID(cid) && first <= cid && cid <= last
            case .vsockAny: return ClientSpec.isGuestCID(cid)
            default: return false
            }
        case .ip(let rawAddress):
            let address = rawAddress.unmapped
            switch self {
            case .vsock, .vsockRange, .vsockAny:
                return false
            case .anonymous:
                return true
            case .address(let wanted):
                return wanted.unmapped == address
            case .network(let network, let prefix):
                return address.isIn(network: network, prefix: prefix)
            case .maskedNetwork(let network, let mask):
                guard case .v4(let value) = address else { return false }
                return value & mask == network & mask
            case .host(let name):
                if client.names.contains(where: { $0.caseInsensitiveEquals(name) }) { return true }
                return nameService.addresses(ofHost: name).contains { $0.unmapped == address }
            case .wildcard(let pattern):
                return client.names.contains { HostPattern.matches(pattern: pattern, name: $0) }
            case .netgroup(let netgroup):
                return nameService.isMember(hostNames: client.names + [address.description], ofNetgroup: netgroup)
            case .gss:
                return false
            }
        }
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        self.count == other.count && self.lowercased() == other.lowercased()
    }
}

/// Shell-style host patterns (`*`, `?`, `[a-z]`, `[!x]`, `\` escapes),
/// compared case-insensitively as host names are.
public enum HostPattern {
    public static func matches(pattern: String, name: String) -> Bool {
        match(Array(pattern.lowercased().unicodeScalars), 0, Array(name.lowercased().unicodeScalars), 0)
    }

    private static func match(_ p: [Unicode.Scalar], _ pi: Int, _ s: [Unicode.Scalar], _ si: Int) -> Bool {
        var pi = pi, si = si
        while pi < p.count {
            switch p[pi] {
            case "*":
                // Collapse runs of '*', then try every split.
                while pi < p.count && p[pi] == "*" { pi += 1 }
                if pi == p.count { return true }
                var start = si
                while start <= s.count {
                    if match(p, pi, s, start) { return true }
                    start += 1
                }
                return false
            case "?":
                guard si < s.count else { return false }
                pi += 1
                si += 1
            case "[":
                guard si < s.count, let (matched, next) = matchClass(p, pi, s[si]) else { return false }
                guard matched else { return false }
                pi = next
                si += 1
            case "\\" where pi + 1 < p.count:
                guard si < s.count, p[pi + 1] == s[si] else { return false }
                pi += 2
                si += 1
            default:
                guard si < s.count, p[pi] == s[si] else { return false }
                pi += 1
                si += 1
            }
        }
        return si == s.count
    }

    /// Returns whether `c` is in the class starting at `start` ('['), and
    /// the index after its ']'; nil if the class is unterminated.
    private static func matchClass(_ p: [Unicode.Scalar], _ start: Int, _ c: Unicode.Scalar) -> (Bool, Int)? {
        var index = start + 1
        var negate = false
        if index < p.count && (p[index] == "!" || p[index] == "^") {
            negate = true
            index += 1
        }
        var matched = false
        var first = true
        while index < p.count && (first || p[index] != "]") {
            first = false
            let low = p[index]
            if index + 2 < p.count && p[index + 1] == "-" && p[index + 2] != "]" {
                if low.value <= c.value && c.value <= p[index + 2].value { matched = true }
                index += 3
            } else {
                if low == c { matched = true }
                index += 1
            }
        }
        guard index < p.count else { return nil }
        return (matched != negate, index + 1)
    }
}
