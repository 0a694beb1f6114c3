#if canImport(Glibc)
import Glibc
#endif
import CLinux
import SystemEdge
import Testing

@Suite("SocketAddress.listen: the one way a server socket is opened")
struct ListeningTests {
    private func option(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = -1
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, level, name, &value, &size)
        return value
    }

    private func boundPort(_ fd: Int32) -> UInt16? {
        let (status, address) = SocketAddress.receiving({ getsockname(fd, $0, $1) }, succeeded: { $0 == 0 })
        guard status == 0, case .inet(_, let port)? = address else { return nil }
        return port
    }

    @Test("a stream socket is bound, listening, close-on-exec, and takes a connection")
    func stream() throws {
        let fd = try SocketAddress.inet(address: 0x7F00_0001, port: 0).listen(ListenOptions(reuseAddress: true))
        defer { close(fd) }
        #expect(option(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1)
        #expect(option(fd, SOL_SOCKET, SO_REUSEADDR) == 1)
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        let port = try #require(boundPort(fd))
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        #expect(SocketAddress.inet(address: 0x7F00_0001, port: port).withSockaddr { connect(client, $0, $1) } == 0)
    }

    @Test("a datagram socket is bound only")
    func datagram() throws {
        let fd = try SocketAddress.inet(address: 0x7F00_0001, port: 0).listen(.datagram)
        defer { close(fd) }
        #expect(option(fd, SOL_SOCKET, SO_ACCEPTCONN) == 0)
        #expect(option(fd, SOL_SOCKET, SO_TYPE) == Int32(SOCK_DGRAM.rawValue))
        #expect(boundPort(fd).map { $0 > 0 } == true)
    }

    @Test("IPV6_V6ONLY is set either way when asked, left alone when not", arguments: [true, false])
    func ipv6Only(only: Bool) throws {
        let fd: Int32
        do {
            // The wildcard: Linux makes a socket bound to one IPv6 address
            // (::1) IPv6-only whatever was asked.
            fd = try SocketAddress.anyInet6(port: 0).listen(ListenOptions(ipv6Only: only))
        } catch {
            // A host without IPv6 cannot show it.
            #expect(error.errno == EAFNOSUPPORT || error.errno == EADDRNOTAVAIL)
            return
        }
        defer { close(fd) }
        #expect(option(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY) == (only ? 1 : 0))
    }

    @Test("a port in use fails at bind with EADDRINUSE, and the failed socket is closed")
    func portInUse() throws {
        let first = try SocketAddress.inet(address: 0x7F00_0001, port: 0).listen(ListenOptions())
        defer { close(first) }
        let port = try #require(boundPort(first))
        // The next descriptor number: the failed attempt's must be free again.
        let probe = dup(0)
        close(probe)
        #expect(throws: ListenFailure(step: .bind, errno: EADDRINUSE)) {
            try SocketAddress.inet(address: 0x7F00_0001, port: port).listen(ListenOptions())
        }
        let after = dup(0)
        close(after)
        #expect(after == probe, "the socket of the failed attempt was closed")
        #expect(throws: SystemError("bind", "127.0.0.1:\(port)", errno: EADDRINUSE)) {
            try SocketAddress.inet(address: 0x7F00_0001, port: port).listen()
        }
    }

    @Test("a socket(2) failure names the step and the family")
    func socketFails() {
        #expect(throws: ListenFailure(step: .socket, errno: EINVAL)) {
            try SocketAddress.inet(address: 0x7F00_0001, port: 0).listen(ListenOptions(type: 12345))
        }
        let failure = ListenFailure(step: .socket, errno: EAFNOSUPPORT)
        #expect(failure.systemError("vsock:*:2049", family: "AF_VSOCK").description == "socket(AF_VSOCK) vsock:*:2049: Address family not supported by protocol")
        #expect(failure.systemError("AF_INET").call == "socket")
        #expect(ListenFailure(step: .listen, errno: EINVAL).systemError("x", family: "AF_INET").call == "listen")
    }
}
