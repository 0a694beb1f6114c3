import Glibc
import Testing
// SOCK_STREAM: this test target imports CLinux (BridgeTests), and then
// Swift sees it only through CLinux.
import CLinux
import TestSupport
import NFSAdmin
import NFSExports
import SystemEdge
@testable import VsockBridge

/// A fresh directory under /tmp; the caller removes it.
private func temporaryDirectory() -> String {
    var template = Array("/tmp/bridge-hybrid-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { buffer in
        // SAFETY: mkdtemp rewrites the NUL-terminated template in place.
        String(cString: mkdtemp(buffer.baseAddress!)!)
    }
}

private func testLog() -> DaemonLog { DaemonLog(name: "test", environment: [:], debug: false) }

/// Whether `fd` gets a connection within `milliseconds`.
private func readable(_ fd: Int32, within milliseconds: Int32) -> Bool {
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&descriptor, 1, milliseconds) == 1
}

/// `connectUnix` with a 5 s receive timeout: a connection that should be
/// closed at once but is forwarded fails the test instead of hanging it.
private func connectUnixTimed(_ path: String) -> Int32 {
    let fd = connectUnix(path)
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// What a child process got from connecting to a Unix socket as another
/// user (its exit status).
private enum ChildConnect: Int32 {
    /// Connected, sent a byte, got two back.
    case served = 0
    /// Connected, and the connection was closed without a reply.
    case closed = 2
    /// connect(2) failed with EACCES: the socket file's mode.
    case permissionDenied = 3
    case connectFailed = 4
    case setuidFailed = 5
}

/// Forks a child that becomes `uid` (gid the same, no supplementary
/// groups) and connects to `path`; returns its pid. Between fork and _exit
/// the child makes system calls only: this process has other threads, and
/// a child of a threaded process must not allocate.
/// It once did not: the reply tuple's type metadata, instantiated in the
/// child, waited for the runtime's allocator lock that another thread held
/// at fork, and the child spun forever (seen under ThreadSanitizer). So
/// everything is allocated and every value computed before the fork.
private func connectAsUser(_ uid: UInt32, to path: String) -> pid_t {
    let address = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
    address.initialize(to: sockaddr_storage())
    let addressLength = try! BridgeListeners.unixAddress(path).withSockaddr { pointer, length in
        UnsafeMutableRawPointer(address).copyMemory(from: pointer, byteCount: Int(length))
        return length
    }
    let socketAddress = UnsafeRawPointer(address).assumingMemoryBound(to: sockaddr.self)
    let timeout = UnsafeMutablePointer<timeval>.allocate(capacity: 1)
    timeout.initialize(to: timeval(tv_sec: 5, tv_usec: 0))
    let timeoutLength = socklen_t(MemoryLayout<timeval>.size)
    let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 2)
    buffer.initialize(repeating: 0x41, count: 2)
    let codes = (setuid: ChildConnect.setuidFailed.rawValue, denied: ChildConnect.permissionDenied.rawValue,
                 failed: ChildConnect.connectFailed.rawValue, served: ChildConnect.served.rawValue,
                 closed: ChildConnect.closed.rawValue)
    let stream = Int32(SOCK_STREAM.rawValue)
    let waitAll = Int32(MSG_WAITALL)
    let pid = fork()
    guard pid == 0 else {
        address.deallocate()
        timeout.deallocate()
        buffer.deallocate()
        return pid
    }
    if setgroups(0, nil) != 0 || setgid(uid) != 0 || setuid(uid) != 0 { _exit(codes.setuid) }
    let fd = socket(AF_UNIX, stream, 0)
    if connect(fd, socketAddress, addressLength) != 0 { _exit(errno == EACCES ? codes.denied : codes.failed) }
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeout, timeoutLength)
    _ = write(fd, buffer, 1)
    _exit(recv(fd, buffer, 2, waitAll) == 2 ? codes.served : codes.closed)
}

/// The child's outcome; nil if it did not exit normally.
private func outcome(of pid: pid_t) -> ChildConnect? {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status & 0x7F == 0 else { return nil }
    return ChildConnect(rawValue: (status >> 8) & 0xFF)
}

/// This process's threads (/proc/self/status).
private func threadCount() -> Int {
    guard let bytes = try? FileSystem.readIfExists("/proc/self/status") else { return -1 }
    let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("Threads:") }
    return line.flatMap { Int($0.dropFirst("Threads:".count).filter { $0 != " " && $0 != "\t" }) } ?? -1
}

/// Accepts the bridge's forwarded connection on `server` and returns the
/// loopback address it came from (-1 and "" if none came in 5 s).
private func acceptForwarded(_ server: Int32) -> (fd: Int32, source: String) {
    guard readable(server, within: 5000) else { return (-1, "") }
    let (fd, peer) = SocketAddress.accept(server)
    return (fd, peer.flatMap { IPAddress($0) }?.description ?? "0.0.0.0")
}

@Suite("hybrid vsock: configuration")
struct HybridConfigurationTests {
    /// Stands in for the user database: "firecracker" is 4321.
    static func users(_ name: String) -> UInt32? { name == "firecracker" ? 4321 : nil }

    @Test("PATH=CID and PATH=CID:USER", arguments: [
        ("/run/vm7.vsock_2049=7", "/run/vm7.vsock_2049", 7, 0),
        ("/a=b=4", "/a=b", 4, 0),
        ("/run/fc.vsock_2049=3:1234", "/run/fc.vsock_2049", 3, 1234),
        ("/run/fc.vsock_2049=3:firecracker", "/run/fc.vsock_2049", 3, 4321),
        ("/run/fc.vsock_2049=5:0", "/run/fc.vsock_2049", 5, 0),
        ("/srv/jail:1/v.sock_2049=9:firecracker", "/srv/jail:1/v.sock_2049", 9, 4321),
        // Below 3 parses: the start-time check refuses it with its reason.
        ("/a=0", "/a", 0, 0),
    ] as [(String, String, UInt32, UInt32)])
    func good(text: String, path: String, cid: UInt32, uid: UInt32) throws {
        let listener = try BridgeConfiguration.unixListener(text, origin: "--unix", userID: Self.users)
        #expect(listener == BridgeConfiguration.UnixListener(path: path, cid: cid, vmmUID: uid))
    }

    @Test("bad forms name the origin and the text", arguments: [
        ("relative=3", "wants /absolute/path=CID or /absolute/path=CID:USER"),
        ("/a", "wants /absolute/path=CID"), ("/a=", "wants /absolute/path=CID"),
        ("/a=x", "wants /absolute/path=CID"), ("/a=-3", "wants /absolute/path=CID"),
        ("/a=+3", "wants /absolute/path=CID"), ("/a=99999999999", "wants /absolute/path=CID"),
        ("/a=3:", "wants /absolute/path=CID"), ("/a=3:x:y", "wants /absolute/path=CID"),
        ("/a=:5", "wants /absolute/path=CID"),
        ("/a=3:ghost", "no user \"ghost\" (in \"/a=3:ghost\")"),
        ("/a=3:4294967295", "\"4294967295\" is not a uid (in \"/a=3:4294967295\")"),
    ])
    func bad(text: String, message: String) {
        let origin = "/etc/nfs.conf:40: [vsock] unix"
        do {
            let listener = try BridgeConfiguration.unixListener(text, origin: origin, userID: Self.users)
            Issue.record("accepted \"\(text)\" as \(listener)")
        } catch {
            #expect(error.message.hasPrefix(origin) && error.message.contains(message) && error.message.contains(text), "\(error.message)")
        }
    }

    @Test("listener sets that would blur identities are refused", arguments: [
        (["/a=3", "/b=4:1234"], nil),
        (["/a=3", "/b=3"], "hybrid-vsock sockets /a and /b both have CID 3: mountd would take the two VMs for one guest"),
        (["/a=3:1", "/c=5", "/b=3:2"], "hybrid-vsock sockets /a and /b both have CID 3"),
        (["/a=3", "/a=4"], "hybrid-vsock socket /a is given twice (/a=3 and /a=4)"),
        (["/x/./a=3", "/x//a=4"], "hybrid-vsock socket /x/./a is given twice (/x/./a=3 and /x//a=4)"),
        (["/a=0"], "hybrid-vsock socket /a: CID 0 is the hypervisor's; a VM's CID is 3 or more"),
        (["/a=1"], "CID 1 is vsock loopback's (any process on this host); a VM's CID is 3 or more"),
        (["/a=2"], "CID 2 is the host's; a VM's CID is 3 or more"),
        (["/a=8388607"], nil),
        (["/a=8388608"], "hybrid-vsock socket /a: CID 8388608 has no address in 127.128.0.0/9 (CIDs up to 8388607)"),
    ] as [([String], String?)])
    func check(specs: [String], message: String?) throws {
        var configuration = BridgeConfiguration()
        configuration.unixListeners = try specs.map { try BridgeConfiguration.unixListener($0, origin: "--unix", userID: Self.users) }
        do {
            try configuration.checkUnixListeners()
            #expect(message == nil, "accepted \(specs)")
        } catch {
            #expect(message.map { error.message.contains($0) } == true, "\(error.message)")
        }
    }

    @Test("a smaller block holds fewer CIDs")
    func smallBlock() throws {
        var configuration = BridgeConfiguration()
        configuration.mapping = try #require(VsockLoopbackMapping("127.0.1.0/24"))
        configuration.unixListeners = [.init(path: "/a", cid: 255)]
        try configuration.checkUnixListeners()
        configuration.unixListeners = [.init(path: "/a", cid: 256)]
        #expect(throws: BridgeConfiguration.Problem("hybrid-vsock socket /a: CID 256 has no address in 127.0.1.0/24 (CIDs up to 255)")) {
            try configuration.checkUnixListeners()
        }
    }

    @Test("opening refuses a colliding set before creating any socket")
    func openRefusesCollisions() {
        let directory = temporaryDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        var configuration = BridgeConfiguration()
        configuration.unixListeners = [.init(path: directory + "/fc1.vsock_2049", cid: 3),
                                       .init(path: directory + "/fc2.vsock_2049", cid: 3)]
        do {
            let listeners = try BridgeListeners.open(configuration)
            Issue.record("opened \(listeners.count) listeners")
        } catch {
            #expect(error.call == "configure" && error.errno == EINVAL)
            #expect(error.subject.contains("hybrid-vsock sockets \(directory)/fc1.vsock_2049 and \(directory)/fc2.vsock_2049 both have CID 3"), "\(error)")
        }
        var info = stat()
        #expect(lstat(directory + "/fc1.vsock_2049", &info) != 0, "nothing was created")
    }

    @Test("two spellings of one socket file (a symbolic link) are refused once opened")
    func openRefusesAliases() {
        let directory = temporaryDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        #expect(mkdir(directory + "/real", 0o755) == 0 && symlink(directory + "/real", directory + "/alias") == 0)
        var configuration = BridgeConfiguration()
        configuration.unixListeners = [.init(path: directory + "/real/vm.sock", cid: 3),
                                       .init(path: directory + "/alias/vm.sock", cid: 4)]
        do {
            let listeners = try BridgeListeners.open(configuration)
            Issue.record("opened \(listeners.count) listeners")
        } catch {
            #expect(error.subject == "hybrid-vsock sockets \(directory)/real/vm.sock and \(directory)/alias/vm.sock are the same file: one socket carries one VM", "\(error)")
        }
        var info = stat()
        #expect(lstat(directory + "/real/vm.sock", &info) != 0, "the socket is removed again")
    }
}

@Suite("hybrid vsock: sockets and peers")
struct HybridSocketTests {
    @Test("the socket the bridge creates is mode 0600 and its VMM's from the start; a stale one is replaced; the umask is restored")
    func socketFile() throws {
        let directory = temporaryDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        let path = directory + "/vm.vsock_2049"
        close(try BridgeListeners.listenUnix(path, owner: 0))
        let umaskBefore = BridgeListeners.umaskLock.withLock { _ in
            let value = umask(0o022)
            umask(value)
            return value
        }
        let fd = try BridgeListeners.listenUnix(path, owner: 1234)
        defer { close(fd) }
        var info = stat()
        #expect(lstat(path, &info) == 0)
        #expect(info.st_mode == S_IFSOCK | 0o600, "mode \(String(info.st_mode, radix: 8))")
        #expect(info.st_uid == 1234 && info.st_gid == getegid())
        let umaskAfter = BridgeListeners.umaskLock.withLock { _ in
            let value = umask(0o022)
            umask(value)
            return value
        }
        #expect(umaskAfter == umaskBefore)
    }

    @Test("a file that is not a socket is not replaced")
    func notASocket() throws {
        let directory = temporaryDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        let path = directory + "/vm.vsock_2049"
        let file = open(path, O_CREAT | O_WRONLY, 0o644)
        close(file)
        #expect(throws: SystemError("bind", path, errno: EADDRINUSE)) { try BridgeListeners.listenUnix(path, owner: 0) }
    }

    @Test("only the configured VMM uid is served: root is refused (SO_PEERCRED), another user cannot connect (mode 0600)",
          .enabled(if: geteuid() == 0, "needs root to act as other users"))
    func peerUID() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let directory = temporaryDirectory()
        // The VMM's user must reach the socket through the directory.
        _ = chmod(directory, 0o755)
        defer { _ = system("rm -rf '\(directory)'") }
        let path = directory + "/vm21.vsock_2049"
        var configuration = BridgeConfiguration()
        configuration.targetPort = server.port
        configuration.unixListeners = [.init(path: path, cid: 21, vmmUID: 1234)]
        let bridge = Bridge(configuration: configuration, log: testLog())
        bridge.start(try BridgeListeners.open(configuration))

        let vmm = connectAsUser(1234, to: path)
        let forwarded = acceptForwarded(server.fd)
        #expect(forwarded.source == "127.128.0.21")
        if forwarded.fd >= 0 {
            #expect(receive(forwarded.fd, 1) == [0x41])
            sendAll(forwarded.fd, [0x6F, 0x6B])
        }
        #expect(outcome(of: vmm) == .served, "the VMM's uid is served")
        if forwarded.fd >= 0 { close(forwarded.fd) }

        let root = connectUnixTimed(path)
        #expect(root >= 0, "root passes the file mode")
        defer { close(root) }
        var byte: UInt8 = 0
        #expect(recv(root, &byte, 1, 0) == 0, "root's connection is closed at once")
        #expect(!readable(server.fd, within: 200), "and not forwarded")

        #expect(outcome(of: connectAsUser(1235, to: path)) == .permissionDenied, "another user is kept out by the mode")

        let record = try #require(bridge.guestStatus(now: 0).first { $0.cid == 21 })
        #expect(record.accepted == 1 && record.refused == 1)
    }

    @Test("one thread accepts on 200 hybrid sockets; a stopped one is closed at once and the others still serve")
    func manyListenersOneThread() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let directory = temporaryDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        var configuration = BridgeConfiguration()
        configuration.targetPort = server.port
        configuration.unixListeners = (100..<300).map { .init(path: "\(directory)/vm\($0).sock", cid: VsockCID($0)) }
        let bridge = Bridge(configuration: configuration, log: testLog())
        let before = threadCount()
        bridge.start(try BridgeListeners.open(configuration))
        // A thread per listener, as the accept loops once were, would be
        // 200; one is expected (other tests running in parallel start
        // threads of their own meanwhile, hence the margin).
        #expect(threadCount() - before < 20, "threads for 200 listeners: \(threadCount() - before)")
        for cid in [100, 177, 299] {
            let guest = connectUnix("\(directory)/vm\(cid).sock")
            defer { close(guest) }
            let forwarded = acceptForwarded(server.fd)
            #expect(forwarded.source == "127.128.\(cid / 256).\(cid % 256)", "CID \(cid) forwarded")
            if forwarded.fd >= 0 { close(forwarded.fd) }
        }
        let stopped = try #require(bridge.listeners.first { if case .unix(_, _, 177) = $0 { true } else { false } })
        bridge.stop(stopped)
        #expect(bridge.listeners.count == 199)
        // Closed by the accept thread, which wakes for it: connecting gets
        // ECONNREFUSED well before the old one-second poll would notice.
        let path = "\(directory)/vm177.sock"
        var refused = false
        for _ in 0..<50 where !refused {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            let result = try BridgeListeners.unixAddress(path).withSockaddr { connect(fd, $0, $1) }
            refused = result != 0 && errno == ECONNREFUSED
            close(fd)
            if !refused { usleep(10_000) }
        }
        #expect(refused, "the stopped listener is closed within 0.5 s")
        let guest = connectUnix("\(directory)/vm299.sock")
        defer { close(guest) }
        let forwarded = acceptForwarded(server.fd)
        #expect(forwarded.source == "127.128.1.43", "CID 299 still forwarded (127.128.0.0 + 299)")
        if forwarded.fd >= 0 { close(forwarded.fd) }
    }

    @Test("a socket the configuration does not name serves nobody")
    func unnamedSocket() throws {
        let directory = temporaryDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        let path = directory + "/stray.sock"
        let bridge = Bridge(configuration: BridgeConfiguration(), log: testLog())
        bridge.start([.unix(fd: try BridgeListeners.listenUnix(path, owner: 0), path: path, cid: 5)])
        let guest = connectUnixTimed(path)
        defer { close(guest) }
        var byte: UInt8 = 0
        #expect(recv(guest, &byte, 1, 0) == 0)
        #expect(bridge.guestStatus(now: 0).first { $0.cid == 5 }?.refused == 1)
    }
}

@Suite("bridge: reserved and impossible CIDs")
struct ReservedCIDTests {
    @Test("which CIDs have a loopback source", arguments: [
        (0, nil), (1, "127.128.0.1"), (2, "127.128.0.2"), (3, "127.128.0.3"),
        (8388607, "127.255.255.255"), (8388608, nil), (0xFFFF_FFFF, nil),
    ] as [(UInt32, String?)])
    func sources(cid: UInt32, address: String?) {
        let bridge = Bridge(configuration: BridgeConfiguration(), log: testLog())
        switch bridge.loopbackSource(of: cid) {
        case .success(let source): #expect(source.description == address)
        case .failure(let refusal): #expect(address == nil, "\(refusal.reason)")
        }
    }

    @Test("refusal reasons", arguments: [
        (0, "CID 0 is the hypervisor's, not a guest's"),
        (0xFFFF_FFFF, "CID 4294967295 is VMADDR_CID_ANY, not a guest's"),
        (8388608, "CID 8388608 has no address in 127.128.0.0/9 (CIDs up to 8388607)"),
    ] as [(UInt32, String)])
    func reasons(cid: UInt32, reason: String) {
        let bridge = Bridge(configuration: BridgeConfiguration(), log: testLog())
        #expect(bridge.loopbackSource(of: cid) == .failure(Bridge.Refusal(reason: reason)))
    }

    @Test("an AF_VSOCK guest cannot take a CID configured for a hybrid-vsock VM")
    func hybridCIDsAreTaken() {
        var configuration = BridgeConfiguration()
        configuration.unixListeners = [.init(path: "/run/fc.vsock_2049", cid: 7, vmmUID: 1234)]
        let bridge = Bridge(configuration: configuration, log: testLog())
        #expect(bridge.vsockRefusal(of: 7)?.reason == "CID 7 is the hybrid-vsock VM's behind /run/fc.vsock_2049, not an AF_VSOCK guest's")
        #expect(bridge.vsockRefusal(of: 8) == nil)
    }

    @Test("CIDs 0, VMADDR_CID_ANY and beyond the block are refused at accept (counted, no slot); 1 and 2 are forwarded")
    func refusedAtAccept() throws {
        let server = tcpListener()
        defer { close(server.fd) }
        let directory = temporaryDirectory()
        defer { _ = system("rm -rf '\(directory)'") }
        let cids: [UInt32] = [0, 0xFFFF_FFFF, 8388608, 1, 2]
        var configuration = BridgeConfiguration()
        configuration.targetPort = server.port
        // Hybrid listeners stand in for vsock peers with these CIDs (the
        // start-time check would refuse them; the accept path must too).
        configuration.unixListeners = cids.map { .init(path: "\(directory)/\($0).sock", cid: $0) }
        let bridge = Bridge(configuration: configuration, log: testLog())
        let listeners = try configuration.unixListeners.map { unix in
            Bridge.Listener.unix(fd: try BridgeListeners.listenUnix(unix.path, owner: 0), path: unix.path, cid: unix.cid)
        }
        bridge.start(listeners)
        for cid in cids.prefix(3) {
            let guest = connectUnixTimed("\(directory)/\(cid).sock")
            defer { close(guest) }
            var byte: UInt8 = 0
            #expect(recv(guest, &byte, 1, 0) == 0, "CID \(cid) is closed at once")
            #expect(!readable(server.fd, within: 100), "CID \(cid) is not forwarded")
            #expect(bridge.guests[cid] == nil, "CID \(cid) takes no slot")
            let record = try #require(bridge.guestStatus(now: 0).first { $0.cid == cid })
            #expect(record.address == "-" && record.refused == 1 && record.accepted == 0 && record.open == 0)
        }
        for cid in cids.suffix(2) {
            let guest = connectUnix("\(directory)/\(cid).sock")
            defer { close(guest) }
            let forwarded = acceptForwarded(server.fd)
            #expect(forwarded.source == "127.128.0.\(cid)", "CID \(cid) is forwarded: exports(5) decides")
            if forwarded.fd >= 0 { close(forwarded.fd) }
        }
    }
}
