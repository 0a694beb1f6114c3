#if canImport(Glibc)
import Glibc
#endif
// SOCK_STREAM, SOCK_DGRAM, SOCK_CLOEXEC: with CLinux imported (whose
// headers include <sys/socket.h>) Swift sees them through it.
import CLinux

/// The one place the tools call socket(2): every socket is close-on-exec,
/// so no helper the tools spawn (exportfs from a hook, the bridge from
/// rpc.nfsd) inherits a listener or a guest's connection.
public enum Socket {
    public static let stream = Int32(SOCK_STREAM.rawValue)
    public static let datagram = Int32(SOCK_DGRAM.rawValue)

    /// A new socket, or -1 with errno set.
    public static func open(family: Int32, type: Int32 = stream, protocolNumber: Int32 = 0) -> Int32 {
        socket(family, type | Int32(SOCK_CLOEXEC.rawValue), protocolNumber)
    }

    /// A new socket; the error is `socket(AF_...) subject: ...`.
    public static func open(family: Int32, type: Int32 = stream, for subject: String) throws(SystemError) -> Int32 {
        let fd = open(family: family, type: type)
        guard fd >= 0 else { throw SystemError.current("socket(\(familyName(family)))", subject) }
        return fd
    }

    /// Whether this kernel opens sockets of `family` and `type` at all
    /// (AF_VSOCK without a transport module, AF_INET6 booted with
    /// ipv6.disable=1); errno is set when not.
    public static func supported(family: Int32, type: Int32 = stream) -> Bool {
        let fd = open(family: family, type: type)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    /// setsockopt(2) of a plain value (an Int32 flag, a UInt64 size): 0,
    /// or -1 with errno set.
    @discardableResult
    public static func setOption<Value: BitwiseCopyable>(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Value) -> Int32 {
        var value = value
        return setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Value>.size))
    }

    /// accept(2) of a connection whose peer address is not wanted (a
    /// Unix socket's, which says nothing): the descriptor, or -1 with
    /// errno set. `SocketAddress.accept` returns the peer too.
    public static func accept(_ listener: Int32) -> Int32 { Glibc.accept(listener, nil, nil) }

    /// listen(2) of a bound stream socket: 0, or -1 with errno set.
    public static func listen(_ fd: Int32, backlog: Int32) -> Int32 { Glibc.listen(fd, backlog) }

    /// "AF_INET", "AF_INET6", "AF_VSOCK", "AF_UNIX", or the number.
    public static func familyName(_ family: Int32) -> String {
        switch family {
        case AF_INET: "AF_INET"
        case AF_INET6: "AF_INET6"
        case AF_VSOCK: "AF_VSOCK"
        case AF_UNIX: "AF_UNIX"
        default: "family \(family)"
        }
    }
}

extension SocketAddress {
    /// A new socket of this address's family; errors name the address.
    public func socket(type: Int32 = Socket.stream) throws(SystemError) -> Int32 {
        try Socket.open(family: family, type: type, for: description)
    }

    /// bind(2) of `fd` to this address: 0, or -1 with errno set.
    public func bind(_ fd: Int32) -> Int32 {
        withSockaddr { Glibc.bind(fd, $0, $1) }
    }

    /// connect(2) of `fd` to this address: 0, or -1 with errno set.
    public func connect(_ fd: Int32) -> Int32 {
        withSockaddr { Glibc.connect(fd, $0, $1) }
    }
}
