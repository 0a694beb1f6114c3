#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import NFSExports
import SystemEdge

/// Host names for matching, from the system resolver: forward lookups of
/// the names in the export table (cached until the next reload), reverse
/// lookups of client addresses confirmed by a forward lookup, and
/// innetgr(3) for netgroups.
public final class SystemNameService: NameService {
    private let forward = ThreadLock<[String: [IPAddress]]>([:])

    public init() {}

    public func forget() { forward.withLock { $0.removeAll() } }

    public func addresses(ofHost name: String) -> [IPAddress] {
        if let known = forward.withLock({ $0[name.lowercased()] }) { return known }
        let found = HostResolver.resolve(name)?.addresses ?? []
        forward.withLock { $0[name.lowercased()] = found }
        return found
    }

    public func isMember(hostNames: [String], ofNetgroup netgroup: String) -> Bool {
        hostNames.contains { innetgr(netgroup, $0, nil, nil) == 1 }
    }

    /// The names of `address`: its reverse name, kept only if that name
    /// resolves back to the address (a spoofed PTR record gets nothing).
    public func names(of address: IPAddress) -> [String] {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let status = SocketAddress(address, port: 0).withSockaddr { generic, length in
            getnameinfo(generic, length, &host, socklen_t(host.count), nil, 0, NI_NAMEREQD)
        }
        guard status == 0 else { return [] }
        let name = host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard let confirmed = HostResolver.resolve(name), confirmed.addresses.contains(where: { $0.unmapped == address.unmapped }) else {
            return []
        }
        return confirmed.canonicalName.lowercased() == name.lowercased() ? [name] : [name, confirmed.canonicalName]
    }
}
