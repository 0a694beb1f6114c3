#if canImport(Glibc)
import Glibc
#endif
@testable import MountProtocol
import SystemEdge
import Testing

/// Debian's rpcbind, rpcinfo and showmount (nfs-utils) against the server.
/// An rpcbind is started for the test when none runs (it works in this
/// sandbox); an rpcbind that already runs is used only if no MOUNT server
/// is registered with it, so a real mountd is never disturbed.
enum RpcbindSandbox {
    static let rpcbind = Subprocess.tool("rpcbind")
    static let rpcinfo = Subprocess.tool("rpcinfo")
    static let showmount = Subprocess.tool("showmount")

    static var toolsPresent: Bool { rpcbind != nil && rpcinfo != nil && showmount != nil }

    static func listing() -> String? {
        guard let rpcinfo, let done = try? Subprocess.run([rpcinfo, "-p", "127.0.0.1"], seconds: 10), done.status == 0 else { return nil }
        return done.output
    }

    static var isRunning: Bool { listing() != nil }

    /// Registering program 100005 here disturbs nobody.
    static var usable: Bool {
        guard toolsPresent else { return false }
        guard let listing = listing() else { return true } // we start our own
        return !listing.contains("100005")
    }

    /// (version, proto, port) of program 100005 in `rpcinfo -p` output.
    static func mountEntries(_ listing: String) -> Set<String> {
        Set(listing.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 4, fields[0] == "100005" else { return nil }
            return "\(fields[1]) \(fields[2]) \(fields[3])"
        })
    }

    /// A port nobody is bound to right now (TCP and UDP).
    static func freePort() throws -> UInt16 {
        let probe = MountRPCServer(service: FakeMountService(), registerWithRpcbind: false, address: "127.0.0.1")
        try probe.start()
        defer { probe.stop() }
        return try #require(probe.boundPorts.tcp)
    }
}

@Suite(.serialized) struct RpcbindRegistrationTests {
    @Test(.enabled(if: RpcbindSandbox.toolsPresent && !RpcbindSandbox.isRunning, "needs rpcbind installed and not running"))
    func withoutRpcbindStartFailsAndLeavesNothingBehind() throws {
        let port = try RpcbindSandbox.freePort()
        let server = MountRPCServer(service: FakeMountService(), port: port, udp: false, registerWithRpcbind: true, address: "127.0.0.1")
        let clock = ContinuousClock()
        var thrown: MountRPCError?
        let elapsed = clock.measure { thrown = #expect(throws: MountRPCError.self) { try server.start() } }
        #expect(thrown?.step == .registration)
        #expect(thrown?.description.contains("(mountd v1, tcp, 127.0.0.1:\(port))") == true, "\(String(describing: thrown))")
        #expect(elapsed < .seconds(30))
        #expect(server.boundPorts.tcp == nil)
        // The listener was closed: the same port can be bound again.
        let again = MountRPCServer(service: FakeMountService(), port: port, udp: false, registerWithRpcbind: false, address: "127.0.0.1")
        try again.start()
        again.stop()
    }

    @Test(.enabled(if: RpcbindSandbox.usable, "needs rpcbind, rpcinfo, showmount, and no mountd registered with a running rpcbind"))
    func registersWithRpcbindAndAnswersShowmount() throws {
        let rpcinfo = try #require(RpcbindSandbox.rpcinfo)
        let showmount = try #require(RpcbindSandbox.showmount)
        var ours: pid_t?
        if !RpcbindSandbox.isRunning {
            let pid = try Subprocess.spawn([try #require(RpcbindSandbox.rpcbind), "-f"])
            ours = pid
            for _ in 0..<50 where !RpcbindSandbox.isRunning { usleep(100_000) }
        }
        defer {
            if let ours {
                kill(ours, SIGTERM)
                _ = Subprocess.wait(ours)
            }
        }
        try #require(RpcbindSandbox.isRunning, "rpcbind did not come up")

        // A stale entry, as a mountd that died would leave: start() replaces it.
        let stale = RpcbindEntry(version: 3, netid: "tcp", address: try #require(SocketAddress(numericHost: "0.0.0.0", port: 1)))
        try Rpcbind.register(stale)

        // Production shape: every address (dual-stack), both versions, both transports.
        let server = MountRPCServer(service: FakeMountService(), registerWithRpcbind: true)
        try server.start()
        var stopped = false
        defer { if !stopped { server.stop() } }
        let tcpPort = try #require(server.boundPorts.tcp)
        let udpPort = try #require(server.boundPorts.udp)

        let listing = try #require(RpcbindSandbox.listing())
        #expect(RpcbindSandbox.mountEntries(listing) == [
            "1 tcp \(tcpPort)", "3 tcp \(tcpPort)", "1 udp \(udpPort)", "3 udp \(udpPort)",
        ], "\(listing)")

        // rpcbind v3/v4 entries carry the IPv6 netids too.
        let netids = try Subprocess.run([rpcinfo, "-s", "127.0.0.1"])
        let mountLine = netids.output.split(separator: "\n").first { $0.split(separator: " ").first == "100005" }
        for netid in ["tcp", "udp", "tcp6", "udp6"] {
            #expect(mountLine?.split(separator: " ").contains { $0.split(separator: ",").contains(Substring(netid)) } == true,
                    "\(netid) in \(netids.output)")
        }

        // rpcinfo's NULL calls, found through rpcbind.
        for (flag, version) in [("-t", "3"), ("-u", "1"), ("-t", "1"), ("-u", "3")] {
            let ping = try Subprocess.run([rpcinfo, flag, "127.0.0.1", "100005", version])
            #expect(ping.status == 0 && ping.output.contains("version \(version) ready and waiting"), "\(ping.output)")
        }

        // nfs-utils' showmount: EXPORT and DUMP through its own XDR routines.
        let exports = try Subprocess.run([showmount, "-e", "127.0.0.1"])
        #expect(exports.status == 0, "\(exports.output)")
        let exportLines = exports.output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(exportLines == [
            "Export list for 127.0.0.1:",
            "/srv/a client1,192.0.2.0/24",
            "/srv/b (everyone)",
            "/srv/vm5 vsock:5",
        ], "\(exports.output)")
        let all = try Subprocess.run([showmount, "-a", "127.0.0.1"])
        #expect(all.status == 0 && all.output.contains("192.0.2.7:/srv/a") && all.output.contains("client1:/srv/vm5"), "\(all.output)")

        server.stop()
        stopped = true
        let after = try #require(RpcbindSandbox.listing())
        #expect(RpcbindSandbox.mountEntries(after).isEmpty, "\(after)")
        let gone = try Subprocess.run([showmount, "-e", "127.0.0.1"])
        #expect(gone.status != 0)
    }
}
