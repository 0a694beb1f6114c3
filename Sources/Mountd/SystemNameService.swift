#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import NFSExports

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
        var storage = sockaddr_storage()
        let length: socklen_t
        switch address {
        case .v4(let value):
            length = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    // SAFETY: sockaddr_storage is large enough for sockaddr_in.
                    sin.pointee.sin_family = sa_family_t(AF_INET)
                    sin.pointee.sin_addr.s_addr = value.bigEndian
                    return socklen_t(MemoryLayout<sockaddr_in>.size)
                }
            }
        case .v6(let high, let low):
            length = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    // SAFETY: sockaddr_storage is large enough for sockaddr_in6.
                    sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                    withUnsafeMutableBytes(of: &sin6.pointee.sin6_addr) { bytes in
                        for index in 0..<8 { bytes[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(index))) }
                        for index in 0..<8 { bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(index))) }
                    }
                    return socklen_t(MemoryLayout<sockaddr_in6>.size)
                }
            }
        }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let status = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                // SAFETY: the storage holds a complete sockaddr of `length` bytes.
                getnameinfo(generic, length, &host, socklen_t(host.count), nil, 0, NI_NAMEREQD)
            }
        }
        guard status == 0 else { return [] }
        let name = host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        guard let confirmed = HostResolver.resolve(name), confirmed.addresses.contains(where: { $0.unmapped == address.unmapped }) else {
            return []
        }
        return confirmed.canonicalName.lowercased() == name.lowercased() ? [name] : [name, confirmed.canonicalName]
    }
}
