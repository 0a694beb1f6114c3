import Glibc
import Testing
import Forwarding
import SystemEdge
import TestSupport

/// Calls `body` with 127.0.0.1:`port` as a sockaddr.
private func withLoopback(_ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
    loopbackAddress(port: port).withSockaddr(body)
}

/// A port that was free a moment ago.
private func freePort() -> UInt16 {
    let probe = tcpListener()
    close(probe.fd)
    return probe.port
}

/// The search over TCP on 127.0.0.1, counting the sockets it makes.
private final class LoopbackSearch {
    var socketsMade = 0

    func connect(from ports: [UInt16], to target: UInt16,
                 connect connectSocket: ((Int32) -> Int32)? = nil) -> PrivilegedPort.Outcome {
        PrivilegedPort.connect(
            from: ports,
            socket: { () -> Int32 in
                socketsMade += 1
                return socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            },
            bind: { fd, port in withLoopback(port) { bind(fd, $0, $1) } },
            connect: connectSocket ?? { fd in withLoopback(target) { Glibc.connect(fd, $0, $1) } })
    }
}

@Suite("privileged source port search")
struct PrivilegedPortTests {
    @Test("1023 down to 512, highest first")
    func range() {
        #expect(PrivilegedPort.range.first == 1023 && PrivilegedPort.range.last == 512 && PrivilegedPort.range.count == 512)
    }

    @Test("a port in use is skipped and the next one connects")
    func skipsPortInUse() throws {
        let server = tcpListener(), taken = tcpListener()
        defer { close(server.fd); close(taken.fd) }
        let free = freePort()
        let search = LoopbackSearch()
        let outcome = search.connect(from: [taken.port, free], to: server.port)
        guard case .connected(let fd) = outcome else { Issue.record("\(outcome)"); return }
        defer { close(fd) }
        #expect(localPort(fd) == free)
        #expect(search.socketsMade == 2)
    }

    @Test("every port in use: no free port, with the last errno")
    func noFreePort() {
        let server = tcpListener(), first = tcpListener(), second = tcpListener()
        defer { close(server.fd); close(first.fd); close(second.fd) }
        let search = LoopbackSearch()
        #expect(search.connect(from: [first.port, second.port], to: server.port) == .noFreePort(errno: EADDRINUSE))
        #expect(search.socketsMade == 2)
    }

    @Test("a connect that fails for the 4-tuple (EADDRNOTAVAIL, EADDRINUSE) tries the next port", arguments: [EADDRNOTAVAIL, EADDRINUSE])
    func connectRetried(error: Int32) throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let first = freePort(), second = freePort()
        var refused = false
        let search = LoopbackSearch()
        let outcome = search.connect(from: [first, second], to: server.port) { fd in
            if !refused {
                refused = true
                errno = error
                return -1
            }
            return withLoopback(server.port) { Glibc.connect(fd, $0, $1) }
        }
        guard case .connected(let fd) = outcome else { Issue.record("\(outcome)"); return }
        defer { close(fd) }
        #expect(localPort(fd) == second)
    }

    @Test("any other connect error ends the search (the caller's to report)")
    func connectRefused() throws {
        // Bound but not listening: a connect to it is refused, and no
        // search socket can be bound to it (and connect to itself).
        let closed = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(closed) }
        try #require(withLoopback(0) { bind(closed, $0, $1) } == 0)
        let search = LoopbackSearch()
        #expect(search.connect(from: [freePort(), freePort()], to: localPort(closed)) == .connectFailed(errno: ECONNREFUSED))
        #expect(search.socketsMade == 1)
    }

    @Test("a bind refused other than EADDRINUSE (no privilege) ends the search at that port")
    func bindRefused() {
        let port = freePort()
        var socketsMade = 0
        let outcome = PrivilegedPort.connect(
            from: [port, freePort()],
            socket: { () -> Int32 in
                socketsMade += 1
                return socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            },
            bind: { _, _ in
                errno = EACCES
                return -1
            },
            connect: { _ in 0 })
        #expect(outcome == .bindFailed(port: port, errno: EACCES))
        #expect(socketsMade == 1)
    }

    @Test("the caller's socket error is thrown as it is")
    func socketError() {
        struct NoSocket: Error, Equatable {}
        #expect(throws: NoSocket()) {
            try PrivilegedPort.connect(socket: { () throws(NoSocket) -> Int32 in throw NoSocket() },
                                       bind: { _, _ in 0 }, connect: { _ in 0 })
        }
    }

    @Test("as root: the privileged range, a port in use skipped", .enabled(if: geteuid() == 0, "binding ports below 1024 needs root"))
    func privilegedRange() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        // 1023 taken: by this socket, or already by someone else.
        let taker = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(taker) }
        let took = withLoopback(1023) { bind(taker, $0, $1) }
        try #require(took == 0 || errno == EADDRINUSE)
        let outcome = LoopbackSearch().connect(from: PrivilegedPort.range, to: server.port)
        guard case .connected(let fd) = outcome else { Issue.record("\(outcome)"); return }
        defer { close(fd) }
        #expect((512..<1023).contains(localPort(fd)))
    }

    @Test("to an address from an address: each socket its own, prepared, close-on-exec; a taken port skipped")
    func addresses() throws {
        let server = tcpListener(), taken = tcpListener()
        defer { close(server.fd); close(taken.fd) }
        let free = freePort()
        var prepared: [Int32] = []
        var closeOnExec = true
        let outcome = try PrivilegedPort.connect(
            to: loopbackAddress(port: server.port), from: { loopbackAddress(port: $0) }, ports: [taken.port, free],
            prepare: { fd in
                prepared.append(fd)
                closeOnExec = closeOnExec && fcntl(fd, F_GETFD) & FD_CLOEXEC != 0
            })
        guard case .connected(let fd) = outcome else { Issue.record("\(outcome)"); return }
        defer { close(fd) }
        #expect(localPort(fd) == free)
        #expect(prepared.count == 2 && prepared.last == fd)
        #expect(closeOnExec)
    }

    @Test("to an address: the connect's error is the outcome")
    func addressRefused() throws {
        let closed = try loopbackAddress(port: 0).socket()
        defer { close(closed) }
        try #require(loopbackAddress(port: 0).bind(closed) == 0)
        var made = 0
        let outcome = try PrivilegedPort.connect(to: loopbackAddress(port: localPort(closed)), from: { loopbackAddress(port: $0) },
                                                 ports: [0, 0], prepare: { _ in made += 1 })
        #expect(outcome == .connectFailed(errno: ECONNREFUSED))
        #expect(made == 1)
    }
}
