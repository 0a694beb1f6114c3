#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import NFSExports
import SystemEdge

/// A bound (and, for streams, listening) socket that we open and hand to
/// the kernel NFS server by descriptor.
public struct ListenerSocket: Sendable {
    public enum Transport: String, Sendable {
        case tcp, udp, vsock
    }

    public var fd: Int32
    public var transport: Transport
    /// "0.0.0.0:2049", "[::]:2049", "vsock:*:2049".
    public var name: String

    public func close() { _ = Glibc.close(fd) }

    /// TCP or UDP listeners for `host` (nil: every address, IPv4 and IPv6)
    /// on `port`, as nfs-utils opens them: SO_REUSEADDR, IPV6_V6ONLY.
    public static func inet(host: String?, port: UInt16, transport: Transport) throws(ListenerError) -> [ListenerSocket] {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(transport == .udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>? = nil
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result else {
            throw .resolve(host: host ?? "*", message: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var sockets: [ListenerSocket] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        do throws(ListenerError) {
            while let current = node {
                node = current.pointee.ai_next
                let info = current.pointee
                let family = info.ai_family
                guard family == AF_INET || family == AF_INET6,
                      let address = info.ai_addr.flatMap({ SocketAddress(bytes: UnsafeRawBufferPointer(start: $0, count: Int(info.ai_addrlen))) })
                else { continue }
                let shown = ListenerSocket.describe(address, port: port)
                let fd: Int32
                do {
                    fd = try address.listen(ListenOptions(type: info.ai_socktype, protocolNumber: info.ai_protocol, reuseAddress: true,
                                                          ipv6Only: family == AF_INET6 ? true : nil))
                } catch {
                    // No IPv6 on this host: listen on IPv4 only, as nfs-utils does.
                    if error.step == .socket && family == AF_INET6 && (error.errno == EAFNOSUPPORT || error.errno == EPROTONOSUPPORT) { continue }
                    throw ListenerError.system(transport: transport, address: shown, error.systemError(shown))
                }
                sockets.append(ListenerSocket(fd: fd, transport: transport, name: shown))
            }
        } catch {
            sockets.forEach { $0.close() }
            throw error
        }
        return sockets
    }

    /// An AF_VSOCK stream listener on any CID and `port`. The sockaddr_vm is
    /// zeroed whole: kernels since 5.11 reject unknown svm_flags bits.
    public static func vsock(port: UInt32) throws(ListenerError) -> ListenerSocket {
        let shown = "vsock:*:\(port)"
        let fd: Int32
        do {
            fd = try SocketAddress.vsock(cid: SocketAddress.anyCID, port: port).listen()
        } catch {
            throw .system(transport: .vsock, address: shown, error)
        }
        return ListenerSocket(fd: fd, transport: .vsock, name: shown)
    }

    /// IPAddress's text (RFC 5952, ::ffff:a.b.c.d kept), not inet_ntop's.
    static func describe(_ address: SocketAddress, port: UInt16) -> String {
        guard let ip = IPAddress(address) else { return "?:\(port)" }
        return ip.isIPv4 ? "\(ip):\(port)" : "[\(ip)]:\(port)"
    }
}

public enum ListenerError: Error, Sendable, CustomStringConvertible {
    case resolve(host: String, message: String)
    case system(transport: ListenerSocket.Transport, address: String, SystemError)

    public var description: String {
        switch self {
        case .resolve(let host, let message):
            return "cannot resolve listen address \(host): \(message)"
        case .system(let transport, let address, let error):
            if error.errno == EADDRINUSE {
                return "cannot listen on \(transport.rawValue) \(address): the port is in use (\(error))"
            }
            if transport == .vsock && (error.errno == EAFNOSUPPORT || error.errno == ENODEV) {
                return "cannot open an AF_VSOCK socket (\(error)): load the vsock transport (modprobe vhost_vsock on a host, vmw_vsock_virtio_transport in a guest)"
            }
            return "cannot listen on \(transport.rawValue) \(address): \(error)"
        }
    }
}
