#if canImport(Glibc)
import Glibc
#endif

/// A connection from a privileged source port, for a server whose `secure`
/// check trusts only ports below 1024: the ports are bound in turn, highest
/// first, and one that is taken is skipped. Both ends of the vsock hop do
/// it: the guest's relay to the host's vsock port, the bridge to nfsd's
/// loopback listener. `connect(to:from:)` opens the sockets itself; the
/// closure form takes the caller's, for tests that make a step fail.
public enum PrivilegedPort {
    /// 1023 down to 512.
    public static let range: [UInt16] = Array((512...1023).reversed())

    /// How the search ended. The errors are the caller's to word.
    public enum Outcome: Sendable, Equatable {
        case connected(Int32)
        /// bind(2) failed other than EADDRINUSE (EACCES: no privilege).
        case bindFailed(port: UInt16, errno: Int32)
        /// connect(2) failed other than EADDRINUSE or EADDRNOTAVAIL.
        case connectFailed(errno: Int32)
        /// Every port was taken; the errno of the last one tried.
        case noFreePort(errno: Int32)
    }

    /// Tries each of `ports` on a new socket from `makeSocket`: `bind`
    /// binds it to the port, `connect` connects it, each returning its
    /// system call's result (0, or -1 with errno set). A socket that fails
    /// is closed; a thrown socket error ends the search.
    public static func connect<Failure: Error>(
        from ports: [UInt16] = range,
        socket makeSocket: () throws(Failure) -> Int32,
        bind bindSocket: (Int32, UInt16) -> Int32,
        connect connectSocket: (Int32) -> Int32
    ) throws(Failure) -> Outcome {
        var lastError = EADDRINUSE
        for port in ports {
            let fd = try makeSocket()
            if bindSocket(fd, port) != 0 {
                lastError = errno
                close(fd)
                if lastError == EADDRINUSE { continue }
                return .bindFailed(port: port, errno: lastError)
            }
            if connectSocket(fd) == 0 { return .connected(fd) }
            lastError = errno
            close(fd)
            // The same 4-tuple may still be in TIME_WAIT: try another port.
            if lastError == EADDRNOTAVAIL || lastError == EADDRINUSE { continue }
            return .connectFailed(errno: lastError)
        }
        return .noFreePort(errno: lastError)
    }

    /// Connects a new socket of `target`'s family to `target`, bound first
    /// to `source(port)` for each of `ports` in turn (port 0: the kernel's
    /// choice). `prepare` sets each socket up before it binds.
    public static func connect(to target: SocketAddress, from source: (UInt16) -> SocketAddress, ports: [UInt16] = range,
                               prepare: (Int32) -> Void = { _ in }) throws(SystemError) -> Outcome {
        try connect(from: ports,
                    socket: { () throws(SystemError) -> Int32 in
                        let fd = try target.socket()
                        prepare(fd)
                        return fd
                    },
                    bind: { fd, port in source(port).bind(fd) },
                    connect: { fd in target.connect(fd) })
    }
}
