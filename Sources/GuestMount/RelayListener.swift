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
        for port in ports {
            do {
                return (try SocketAddress.inet(address: TCPEndpoint.loopback, port: port).listen(ListenOptions(backlog: backlog)), port)
            } catch {
                // A port in use: try the next.
                if error.step == .bind && error.errno == EADDRINUSE { continue }
                throw error.systemError(error.step == .socket ? "AF_INET" : "127.0.0.1:\(port)")
            }
        }
        throw SystemError("bind", "127.0.0.1 (ports \(first) down to \(last), all in use)", errno: EADDRINUSE)
    }
}
