#if canImport(Glibc)
import Glibc
#endif
// SOCK_STREAM and SOCK_CLOEXEC: once this target imports CLinux (whose
// headers include <sys/socket.h>), Swift sees them only through it.
import CLinux
import NFSExports
import SystemEdge

extension SocketAddress {
    /// A stream socket of this address's family bound to it and listening.
    public func listen(backlog: Int32 = 64) throws(SystemError) -> Int32 {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.current("socket(\(familyName))", description) }
        let bound = withSockaddr { address, length in bind(fd, address, length) }
        if bound != 0 || Glibc.listen(fd, backlog) != 0 {
            let error = errno
            close(fd)
            throw SystemError(bound != 0 ? "bind" : "listen", description, errno: error)
        }
        return fd
    }

    /// "AF_INET", "AF_INET6", "AF_VSOCK", "AF_UNIX", for messages.
    public var familyName: String {
        switch self {
        case .inet: "AF_INET"
        case .inet6: "AF_INET6"
        case .vsock: "AF_VSOCK"
        case .unix: "AF_UNIX"
        }
    }

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
