#if canImport(Glibc)
import Glibc
#endif
import MountProtocol
import SystemEdge
import Testing

/// A MountRPCServer on loopback (no rpcbind, kernel-chosen ports) called by
/// libtirpc's client over TCP and UDP.
@Suite struct MountRPCServerTests {
    struct Harness {
        let server: MountRPCServer
        let service: FakeMountService
        let log: LogRecorder

        func client(_ transport: MountTransport, version: UInt32 = 3, host: String = "127.0.0.1") throws -> MountRPCClient {
            let ports = server.boundPorts
            let port = try #require(transport == .tcp ? ports.tcp : ports.udp)
            return try MountRPCClient(host: host, port: port, transport: transport, version: version, timeout: .seconds(5))
        }
    }

    static func harness(versions: [UInt32] = [1, 3], address: String? = "127.0.0.1", service: FakeMountService = FakeMountService(),
                        idle: Duration = .seconds(60), maxConnections: Int = 256) throws -> Harness {
        let log = LogRecorder()
        let server = MountRPCServer(service: service, versions: versions, registerWithRpcbind: false, address: address,
                                    idleConnectionTimeout: idle, maxConnections: maxConnections, log: log.sink)
        try server.start()
        return Harness(server: server, service: service, log: log)
    }

    @Test(arguments: MountTransport.allCases, [UInt32(1), 3])
    func nullAnswersOnEveryVersion(transport: MountTransport, version: UInt32) throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        try h.client(transport, version: version).null()
        #expect(h.service.calls.isEmpty)
    }

    @Test(arguments: MountTransport.allCases)
    func mnt3ReturnsHandleAndFlavors(transport: MountTransport) throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let result = try h.client(transport).mount("/srv/a")
        #expect(result == .ok(fileHandle: FakeMountService.handle3, flavors: FakeMountService.flavors))
        guard case .mount(let path, let version, let peer)? = h.service.calls.first else {
            Issue.record("service not called: \(h.service.calls)")
            return
        }
        #expect(path == "/srv/a")
        #expect(version == 3)
        #expect(peer.address == "127.0.0.1")
        #expect(peer.transport == transport.rawValue)
        #expect(peer.port != 0)
    }

    @Test(arguments: MountTransport.allCases)
    func mnt1ReturnsA32ByteHandle(transport: MountTransport) throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let result = try h.client(transport, version: 1).mount("/srv/a")
        let padded = FakeMountService.handle1 + [UInt8](repeating: 0, count: 32 - FakeMountService.handle1.count)
        #expect(result == .ok(fileHandle: padded, flavors: []))
        #expect(h.service.calls.first.map { if case .mount(_, 1, _) = $0 { true } else { false } } == true)
    }

    @Test(arguments: MountTransport.allCases)
    func mntErrorStatuses(transport: MountTransport) throws {
        let h = try Self.harness(service: FakeMountService(answers: ["/srv/broken": .error(.serverfault)]))
        defer { h.server.stop() }
        let v3 = try h.client(transport)
        #expect(try v3.mount("/srv/secret") == .error(.access))
        #expect(try v3.mount("/nowhere") == .error(.noent))
        #expect(try v3.mount("/srv/broken") == .error(.serverfault))
        // v1 has no SERVERFAULT: it becomes EIO.
        #expect(try h.client(transport, version: 1).mount("/srv/broken") == .error(.io))
    }

    @Test(arguments: MountTransport.allCases)
    func mntPathOverTheLimitIsNametoolong(transport: MountTransport) throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let client = try h.client(transport)
        let limit = "/" + String(repeating: "p", count: 1023)
        #expect(try client.mount(limit + "x") == .error(.nametoolong))
        #expect(try client.mount("/" + String(repeating: "q", count: 5000)) == .error(.nametoolong))
        #expect(h.service.calls.isEmpty)
        #expect(h.log.all.contains { $0.contains("5001 bytes") })
        // Exactly 1024 bytes is allowed and reaches the service.
        #expect(try client.mount(limit) == .error(.noent))
        #expect(h.service.calls.count == 1)
        // The connection is still in step after skipping the long paths.
        try client.null()
    }

    @Test(arguments: MountTransport.allCases)
    func malformedArgumentsAreAGarbageArgsReply(transport: MountTransport) throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let client = try h.client(transport)
        let cases: [[UInt8]] = [
            [],                                     // no dirpath at all
            [0, 0, 0, 100, 0x2f, 0x61, 0, 0],       // 100 bytes announced, 2 sent
            [0xff, 0xff, 0xff, 0xff],               // 4 GiB announced
            [0, 0, 4, 1] + [UInt8](repeating: 0x61, count: 100), // too long and truncated
        ]
        for arguments in cases {
            for procedure in [MountProgram.Procedure.mnt, .umnt] {
                let error = #expect(throws: MountRPCError.self) { try client.call(procedure, arguments: arguments) }
                #expect(error?.rpcStatus == .cantDecodeArguments, "\(procedure) \(arguments.prefix(8))")
            }
        }
        #expect(h.service.calls.isEmpty)
        try client.null()
        #expect(try client.mount("/srv/a") == .ok(fileHandle: FakeMountService.handle3, flavors: FakeMountService.flavors))
    }

    @Test(arguments: MountTransport.allCases)
    func pathsThatAreNotTextNeverReachTheService(transport: MountTransport) throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let client = try h.client(transport)
        let invalidUTF8: [UInt8] = [0, 0, 0, 3, 0x2f, 0xff, 0xfe, 0]
        let embeddedNUL: [UInt8] = [0, 0, 0, 7] + Array("/srv/a".utf8.prefix(6)) + [0] + [0]
        for arguments in [invalidUTF8, embeddedNUL] {
            let reply = try client.call(.mnt, arguments: arguments)
            #expect(reply == [0, 0, 0, 2]) // MNT3ERR_NOENT
            _ = try client.call(.umnt, arguments: arguments)
        }
        #expect(h.service.calls.isEmpty)
    }

    @Test(arguments: MountTransport.allCases)
    func exportAndExportAll(transport: MountTransport) throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let exports = try h.client(transport).exports()
        #expect(exports.map(\.directory) == FakeMountService.exports.map(\.directory))
        #expect(exports.map(\.groups) == FakeMountService.exports.map(\.groups))
        let all = try h.client(transport, version: 1).exports(all: true)
        #expect(all.map(\.groups) == FakeMountService.exports.map(\.groups))
        // EXPORTALL does not exist in v3.
        let error = #expect(throws: MountRPCError.self) { try h.client(transport).exports(all: true) }
        #expect(error?.rpcStatus == .procedureUnavailable)
    }

    @Test(arguments: MountTransport.allCases)
    func dumpUmntUmntall(transport: MountTransport) throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let client = try h.client(transport)
        let list = try client.dump()
        #expect(list.map(\.host) == FakeMountService.mounts.map(\.host))
        #expect(list.map(\.directory) == FakeMountService.mounts.map(\.directory))
        try client.unmount("/srv/a")
        try client.unmountAll()
        let calls = h.service.calls
        #expect(calls.count == 3)
        guard calls.count == 3, case .unmount(let path, let peer) = calls[1], case .unmountAll(let allPeer) = calls[2] else {
            Issue.record("unexpected calls \(calls)")
            return
        }
        #expect(path == "/srv/a")
        #expect(peer.address == "127.0.0.1" && peer.transport == transport.rawValue)
        #expect(allPeer == peer)
        // A too-long UMNT path is acknowledged but not passed on.
        try client.unmount("/" + String(repeating: "x", count: 2000))
        #expect(h.service.calls.count == 3)
    }

    @Test(arguments: MountTransport.allCases)
    func unknownProceduresAndVersions(transport: MountTransport) throws {
        let h = try Self.harness(versions: [3])
        defer { h.server.stop() }
        let noProcedure = #expect(throws: MountRPCError.self) { try h.client(transport).call(procedure: 9, arguments: []) }
        #expect(noProcedure?.rpcStatus == .procedureUnavailable)
        for version: UInt32 in [1, 2, 4] {
            let mismatch = #expect(throws: MountRPCError.self) { try h.client(transport, version: version).null() }
            #expect(mismatch?.rpcStatus == .programVersionMismatch, "v\(version)")
        }
    }

    @Test(arguments: MountTransport.allCases)
    func handleLongerThanTheVersionAllowsIsRefusedAndLogged(transport: MountTransport) throws {
        let long = [UInt8](repeating: 9, count: 65)
        let h = try Self.harness(service: FakeMountService(answers: ["/srv/long": .ok(fileHandle: long, flavors: [1])]))
        defer { h.server.stop() }
        #expect(try h.client(transport).mount("/srv/long") == .error(.serverfault))
        #expect(try h.client(transport, version: 1).mount("/srv/long") == .error(.io))
        #expect(h.log.all.filter { $0.contains("exceeds") }.count == 2)
    }

    @Test func dualStackWildcardSeesIPv4ClientsAsIPv4() throws {
        let h = try Self.harness(address: nil)
        defer { h.server.stop() }
        for (host, transport) in [("127.0.0.1", MountTransport.tcp), ("127.0.0.1", .udp), ("::1", .tcp), ("::1", .udp)] {
            _ = try h.client(transport, host: host).mount("/srv/a")
        }
        let peers = h.service.calls.compactMap { call -> String? in
            if case .mount(_, _, let peer) = call { return "\(peer.address)/\(peer.transport)" }
            return nil
        }
        #expect(peers == ["127.0.0.1/tcp", "127.0.0.1/udp", "::1/tcp", "::1/udp"])
    }

    @Test func ipv6LoopbackOnly() throws {
        let h = try Self.harness(address: "::1")
        defer { h.server.stop() }
        #expect(try h.client(.tcp, host: "::1").mount("/srv/a") == .ok(fileHandle: FakeMountService.handle3, flavors: FakeMountService.flavors))
        #expect(throws: MountRPCError.self) { try h.client(.tcp, host: "127.0.0.1").null() }
    }

    @Test func halfSentCallDoesNotHoldTheServer() throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let port = try #require(h.server.boundPorts.tcp)
        // A record mark announcing 100 bytes, then 8 of them, then silence.
        let stalled = try connectedTCPSocket(port: port)
        defer { close(stalled) }
        let partial: [UInt8] = [0x80, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8]
        #expect(write(stalled, partial, partial.count) == partial.count)
        let clock = ContinuousClock()
        let elapsed = try clock.measure { try h.client(.tcp).null() }
        #expect(elapsed < .seconds(3))
    }

    @Test func idleConnectionsAreClosed() throws {
        let h = try Self.harness(idle: .milliseconds(200))
        defer { h.server.stop() }
        let client = try h.client(.tcp)
        try client.null()
        usleep(700_000)
        #expect(throws: MountRPCError.self) { try client.null() }
        try h.client(.tcp).null()
    }

    @Test func connectionsBeyondTheLimitCloseTheOldest() throws {
        let h = try Self.harness(maxConnections: 2)
        defer { h.server.stop() }
        let first = try h.client(.tcp)
        try first.null()
        usleep(20_000)
        let second = try h.client(.tcp)
        try second.null()
        usleep(20_000)
        let third = try h.client(.tcp)
        try third.null()
        #expect(throws: MountRPCError.self) { try first.null() }
        try second.null()
        try third.null()
    }

    @Test func manyClientsAtOnce() async throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let tcpPort = try #require(h.server.boundPorts.tcp)
        let udpPort = try #require(h.server.boundPorts.udp)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let transport: MountTransport = index % 2 == 0 ? .tcp : .udp
                    let client = try MountRPCClient(host: "127.0.0.1", port: transport == .tcp ? tcpPort : udpPort,
                                                    transport: transport, version: 3)
                    var good = 0
                    for _ in 0..<25 {
                        let result = try client.mount("/srv/a")
                        if result == .ok(fileHandle: FakeMountService.handle3, flavors: FakeMountService.flavors) { good += 1 }
                    }
                    return good
                }
            }
            var total = 0
            for try await good in group { total += good }
            #expect(total == 200)
        }
        #expect(h.service.calls.count == 200)
    }

    @Test func stopClosesEverythingAndIsFinal() throws {
        let h = try Self.harness()
        let ports = h.server.boundPorts
        let tcpPort = try #require(ports.tcp)
        let udpPort = try #require(ports.udp)
        let client = try h.client(.tcp)
        try client.null()
        h.server.stop()
        h.server.stop()
        #expect(h.server.boundPorts.tcp == nil && h.server.boundPorts.udp == nil)
        #expect(throws: MountRPCError.self) { try client.null() }
        #expect(throws: MountRPCError.self) {
            try MountRPCClient(host: "127.0.0.1", port: tcpPort, transport: .tcp, version: 3).null()
        }
        let restart = #expect(throws: MountRPCError.self) { try h.server.start() }
        #expect(restart?.step == .state)
        // Both ports are free again: the sockets are closed.
        let again = MountRPCServer(service: FakeMountService(), port: tcpPort, udp: false, registerWithRpcbind: false, address: "127.0.0.1")
        try again.start()
        again.stop()
        let againUDP = MountRPCServer(service: FakeMountService(), port: udpPort, tcp: false, registerWithRpcbind: false, address: "127.0.0.1")
        try againUDP.start()
        againUDP.stop()
    }

    @Test func fixedPortInUseIsABindError() throws {
        let h = try Self.harness()
        defer { h.server.stop() }
        let port = try #require(h.server.boundPorts.tcp)
        let second = MountRPCServer(service: FakeMountService(), port: port, udp: false, registerWithRpcbind: false, address: "127.0.0.1")
        let error = #expect(throws: MountRPCError.self) { try second.start() }
        #expect(error?.step == .bind)
        #expect(error?.errno == EADDRINUSE)
        #expect(error?.description.contains("tcp 127.0.0.1:\(port)") == true)
    }

    @Test(arguments: [
        ([UInt32(2)], true, true, "127.0.0.1"),
        ([], true, true, "127.0.0.1"),
        ([1, 3], false, false, "127.0.0.1"),
        ([3], true, true, "localhost"),
    ])
    func configurationErrors(versions: [UInt32], tcp: Bool, udp: Bool, address: String) {
        let server = MountRPCServer(service: FakeMountService(), versions: versions, tcp: tcp, udp: udp,
                                    registerWithRpcbind: false, address: address)
        let error = #expect(throws: MountRPCError.self) { try server.start() }
        #expect(error?.step == .configuration)
    }

    @Test func tcpOnlyAndUDPOnly() throws {
        let tcpOnly = MountRPCServer(service: FakeMountService(), udp: false, registerWithRpcbind: false, address: "127.0.0.1")
        try tcpOnly.start()
        defer { tcpOnly.stop() }
        #expect(tcpOnly.boundPorts.udp == nil)
        let port = try #require(tcpOnly.boundPorts.tcp)
        try MountRPCClient(host: "127.0.0.1", port: port, transport: .tcp, version: 1).null()
    }
}

/// A plain TCP connection to 127.0.0.1:`port`, for sending broken records.
func connectedTCPSocket(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    try #require(fd >= 0)
    let connected = SocketAddress.inet(address: 0x7F00_0001, port: port).withSockaddr { connect(fd, $0, $1) }
    try #require(connected == 0)
    return fd
}
