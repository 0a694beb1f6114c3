#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import SystemEdge

/// The relay's listening socket on guest loopback.
enum RelayListener {
    /// Binds 127.0.0.1 on the first of `ports` that is free and listens;
    /// a port in use (EADDRINUSE) is skipped, any other failure stops.
    static func open(ports: [UInt16], backlog: Int32 = 64) throws(SystemError) -> (fd: Int32, port: UInt16) {
        guard let first = ports.first, let last = ports.last else {
            throw SystemError("bind", "127.0.0.1: no port to try", errno: EADDRNOTAVAIL)
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.current("socket", "AF_INET") }
        for port in ports {
            let bound = SocketAddress.inet(address: TCPEndpoint.loopback, port: port).withSockaddr { bind(fd, $0, $1) }
            if bound != 0 {
                let error = errno
                // A failed bind leaves the socket unbound: the same one can try the next port.
                if error == EADDRINUSE { continue }
                close(fd)
                throw SystemError("bind", "127.0.0.1:\(port)", errno: error)
            }
            guard listen(fd, backlog) == 0 else {
                let error = errno
                close(fd)
                throw SystemError("listen", "127.0.0.1:\(port)", errno: error)
            }
            return (fd, port)
        }
        close(fd)
        throw SystemError("bind", "127.0.0.1 (ports \(first) down to \(last), all in use)", errno: EADDRINUSE)
    }
}
