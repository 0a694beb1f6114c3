import Glibc
import Testing
import CLinux
import NFSAdmin
import NFSExports
import SystemEdge
import TestSupport
@testable import GuestMount
@testable import VsockBridge

@Suite("mount.vsock arguments")
struct MountVsockRequestTests {
    @Test("specs, options and defaults", arguments: [
        (["2:/srv/vm5", "/mnt"], 2, 2049, "/srv/vm5", "vers=4.1,proto=tcp"),
        ([":/srv/a", "/mnt", "-o", "ro,soft"], 2, 2049, "/srv/a", "vers=4.1,proto=tcp,ro,soft"),
        (["1:/export", "/mnt", "-o", "vsock_port=3049,vers=4.2,defaults,_netdev"], 1, 3049, "/export", "proto=tcp,vers=4.2"),
        (["/x:/y", "/mnt"], 2, 2049, "", ""),
        (["2:/a", "/mnt", "-o", "vers=4"], 2, 2049, "/a", "proto=tcp,vers=4"),
        (["2:/a", "/mnt", "-o", "v4.2"], 2, 2049, "/a", "proto=tcp,v4.2"),
        (["2:/a", "/mnt", "-o", "minorversion=1"], 2, 2049, "/a", "proto=tcp,minorversion=1"),
    ] as [([String], UInt32, UInt32, String, String)])
    func parse(arguments: [String], cid: UInt32, port: UInt32, export: String, options: String) {
        guard let request = try? MountVsockRequest.parse(arguments) else {
            #expect(export.isEmpty, "rejected \(arguments)")
            return
        }
        #expect(request.cid == cid && request.vsockPort == port && request.export == export)
        #expect(request.nfsOptions.joined(separator: ",") == options)
        #expect(request.mountOptionAttempts(relayPort: 40000).allSatisfy { $0.hasSuffix("port=40000,addr=127.0.0.1") })
    }

    // Found by fuzz-mount-options: an option starting with a combining mark
    // merged with the comma before it, so the two options stayed one.
    @Test("options split at every comma, whatever follows it")
    func commaBeforeCombiningMark() throws {
        let request = try MountVsockRequest.parse(["2:/a", "/m", "-o", "rsize=4096,\u{312}x"])
        #expect(request.nfsOptions.contains("rsize=4096"), "\(request.nfsOptions)")
    }

    @Test("bad arguments say what is wrong", arguments: [
        (["2:/a"], "usage"), (["x:/a", "/m"], "bad CID"), (["2:a", "/m"], "must be absolute"),
        (["2:/a", "/m", "-o", "vers=3"], "NFSv4 only"), (["2:/a", "/m", "-o", "port=1"], "chosen by mount.vsock"),
        (["2:/a", "/m", "-q"], "unknown option"),
        (["2:/a", "/m", "-o", "v3"], "v3: NFS over vsock is NFSv4 only"),
        (["2:/a", "/m", "-o", "nfsvers=2"], "nfsvers=2: NFS over vsock is NFSv4 only"),
        (["2:/a", "/m", "-o", "vers=4.3"], "vers=4.3: not an NFS version mount.vsock knows"),
        (["2:/a", "/m", "-o", "minorversion=one"], "minorversion=one: not an NFS version"),
        // Found by fuzz-mount-options: an empty port crashed (index out of
        // range), and a second '=' was ignored (vsock_port=5=6 meant 5).
        (["2:/a", "/m", "-o", "vsock_port="], "bad vsock port"),
        (["2:/a", "/m", "-o", "vsockport=5=6"], "bad vsock port"),
    ])
    func bad(arguments: [String], message: String) {
        do {
            _ = try MountVsockRequest.parse(arguments)
            Issue.record("accepted \(arguments)")
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test("NFSv4.0 is refused, however it is asked for (the kernel's rules: the last option wins)", arguments: [
        ("vers=4.0", "vers=4.0"), ("nfsvers=4.0", "nfsvers=4.0"), ("v4.0", "v4.0"),
        ("minorversion=0", "minorversion=0"), ("vers=4,minorversion=0", "minorversion=0"),
        ("minorversion=0,vers=4", "minorversion=0"), ("nfsvers=4,minorversion=0", "minorversion=0"),
        ("vers=4.1,minorversion=0", "minorversion=0"), ("minorversion=2,vers=4.0", "vers=4.0"),
        ("minorversion=00", "minorversion=00"), ("minorversion=0x0", "minorversion=0x0"), ("minorversion=+0", "minorversion=+0"),
        ("ro,vers=4.2,soft,vers=4.0", "vers=4.0"),
    ])
    func nfsV40Refused(options: String, named: String) {
        do {
            _ = try MountVsockRequest.parse(["2:/a", "/m", "-o", options])
            Issue.record("accepted -o \(options)")
        } catch {
            #expect(error.message.hasPrefix("\(named): NFSv4.0 is refused: the host serves only NFSv4.1 and 4.2 to vsock guests"), "\(error.message)")
            #expect(error.message.contains("an NFSv4.0 callback would make the host's NFS server connect out to an address the guest names"))
            #expect(error.message.hasSuffix("use vers=4.1 or vers=4.2 (4.1 is the default)"))
        }
    }

    @Test("which version the kernel gets", arguments: [
        ([], .unspecified), (["ro", "soft"], .unspecified),
        (["vers=4"], .v4AnyMinor), (["nfsvers=4"], .v4AnyMinor), (["v4"], .v4AnyMinor),
        (["vers=4.1"], .v4(minor: 1)), (["vers=4.2"], .v4(minor: 2)), (["v4.1"], .v4(minor: 1)),
        (["minorversion=2"], .v4(minor: 2)), (["vers=4", "minorversion=1"], .v4(minor: 1)),
        (["vers=4.2", "vers=4"], .v4(minor: 2)), (["minorversion=0", "vers=4.1"], .v4(minor: 1)),
        (["vers=4.0", "vers=4.2"], .v4(minor: 2)), (["minorversion=0x2"], .v4(minor: 2)),
    ] as [([String], NFSVersionChoice)])
    func versionChoice(options: [String], expected: NFSVersionChoice) throws {
        #expect(try NFSVersionChoice.choose(options) == expected)
    }

    @Test("a bare vers=4 is negotiated 4.2, then 4.1 (mount(2) alone would make it 4.0); anything else is one attempt")
    func minorVersionAttempts() throws {
        let bare = try MountVsockRequest.parse(["2:/a", "/m", "-o", "vers=4,ro"])
        #expect(bare.mountOptionAttempts(relayPort: 901) == [
            "proto=tcp,vers=4,ro,minorversion=2,port=901,addr=127.0.0.1",
            "proto=tcp,vers=4,ro,minorversion=1,port=901,addr=127.0.0.1",
        ])
        let plain = try MountVsockRequest.parse(["2:/a", "/m"])
        #expect(plain.mountOptionAttempts(relayPort: 1023) == ["vers=4.1,proto=tcp,port=1023,addr=127.0.0.1"])
        let pinned = try MountVsockRequest.parse(["2:/a", "/m", "-o", "vers=4,minorversion=2"])
        #expect(pinned.mountOptionAttempts(relayPort: 1023).count == 1)
    }

    @Test("what mount(8) passes a helper: -t, -s, -n, -v, -o with fstab-only options", arguments: [
        (["1:/vm1", "/mnt/x", "-o", "rw"], "vers=4.1,proto=tcp,rw"),
        (["1:/vm1", "/mnt/x", "-s", "-n", "-v", "-t", "vsock", "-o", "rw,soft"], "vers=4.1,proto=tcp,rw,soft"),
        (["1:/vm1", "/mnt/y", "-o", "rw,noauto,_netdev,defaults,nofail,x-systemd.automount,comment=x,soft"], "vers=4.1,proto=tcp,rw,soft"),
        (["1:/vm1", "/mnt/y", "-o", "user,exec"], "vers=4.1,proto=tcp,nosuid,nodev,noexec,exec"),
    ])
    func mountHelperArguments(arguments: [String], options: String) throws {
        let request = try MountVsockRequest.parse(arguments)
        #expect(request.cid == 1 && request.export == "/vm1")
        #expect(request.nfsOptions.joined(separator: ",") == options)
    }

    @Test("mount --namespace is refused, not ignored")
    func namespace() {
        #expect(throws: MountVsockRequest.Problem.self) { try MountVsockRequest.parse(["1:/a", "/m", "-N", "/proc/1/ns/mnt"]) }
    }

    @Test("failures say what to do", arguments: [
        (MountVsockProblem.hostUnreachable(errno: ECONNRESET, cid: 2, port: 2049), "the host (CID 2) is not listening on vsock port 2049"),
        (MountVsockProblem.hostUnreachable(errno: ECONNREFUSED, cid: 2, port: 3049), "-o vsock_port=N"),
        (MountVsockProblem.hostUnreachable(errno: ENODEV, cid: 2, port: 2049), "no vsock device in this guest to reach CID 2"),
        (MountVsockProblem.hostUnreachable(errno: ETIMEDOUT, cid: 9, port: 2049), "the host is CID 2 as a guest sees it"),
        (MountVsockProblem.noVsockSocket(errno: EAFNOSUPPORT), "no vsock support in this guest kernel"),
        (MountVsockProblem.mountFailed(errno: EPERM, export: "/vm1", cid: 2), "the host refused /vm1 to this guest"),
        (MountVsockProblem.mountFailed(errno: EACCES, export: "/vm1", cid: 2), "a secure export (the default) needs a privileged port"),
        (MountVsockProblem.mountFailed(errno: ENOENT, export: "/nothere", cid: 2), "the host has no export /nothere for this guest"),
        (MountVsockProblem.mountFailed(errno: EIO, export: "/a", cid: 2), "mounting /a over vsock CID 2 failed"),
        (MountVsockProblem.noPrivilegedPort(sysctlValue: "0\n"), "net.ipv4.ip_unprivileged_port_start is 0 in this guest: no port is left that only root may bind"),
        (MountVsockProblem.noPrivilegedPort(sysctlValue: "1\n"), "sysctl -w net.ipv4.ip_unprivileged_port_start=1024"),
        (MountVsockProblem.noPrivilegedPort(sysctlValue: ""), "net.ipv4.ip_unprivileged_port_start is empty in this guest"),
        (MountVsockProblem.relayListenFailed(SystemError("bind", "127.0.0.1 (ports 1023 down to 1, all in use)", errno: EADDRINUSE)),
         "no free privileged port for the relay on 127.0.0.1 (bind 127.0.0.1 (ports 1023 down to 1, all in use): Address already in use)"),
        (MountVsockProblem.relayListenFailed(SystemError("bind", "127.0.0.1:1023", errno: EACCES)),
         "cannot listen on guest loopback for the relay (bind 127.0.0.1:1023: Permission denied)"),
        (MountVsockProblem.loopbackDown(SystemError("ioctl(SIOCSIFFLAGS)", "lo up", errno: EPERM)),
         "cannot bring the loopback interface lo up (ioctl(SIOCSIFFLAGS) lo up: Operation not permitted): the relay listens on 127.0.0.1"),
    ])
    func messages(message: String, expected: String) {
        #expect(message.contains(expected), "\(message)")
    }

    @Test("the relay stays while an NFS client uses its port (trunked mounts share the first transport)")
    func nfsClientList() {
        let servers = """
            NV SERVER   PORT USE HOSTNAME
            v4 7f000001  84d1   2 127.0.0.1
            v4 0a000001   801   1 10.0.0.1

            """
        #expect(MountWatch.serverListUses(servers, port: 0x84d1))
        #expect(!MountWatch.serverListUses(servers, port: 2049), "another host's client on 2049 is not ours")
        #expect(!MountWatch.serverListUses("NV SERVER   PORT USE HOSTNAME\n", port: 0x84d1))
    }

    @Test("the relay's mount: through its port, or its export on a shared superblock (another relay's port)")
    func mountTable() {
        let table = """
            tmpfs /tmp tmpfs rw 0 0
            127.0.0.1:/vm1 /mnt/x nfs4 rw,vers=4.1,port=33209,addr=127.0.0.1 0 0
            127.0.0.1:/vm1 /mnt/y nfs4 rw,vers=4.1,port=33209,addr=127.0.0.1 0 0
            127.0.0.1:/a\\040b /mnt/a\\040b nfs4 rw,port=40000 0 0

            """
        #expect(MountWatch.mountTableLists(table, directory: "/mnt/x", export: "/vm1", port: 33209))
        #expect(MountWatch.mountTableLists(table, directory: "/mnt/y", export: "/vm1", port: 42521), "y shares x's superblock")
        #expect(!MountWatch.mountTableLists(table, directory: "/mnt/y", export: "/other", port: 42521))
        #expect(!MountWatch.mountTableLists(table, directory: "/mnt/z", export: "/vm1", port: 33209))
        #expect(!MountWatch.mountTableLists(table, directory: "/tmp", export: "/vm1", port: 33209), "not NFS")
        #expect(MountWatch.mountTableLists(table, directory: "/mnt/a b", export: "/a b", port: 1), "escaped spaces")
    }

    @Test("an idle relay sleeps on the mount table while its mount is there, and looks every second otherwise")
    func relayWakeups() {
        #expect(RelayLifetime.waitSeconds(mounted: true) == 60)
        #expect(RelayLifetime.waitSeconds(mounted: false) == 1)
        // The lifetime rules stay what they were: mounted means in use.
        var relay = RelayLifetime(started: 0)
        let whileMounted = relay.shouldExit(inUse: true, openConnections: 0, now: 500)
        let afterUmount = relay.shouldExit(inUse: false, openConnections: 0, now: 560)
        #expect(!whileMounted && afterUmount)
    }

    @Test("the relay's lifetime: in use, then idle or a teardown grace; never mounted: two minutes")
    func relayLifetime() {
        var relay = RelayLifetime(started: 0)
        func exits(_ inUse: Bool, _ open: Int, _ now: Int) -> Bool {
            relay.shouldExit(inUse: inUse, openConnections: open, now: now)
        }
        #expect(!exits(false, 0, 119), "mount(2) may still be on its way")
        #expect(exits(false, 0, 120))
        relay = RelayLifetime(started: 0)
        #expect(!exits(false, 1, 500), "a connection before any mount: still mounting")
        #expect(!exits(true, 1, 501))
        #expect(!exits(true, 0, 600), "a trunked client between connections")
        #expect(!exits(false, 1, 601), "teardown traffic after umount")
        #expect(!exits(false, 1, 605))
        #expect(!exits(true, 1, 606), "in use again: the grace starts over")
        #expect(!exits(false, 1, 607))
        #expect(exits(false, 1, 612), "a connection nothing uses is dropped after the grace")
        relay = RelayLifetime(started: 0)
        #expect(!exits(true, 1, 1))
        #expect(exits(false, 0, 2), "unused and idle: at once")
    }

    @Test("generic mount options become flags")
    func flags() {
        let (flags, data) = MountFlags.split("ro,nosuid,vers=4.1,noatime,port=5")
        #expect(flags == UInt(MS_RDONLY) | UInt(MS_NOSUID) | UInt(MS_NOATIME))
        #expect(data == "vers=4.1,port=5")
    }
}

func connectUnix(_ path: String) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    let status = try! BridgeListeners.unixAddress(path).withSockaddr { connect(fd, $0, $1) }
    return status == 0 ? fd : -1
}

@Suite("bridge")
struct BridgeTests {
    @Test("a hybrid-vsock guest reaches the server from its CID's loopback address, data intact both ways, its RPCs counted")
    func identityAndData() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let path = "/tmp/bridge-test-\(getpid()).sock"
        defer { unlink(path) }
        var configuration = BridgeConfiguration()
        configuration.targetPort = server.port
        configuration.unixListeners = [.init(path: path, cid: 7)]
        let bridge = Bridge(configuration: configuration, log: DaemonLog(name: "test", environment: [:], debug: false))
        bridge.start(try BridgeListeners.open(configuration))

        let guest = connectUnix(path)
        #expect(guest >= 0)
        defer { close(guest) }
        let (accepted, peer) = SocketAddress.accept(server.fd)
        #expect(accepted >= 0)
        defer { close(accepted) }
        #expect(peer?.numericHost == "127.128.0.7")
        #expect((peer?.ipPort ?? 0) >= 1024, "a hybrid guest counts as unprivileged")
        #expect(bridge.guests == [7: 1])

        // An RPC call and its reply (counted), then bytes that are not RPC
        // (forwarded all the same).
        let call = RPCMessage.record(RPCMessage.call(xid: 42))
        let reply = RPCMessage.record(RPCMessage.reply(xid: 42))
        sendAll(guest, call)
        #expect(receive(accepted, call.count) == call)
        sendAll(accepted, reply)
        #expect(receive(guest, reply.count) == reply)
        var generator = SystemRandomNumberGenerator()
        let random = (0..<1_000_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        // msg_type 7: the parser gives up whatever the random bytes hold.
        let upstream = RPCMessage.words([0x8000_0010, 1, 7, 0, 0]) + random
        DetachedThread.start { sendAll(guest, upstream) }
        #expect(receive(accepted, upstream.count) == upstream)
        let downstream = Array("reply from the server".utf8)
        sendAll(accepted, downstream)
        #expect(receive(guest, downstream.count) == downstream)

        // The status counts the bytes each way while the connection is open.
        func guest7() -> BridgeStatus.Guest? { bridge.guestStatus(now: 100).first { $0.cid == 7 } }
        for _ in 0..<200 where guest7()?.bytesToGuest != UInt64(reply.count + downstream.count) { usleep(10_000) }
        let counted = try #require(guest7())
        #expect(counted.address == "127.128.0.7" && counted.open == 1 && counted.accepted == 1)
        #expect(counted.bytesFromGuest == UInt64(call.count + upstream.count) && counted.bytesToGuest == UInt64(reply.count + downstream.count))
        #expect(counted.rpc?.calls == 1 && counted.rpc?.replies == 1 && counted.rpc?.latency.count == 1)
        #expect(counted.rpc?.unparsedConnections == 1)
        #expect(counted.lastActivity == 100)
        #expect(guest7()?.lastActivity == 100, "no bytes moved: the last activity stays")
    }

    @Test("a guest over its connection limit is refused; others are not affected")
    func limits() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let path = "/tmp/bridge-limit-\(getpid()).sock"
        let other = "/tmp/bridge-limit-other-\(getpid()).sock"
        defer { unlink(path); unlink(other) }
        var configuration = BridgeConfiguration()
        configuration.targetPort = server.port
        configuration.maxConnectionsPerGuest = 2
        configuration.unixListeners = [.init(path: path, cid: 9), .init(path: other, cid: 10)]
        let bridge = Bridge(configuration: configuration, log: DaemonLog(name: "test", environment: [:], debug: false))
        bridge.start(try BridgeListeners.open(configuration))
        let first = connectUnix(path), second = connectUnix(path)
        defer { close(first); close(second) }
        // Wait until both are forwarded.
        for _ in 0..<200 where bridge.guests[9, default: 0] < 2 { usleep(10_000) }
        #expect(bridge.guests[9] == 2)
        let third = connectUnix(path)
        defer { close(third) }
        var byte: UInt8 = 0
        #expect(recv(third, &byte, 1, 0) == 0, "the third connection is closed at once")
        let fourth = connectUnix(other)
        defer { close(fourth) }
        for _ in 0..<200 where bridge.guests[10, default: 0] < 1 { usleep(10_000) }
        #expect(bridge.guests[10] == 1, "another guest still gets in")
        let status = bridge.guestStatus(now: 0)
        #expect(status.map(\.cid) == [9, 10])
        #expect(status[0].open == 2 && status[0].accepted == 2 && status[0].refused == 1)
        #expect(status[1].open == 1 && status[1].refused == 0)
    }

    @Test("a guest that never reads its replies is held back (bounded bytes taken from it) and another guest is served meanwhile")
    func backpressure() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let flooderPath = "/tmp/bridge-flood-\(getpid()).sock", calmPath = "/tmp/bridge-calm-\(getpid()).sock"
        defer { unlink(flooderPath); unlink(calmPath) }
        var configuration = BridgeConfiguration()
        configuration.targetPort = server.port
        configuration.unixListeners = [.init(path: flooderPath, cid: 11), .init(path: calmPath, cid: 12)]
        let bridge = Bridge(configuration: configuration, log: DaemonLog(name: "test", environment: [:], debug: false))
        bridge.start(try BridgeListeners.open(configuration))
        // A server that behaves like nfsd: per connection, a 1 KiB request
        // gets a 64 KiB reply, and while a reply cannot be written it reads
        // no further requests.
        let reply = pattern(65536, seed: 4)
        let listener = server.fd
        DetachedThread.start {
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 { return }
                DetachedThread.start {
                    while receive(connection, 1024).count == 1024 { sendAll(connection, reply) }
                    close(connection)
                }
            }
        }
        let flooder = connectUnix(flooderPath)
        #expect(flooder >= 0)
        defer { close(flooder) }
        _ = fcntl(flooder, F_SETFL, fcntl(flooder, F_GETFL) | O_NONBLOCK)
        let request = [UInt8](repeating: 0x55, count: 1024)
        var taken = 0
        var idleRounds = 0
        // Send until the bridge has taken nothing for 1 s (or 64 MiB went in:
        // unbounded buffering).
        while idleRounds < 100 && taken < 64 << 20 {
            let count = request.withUnsafeBytes { send(flooder, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                taken += count
                idleRounds = 0
            } else {
                #expect(errno == EAGAIN, "send: \(errno)")
                if errno != EAGAIN { break }
                idleRounds += 1
                usleep(10_000)
            }
        }
        #expect(idleRounds == 100, "the flooder was never held back (\(taken) bytes taken)")
        #expect(taken < 32 << 20, "the flooder got \(taken) bytes in: buffering is not bounded")

        let calm = connectUnix(calmPath)
        #expect(calm >= 0)
        defer { close(calm) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(calm, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        sendAll(calm, request)
        #expect(receive(calm, reply.count) == reply, "the other guest's reply, within 5 s")
    }

    @Test("the status file follows connections and is removed on stop")
    func publisher() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let directory = "/tmp/bridge-status-\(getpid())"
        let path = "/tmp/bridge-status-\(getpid()).sock"
        defer { unlink(path); _ = system("rm -rf \(directory)") }
        var configuration = BridgeConfiguration()
        configuration.targetPort = server.port
        configuration.unixListeners = [.init(path: path, cid: 5)]
        let log = DaemonLog(name: "test", environment: [:], debug: false)
        let bridge = Bridge(configuration: configuration, log: log)
        let listeners = try BridgeListeners.open(configuration)
        bridge.start(listeners)
        let file = BridgeStatusFile(path: directory + "/status")
        let publisher = BridgeStatusPublisher(bridge: bridge, file: file, log: log)
        publisher.start()
        guard case .running(let empty) = file.read() else {
            Issue.record("no status after start: \(file.read())")
            return
        }
        #expect(empty.pid == getpid() && empty.guests.isEmpty && empty.listeners == [.unix(path: path, cid: 5)])
        let guest = connectUnix(path)
        defer { close(guest) }
        func openConnections() -> Int? {
            guard case .running(let status) = file.read() else { return nil }
            return status.guests.first { $0.cid == 5 }?.open
        }
        // Published within a second of the connection, without polling faster.
        for _ in 0..<150 where openConnections() != 1 { usleep(10_000) }
        #expect(openConnections() == 1)
        publisher.stop()
        #expect(file.read() == .absent)
    }
}

@Suite("connection quotas")
struct ConnectionQuotaTests {
    private func refusal(open: Int, unprivilegedOpen: Int, total: Int = 0, unprivileged: Bool) -> String? {
        var limits = BridgeConfiguration()
        limits.maxConnectionsPerGuest = 16
        limits.maxUnprivilegedPerGuest = 4
        limits.maxConnections = 100
        var record = Bridge.GuestRecord()
        record.open = open
        record.openUnprivileged = unprivilegedOpen
        return Bridge.quotaRefusal(cid: 5, record: record, total: total, unprivileged: unprivileged, limits: limits)
    }

    @Test("a guest's users cannot take its kernel's slots: unprivileged ports have their own quota")
    func ownQuota() {
        #expect(refusal(open: 3, unprivilegedOpen: 3, unprivileged: true) == nil)
        let full = refusal(open: 4, unprivilegedOpen: 4, unprivileged: true)
        #expect(full?.contains("guest 5 has 4 connections from unprivileged ports (limit 4") == true, "\(full ?? "nil")")
        // Four unprivileged ones open: the kernel still gets all 16 of its own.
        #expect(refusal(open: 4 + 15, unprivilegedOpen: 4, unprivileged: false) == nil)
        let kernelFull = refusal(open: 4 + 16, unprivilegedOpen: 4, unprivileged: false)
        #expect(kernelFull?.contains("guest 5 has 16 connections (limit 16)") == true, "\(kernelFull ?? "nil")")
        // Privileged ones do not use up the unprivileged quota either.
        #expect(refusal(open: 16, unprivilegedOpen: 0, unprivileged: true) == nil)
    }

    @Test("guests that flood fill the bridge only up to its reserve: a guest with no connection still gets its first")
    func reserve() {
        // maxConnections 100: the last 6 (100 / 16) are kept for newcomers.
        #expect(BridgeConfiguration().reservedForNewGuests == 1024 / 16)
        #expect(refusal(open: 3, unprivilegedOpen: 0, total: 93, unprivileged: false) == nil)
        let flooder = refusal(open: 3, unprivilegedOpen: 0, total: 94, unprivileged: false)
        #expect(flooder?.contains("its last 6 are kept for guests that have none, and guest 5 has 3") == true, "\(flooder ?? "nil")")
        #expect(refusal(open: 0, unprivilegedOpen: 0, total: 94, unprivileged: false) == nil, "a newcomer takes a reserved slot")
        #expect(refusal(open: 0, unprivilegedOpen: 0, total: 99, unprivileged: true) == nil)
        var tiny = BridgeConfiguration()
        tiny.maxConnections = 8
        #expect(tiny.reservedForNewGuests == 1)
    }

    @Test("the total cap comes first, for either kind")
    func total() {
        for unprivileged in [true, false] {
            let refused = refusal(open: 0, unprivilegedOpen: 0, total: 100, unprivileged: unprivileged)
            #expect(refused?.contains("the bridge has 100 connections (limit 100)") == true)
        }
    }
}

/// A /proc/net/tcp of a guest with a relay on 127.0.0.1:1023 (and another
/// on 1022), as the kernel prints it on a little-endian machine.
private let guestTCPTable = """
      sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
       0: 0100007F:03FF 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18113 1 0000000000000000 100 0 0 10 0                     
       1: 0100007F:03FE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18260 1 0000000000000000 100 0 0 10 0                     
       2: 0100007F:0385 0100007F:03FF 01 00000000:00000000 00:00000000 00000000     0        0 20512 1 0000000000000000 20 4 30 10 -1                    
       3: 0100007F:03FF 0100007F:0385 01 00000000:00000000 00:00000000 00000000     0        0 20513 1 0000000000000000 20 4 28 10 -1                    
       4: 0100007F:02BC 0100007F:03FF 01 00000000:00000000 00:00000000 00000000 65534        0 20777 1 0000000000000000 20 4 30 10 -1                    
       5: 0100007F:02BD 0100007F:03FF 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000                                      
       6: 0100007F:02BE 0100007F:03FF 05 00000000:00000000 03:00000BB8 00000000     0        0 0 3 0000000000000000                                      
       7: 0100007F:A3F2 0100007F:03FF 01 00000000:00000000 02:000A7D8C 00000000  1000        0 21044 2 0000000000000000 20 4 31 10 -1                    
       8: 0100007F:0386 0100007F:03FE 01 00000000:00000000 00:00000000 00000000     0        0 20601 1 0000000000000000 20 4 30 10 -1                    
       9: 0F02000A:0016 0202000A:C350 01 00000000:00000000 02:0009E2A2 00000000     0        0 17655 4 0000000000000000 20 4 29 10 -1                    

    """

private func loopback(_ port: UInt16) -> TCPEndpoint { TCPEndpoint(address: TCPEndpoint.loopback, port: port) }

/// The local end of a connected or bound socket.
private func localEndpoint(_ fd: Int32) -> TCPEndpoint {
    guard case .inet(let address, let port)? = SocketAddress.local(of: fd) else { return TCPEndpoint(address: 0, port: 0) }
    return TCPEndpoint(address: address, port: port)
}

/// `fd` bound to 127.0.0.1:`port` (0: any) and connected to 127.0.0.1:`target`;
/// -1 if either fails (after a failed bind the socket can try another port).
private func connectLoopback(to target: UInt16, from port: UInt16, socket fd: Int32) -> Int32 {
    let bound = SocketAddress.inet(address: TCPEndpoint.loopback, port: port).withSockaddr { bind(fd, $0, $1) }
    guard bound == 0 else { return -1 }
    let connected = SocketAddress.inet(address: TCPEndpoint.loopback, port: target).withSockaddr { connect(fd, $0, $1) }
    return connected == 0 ? fd : -1
}

@Suite("mount.vsock relay security")
struct RelaySecurityTests {
    @Test("the sysctl's text: a number, 1024 without the file (kernels before 4.11), nil for anything else", arguments: [
        ("1024\n", 1024), ("0\n", 0), ("600\n", 600), (" 80 \n", 80), ("65535\n", 65535), ("x\n", nil), ("", nil),
    ] as [(String, Int?)])
    func sysctlText(text: String, start: Int?) {
        #expect(RelayPortChoice.unprivilegedPortStart(sysctlText: text) == start)
    }

    @Test("no sysctl file: ports below 1024 are privileged")
    func noSysctlFile() {
        #expect(RelayPortChoice.unprivilegedPortStart(sysctlText: nil) == 1024)
    }

    @Test("the relay's ports: below the sysctl, at most 1023, highest first; none when the sysctl is 0 or 1", arguments: [
        (1024, 1023, 1023), (65535, 1023, 1023), (2000, 1023, 1023), (600, 599, 599), (2, 1, 1), (1, nil, 0), (0, nil, 0), (-3, nil, 0),
    ] as [(Int, UInt16?, Int)])
    func candidates(start: Int, first: UInt16?, count: Int) {
        let ports = RelayPortChoice.candidates(unprivilegedPortStart: start)
        #expect(ports.first == first && ports.count == count)
        #expect(ports.isEmpty || ports.last == 1)
        #expect(zip(ports, ports.dropFirst()).allSatisfy { $0 == $1 + 1 }, "every port, downward")
    }

    @Test("a privileged vsock port needs a TCP port below 1024 and a root-owned socket", arguments: [
        (901, 0, true), (1023, 0, true), (1, 0, true), (700, 65534, false), (700, 1000, false), (901, nil, false),
        (1024, 0, false), (41970, 0, false),
    ] as [(UInt16, UInt32?, Bool)])
    func privilegeRule(port: UInt16, owner: UInt32?, privileged: Bool) {
        #expect(PeerPrivilege.isPrivileged(peerPort: port, owner: owner) == privileged)
    }

    // The table text is little-endian, as this machine's kernel prints it.
    @Test("/proc/net/tcp addresses", .enabled(if: UInt32(1).littleEndian == 1), arguments: [
        ("0100007F:0385", TCPEndpoint(address: 0x7F00_0001, port: 901)), ("0200007F:0001", TCPEndpoint(address: 0x7F00_0002, port: 1)),
        ("0F02000A:0016", TCPEndpoint(address: 0x0A00_020F, port: 22)), ("00000000:0000", TCPEndpoint(address: 0, port: 0)),
        ("0100007F", nil), ("0100007F:385", nil), ("100007F:0385", nil), ("0100007G:0385", nil), ("0100007F:0385:1", nil),
    ] as [(String, TCPEndpoint?)])
    func endpoints(field: String, endpoint: TCPEndpoint?) {
        #expect(TCPSocketTable.endpoint(Substring(field)) == endpoint)
    }

    @Test("the owner of the client's end of a relay connection", .enabled(if: UInt32(1).littleEndian == 1), arguments: [
        (901, 1023, 0, "the kernel NFS client"),
        (700, 1023, 65534, "nobody, from port 700 (ip_unprivileged_port_start lowered)"),
        (41970, 1023, 1000, "a user from an ephemeral port"),
        (701, 1023, nil, "TIME_WAIT: printed as uid 0, not trusted"),
        (702, 1023, nil, "a FIN_WAIT2 mini-socket its owner closed: printed as uid 0, not trusted"),
        (902, 1023, nil, "connected to the other relay"),
        (902, 1022, 0, "the other relay's client"),
        (903, 1023, nil, "not in the table"),
        (1023, 901, 0, "the relay's own end, looked up the other way round"),
    ] as [(UInt16, UInt16, UInt32?, String)])
    func owners(clientPort: UInt16, relayPort: UInt16, owner: UInt32?, what: String) {
        #expect(TCPSocketTable.owner(in: guestTCPTable, local: loopback(clientPort), remote: loopback(relayPort)) == owner, "\(what)")
    }

    @Test("a mini-socket printed with uid 0 beside the live socket of the same ends: the live one counts",
          .enabled(if: UInt32(1).littleEndian == 1))
    func liveSocketWins() {
        let table = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:02BC 0100007F:03FF 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
               1: 0100007F:02BC 0100007F:03FF 01 00000000:00000000 00:00000000 00000000 65534        0 20777 1 0000000000000000 20 4 30 10 -1

            """
        #expect(TCPSocketTable.owner(in: table, local: loopback(700), remote: loopback(1023)) == 65534)
    }

    @Test("only loopback lines with both ends matching count")
    func ownerNeedsBothEnds() {
        #expect(TCPSocketTable.owner(in: guestTCPTable, local: TCPEndpoint(address: 0x7F00_0002, port: 901), remote: loopback(1023)) == nil)
        #expect(TCPSocketTable.owner(in: guestTCPTable, local: loopback(901), remote: TCPEndpoint(address: 0x7F00_0002, port: 1023)) == nil)
        #expect(TCPSocketTable.owner(in: "", local: loopback(901), remote: loopback(1023)) == nil)
        let headerOnly = String(guestTCPTable.prefix { $0 != "\n" })
        #expect(TCPSocketTable.owner(in: headerOnly, local: loopback(901), remote: loopback(1023)) == nil)
    }

    @Test("the relay's listener skips a port in use and takes the next")
    func listenerSkipsPortsInUse() throws {
        let taken = tcpListener()
        defer { close(taken.fd) }
        // A port that was free a moment ago.
        let probe = tcpListener()
        close(probe.fd)
        let relay = try RelayListener.open(ports: [taken.port, probe.port])
        defer { close(relay.fd) }
        #expect(relay.port == probe.port && localEndpoint(relay.fd) == loopback(probe.port))
        do {
            _ = try RelayListener.open(ports: [taken.port])
            Issue.record("bound a port in use")
        } catch {
            #expect(error.errno == EADDRINUSE && error.call == "bind")
        }
    }

    @Test("this kernel's /proc/self/net/tcp names the owner of a connection's client end")
    func liveTable() throws {
        let relay = tcpListener()
        defer { close(relay.fd) }
        let client = connectLoopback(to: relay.port, from: 0, socket: socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0))
        try #require(client >= 0)
        defer { close(client) }
        let text = String(decoding: try FileSystem.read("/proc/self/net/tcp"), as: UTF8.self)
        #expect(TCPSocketTable.owner(in: text, local: localEndpoint(client), remote: loopback(relay.port)) == geteuid())
        #expect(!VsockRelay.isPrivileged(localEndpoint(client), relay: loopback(relay.port)), "an ephemeral port")
    }

    @Test("as root: a privileged TCP port is forwarded as privileged only from a socket root owns", .enabled(if: geteuid() == 0))
    func liveRootOwner() throws {
        let relay = tcpListener()
        defer { close(relay.fd) }
        func connectFromPrivilegedPort(socket fd: Int32) -> Int32 {
            for port in UInt16(600)...1000 where connectLoopback(to: relay.port, from: port, socket: fd) >= 0 { return fd }
            close(fd)
            return -1
        }
        let rootClient = connectFromPrivilegedPort(socket: socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0))
        try #require(rootClient >= 0)
        defer { close(rootClient) }
        #expect(VsockRelay.isPrivileged(localEndpoint(rootClient), relay: loopback(relay.port)))

        // A socket created with this thread's filesystem uid set to nobody
        // belongs to nobody, as one a nobody process opened would; binding
        // its privileged port still works (root's capabilities stay).
        _ = setfsuid(65534)
        let nobodySocket = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = setfsuid(0)
        let nobodyClient = connectFromPrivilegedPort(socket: nobodySocket)
        try #require(nobodyClient >= 0)
        defer { close(nobodyClient) }
        let text = String(decoding: try FileSystem.read("/proc/self/net/tcp"), as: UTF8.self)
        #expect(TCPSocketTable.owner(in: text, local: localEndpoint(nobodyClient), remote: loopback(relay.port)) == 65534)
        #expect(localEndpoint(nobodyClient).port < 1024)
        #expect(!VsockRelay.isPrivileged(localEndpoint(nobodyClient), relay: loopback(relay.port)))
    }
}

@Suite("bridge reload (SIGHUP)")
struct BridgeReloadTests {
    @Test("the listener changes: ports to open, listeners to stop, hybrid sockets it cannot open without root")
    func listenerChanges() {
        var wanted = BridgeConfiguration()
        wanted.vsockPorts = [2049, 3049]
        wanted.unixListeners = [.init(path: "/run/vm7.sock_2049", cid: 7), .init(path: "/run/vm9.sock_2049", cid: 9)]
        let serving: [Bridge.Listener] = [.vsock(fd: 10, port: 2049), .vsock(fd: 11, port: 4049),
                                          .unix(fd: 12, path: "/run/vm7.sock_2049", cid: 7), .unix(fd: 13, path: "/run/vm8.sock_2049", cid: 8)]
        let changes = wanted.listenerChanges(serving: serving)
        #expect(changes.openVsock == [3049])
        #expect(changes.stop.map(\.fd) == [11, 13])
        #expect(changes.cannotOpen == [.init(path: "/run/vm9.sock_2049", cid: 9)])
        let same = wanted.listenerChanges(serving: [.vsock(fd: 10, port: 2049), .vsock(fd: 14, port: 3049),
                                                    .unix(fd: 12, path: "/run/vm7.sock_2049", cid: 7), .unix(fd: 15, path: "/run/vm9.sock_2049", cid: 9)])
        #expect(same.openVsock.isEmpty && same.stop.isEmpty && same.cannotOpen.isEmpty)
    }

    @Test("reload takes the limits and says which changed; the target stays")
    func limits() {
        var configuration = BridgeConfiguration()
        configuration.maxConnections = 320
        configuration.maxConnectionsPerGuest = 400
        let bridge = Bridge(configuration: configuration, log: DaemonLog(name: "test", environment: [:], debug: false))
        var new = configuration
        new.maxConnectionsPerGuest = 3
        new.maxConnections = 400
        new.targetPort = 3049
        #expect(bridge.reload(new) == ["max-per-guest 400 -> 3", "max-connections 320 -> 400"])
        #expect(bridge.configuration.maxConnectionsPerGuest == 3 && bridge.configuration.maxConnections == 400)
        #expect(bridge.configuration.targetPort == 2049, "the target is not reloaded")
        #expect(bridge.reload(new).isEmpty)
    }

    @Test("a stopped listener's accept loop closes it and ends; the others keep serving")
    func stopListener() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let kept = "/tmp/bridge-reload-kept-\(getpid()).sock", dropped = "/tmp/bridge-reload-dropped-\(getpid()).sock"
        defer { unlink(kept); unlink(dropped) }
        var configuration = BridgeConfiguration()
        configuration.targetPort = server.port
        configuration.unixListeners = [.init(path: kept, cid: 5, vmmUID: getuid()), .init(path: dropped, cid: 6, vmmUID: getuid())]
        let bridge = Bridge(configuration: configuration, log: DaemonLog(name: "test", environment: [:], debug: false))
        let listeners = try BridgeListeners.open(configuration)
        bridge.start(listeners)
        let stopped = try #require(listeners.first { if case .unix(_, let path, _) = $0 { path == dropped } else { false } })
        bridge.stop(stopped)
        #expect(bridge.listeners.count == 1)
        // Within the loop's one-second poll the socket is closed: its file
        // stays, and connecting to it is refused.
        var refused = false
        for _ in 0..<30 where !refused {
            usleep(100_000)
            let fd = connectUnix(dropped)
            if fd < 0 { refused = true } else { close(fd) }
        }
        #expect(refused, "the stopped listener was closed")
        let guest = connectUnix(kept)
        defer { close(guest) }
        #expect(guest >= 0, "the kept listener still accepts")
    }
}
