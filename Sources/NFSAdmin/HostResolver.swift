#if canImport(Glibc)
import Glibc
#endif
import NFSExports
import SystemEdge

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
            if let address = current.pointee.ai_addr
                .flatMap({ SocketAddress(bytes: UnsafeRawBufferPointer(start: $0, count: Int(current.pointee.ai_addrlen))) })
                .flatMap({ IPAddress($0) }), !addresses.contains(address) {
                addresses.append(address)
            }
            node = current.pointee.ai_next
        }
        return HostResolution(canonicalName: canonical, addresses: addresses)
    }
}
