#if canImport(Glibc)
import Glibc
#endif
import NFSExports
import SystemEdge

extension SocketAddress {
    /// An IPv4 or IPv6 address and a port (IPv6 with scope 0).
    public init(_ address: IPAddress, port: UInt16) {
        switch address {
        case .v4(let value): self = .inet(address: value, port: port)
        case .v6(let high, let low): self = .inet6(high: high, low: low, port: port, scopeID: 0)
        }
    }
}

extension IPAddress {
    /// The address of an AF_INET or AF_INET6 socket address; nil for the
    /// other families. An IPv4-mapped IPv6 address stays IPv6.
    public init?(_ address: SocketAddress) {
        switch address {
        case .inet(let value, _): self = .v4(value)
        case .inet6(let high, let low, _, _): self = .v6(high: high, low: low)
        case .vsock, .unix: return nil
        }
    }
}
