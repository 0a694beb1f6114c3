import Glibc
import Testing
// SOCK_STREAM: this test target imports CLinux (BridgeTests), and then
// Swift sees it only through CLinux.
import CLinux
import NFSAdmin
import NFSExports
import SystemEdge
import TestSupport
@testable import VsockBridge

/// 127.0.0.`last`:`port`.
private func loopback(_ last: UInt8, port: UInt16) -> SocketAddress {
    .inet(address: UInt32(0x7F00_0000) | UInt32(last), port: port)
}

@Suite("the bridge's connection to nfsd")
struct LoopbackConnectorTests {
    /// A guest's loopback source address (VsockLoopbackMapping's kind).
    private let source = IPAddress("127.0.0.9")!

    @Test("a refused connect names the server and the guest's source address")
    func refused() throws {
        let probe = tcpListener()
        close(probe.fd)
        #expect(throws: SystemError("connect", "127.0.0.1:\(probe.port) from \(source)", errno: ECONNREFUSED)) {
            close(try LoopbackConnector.connect(from: source, privileged: false, to: "127.0.0.1", port: probe.port))
        }
    }

    @Test("as root: privileged from the guest's address; all 512 ports taken is a bind error, unprivileged still connects",
          .enabled(if: geteuid() == 0, "binding ports below 1024 needs root"))
    func privilegedPortsTaken() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let first = try LoopbackConnector.connect(from: source, privileged: true, to: "127.0.0.1", port: server.port)
        let firstEnd = SocketAddress.local(of: first)
        close(first)
        guard case .inet(let firstAddress, let firstPort)? = firstEnd else {
            Issue.record("bound to \(String(describing: firstEnd))")
            return
        }
        #expect(firstAddress == 0x7F00_0009)
        #expect((512...1023).contains(firstPort))

        // Every privileged port of 127.0.0.9 bound by another socket.
        var takers: [Int32] = []
        defer { takers.forEach { close($0) } }
        for port in UInt16(512)...1023 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            takers.append(fd)
            let bound = loopback(9, port: port).withSockaddr { bind(fd, $0, $1) }
            try #require(bound == 0 || errno == EADDRINUSE)
        }
        #expect(throws: SystemError("bind", "\(source): no free privileged port", errno: EADDRINUSE)) {
            close(try LoopbackConnector.connect(from: source, privileged: true, to: "127.0.0.1", port: server.port))
        }
        let unprivileged = try LoopbackConnector.connect(from: source, privileged: false, to: "127.0.0.1", port: server.port)
        defer { close(unprivileged) }
        #expect(localPort(unprivileged) >= 1024)
    }
}
