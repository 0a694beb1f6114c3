#if canImport(Glibc)
import Glibc
#endif
import NFSExports

/// getaddrinfo(3) with AI_CANONNAME, as nfs-utils resolves client names.
public enum HostResolver {
    public static func resolve(_ name: String) -> HostResolution? {
        var hints = addrinfo()
        hints.ai_flags = AI_CANONNAME
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(name, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(first) }
        let canonical = first.pointee.ai_canonname.map { String(cString: $0) } ?? name
        var addresses: [IPAddress] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            if let address = current.pointee.ai_addr.flatMap(ipAddress(of:)), !addresses.contains(address) {
                addresses.append(address)
            }
            node = current.pointee.ai_next
        }
        return HostResolution(canonicalName: canonical, addresses: addresses)
    }

    /// An IPAddress from a sockaddr_in / sockaddr_in6.
    public static func ipAddress(of sockaddr: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        switch Int32(sockaddr.pointee.sa_family) {
        case AF_INET:
            return sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                // SAFETY: sa_family says this is a sockaddr_in.
                .v4(UInt32(bigEndian: pointer.pointee.sin_addr.s_addr))
            }
        case AF_INET6:
            return sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                // SAFETY: sa_family says this is a sockaddr_in6.
                let bytes = withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                var high: UInt64 = 0, low: UInt64 = 0
                for index in 0..<8 { high = high << 8 | UInt64(bytes[index]) }
                for index in 8..<16 { low = low << 8 | UInt64(bytes[index]) }
                return .v6(high: high, low: low)
            }
        default:
            return nil
        }
    }
}
