#if canImport(Glibc)
import Glibc
#endif
// SOCK_STREAM, SOCK_DGRAM, SOCK_CLOEXEC: with CLinux imported (whose
// headers include <sys/socket.h>) Swift sees them through it.
import CLinux

/// How `SocketAddress.listen(_:)` sets a socket up before it binds.
public struct ListenOptions: Sendable {
    /// SOCK_STREAM (bound and listening) or SOCK_DGRAM (bound).
    public var type: Int32
    public var protocolNumber: Int32
    /// SO_REUSEADDR: a restarted server gets its fixed TCP port back
    /// despite connections in TIME_WAIT.
    public var reuseAddress: Bool
    /// IPV6_V6ONLY on an AF_INET6 socket, set either way when not nil (the
    /// sysctl default, bindv6only, varies); ignored for other families.
    public var ipv6Only: Bool?
    /// listen(2)'s backlog, for stream sockets.
    public var backlog: Int32

    public init(type: Int32 = Int32(SOCK_STREAM.rawValue), protocolNumber: Int32 = 0, reuseAddress: Bool = false,
                ipv6Only: Bool? = nil, backlog: Int32 = 64) {
        self.type = type
        self.protocolNumber = protocolNumber
        self.reuseAddress = reuseAddress
        self.ipv6Only = ipv6Only
        self.backlog = backlog
    }

    /// A datagram socket, bound only.
    public static let datagram = ListenOptions(type: Int32(SOCK_DGRAM.rawValue))
}

/// Which step of `SocketAddress.listen(_:)` failed and its errno; the
/// caller names the socket in its own words.
public struct ListenFailure: Error, Sendable, Equatable {
    public enum Step: String, Sendable {
        case socket, bind, listen
    }

    public var step: Step
    public var errno: Int32

    public init(step: Step, errno: Int32) {
        self.step = step
        self.errno = errno
    }

    /// As a SystemError on `subject`; the socket step is named with the
    /// address family ("socket(AF_VSOCK)").
    public func systemError(_ subject: String, family: String? = nil) -> SystemError {
        let call = step == .socket ? family.map { "socket(\($0))" } ?? "socket" : step.rawValue
        return SystemError(call, subject, errno: errno)
    }
}

extension SocketAddress {
    /// The one way the tools open a server socket: of this address's
    /// family, close-on-exec, set up by `options`, bound to this address,
    /// and listening when it is a stream socket. On any failure the socket
    /// is closed again and the step and errno are thrown.
    public func listen(_ options: ListenOptions) throws(ListenFailure) -> Int32 {
        let fd = Socket.open(family: family, type: options.type, protocolNumber: options.protocolNumber)
        guard fd >= 0 else { throw ListenFailure(step: .socket, errno: Glibc.errno) }
        func fail(_ step: ListenFailure.Step) -> ListenFailure {
            let failure = ListenFailure(step: step, errno: Glibc.errno)
            close(fd)
            return failure
        }
        if options.reuseAddress { Socket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, Int32(1)) }
        if family == AF_INET6, let only = options.ipv6Only {
            Socket.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, Int32(only ? 1 : 0))
        }
        guard bind(fd) == 0 else { throw fail(.bind) }
        if options.type == Int32(SOCK_STREAM.rawValue) {
            guard Socket.listen(fd, backlog: options.backlog) == 0 else { throw fail(.listen) }
        }
        return fd
    }

    /// A stream socket bound to this address and listening; errors name
    /// the address ("socket(AF_VSOCK) vsock:*:2049: ...").
    public func listen(backlog: Int32 = 64) throws(SystemError) -> Int32 {
        do {
            return try listen(ListenOptions(backlog: backlog))
        } catch {
            throw error.systemError(description, family: familyName)
        }
    }

    /// "AF_INET", "AF_INET6", "AF_VSOCK", "AF_UNIX", for messages.
    public var familyName: String { Socket.familyName(family) }
}
