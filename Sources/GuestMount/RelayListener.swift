#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin

/// The relay's listening socket on guest loopback.
enum RelayListener {
    /// Binds 127.0.0.1 on the first of `ports` that is free and listens;
    /// a port in use (EADDRINUSE) is skipped, any other failure stops.
    static func open(ports: [UInt16], backlog: Int32 = 64) throws(SystemError) -> (fd: Int32, port: UInt16) {
        guard let first = ports.first, let last = ports.last else {
            throw SystemError("bind", "127.0.0.1: no port to try", errno: EADDRNOTAVAIL)
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", "AF_INET", errno: errno) }
        for port in ports {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = TCPEndpoint.loopback.bigEndian
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    // SAFETY: a complete sockaddr_in.
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
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
