#if canImport(Glibc)
import Glibc
#endif
import Forwarding
import NFSAdmin
import NFSExports
import SystemEdge

/// The guest side of NFS over vsock for stock kernels: a relay listening on
/// guest loopback TCP that forwards each connection to the host's vsock
/// port. It lives as long as the mount that uses it.
public final class VsockRelay: Sendable {
    public let cid: UInt32
    public let port: UInt32
    private let active = ThreadLock(0)

    public init(cid: UInt32, port: UInt32) {
        self.cid = cid
        self.port = port
    }

    /// Connects to the host, from a privileged vsock port when asked (root
    /// connected from a privileged port: isPrivileged), so the host's
    /// `secure` check sees the truth.
    public func connectHost(privileged: Bool) throws(SystemError) -> Int32 {
        let target = SocketAddress.vsock(cid: cid, port: port)
        // A port the kernel chose that turns out taken (EADDRINUSE) gets
        // one more try, except after a refused bind.
        var retryInUse = true
        if privileged {
            let outcome = try PrivilegedPort.connect(
                to: target, from: { .vsock(cid: SocketAddress.anyCID, port: UInt32($0)) }, prepare: { SocketTuning.enlargeVsockBuffer($0) })
            switch outcome {
            case .connected(let fd): return fd
            case .connectFailed(let error): throw SystemError("connect", target.description, errno: error)
            case .noFreePort: break
            // No privilege to bind (EACCES): fall back to an unprivileged
            // port; the host decides what that means.
            case .bindFailed: retryInUse = false
            }
        }
        while true {
            let fd = try target.socket()
            SocketTuning.enlargeVsockBuffer(fd)
            if target.connect(fd) == 0 { return fd }
            let error = errno
            close(fd)
            if error == EADDRINUSE && retryInUse {
                retryInUse = false
                continue
            }
            throw SystemError("connect", target.description, errno: error)
        }
    }

    /// Serves `listener` until no mount and no NFS client needs the relay
    /// (see RelayLifetime).
    public func serve(listener: Int32, directory: String, export: String, relayPort: UInt16) {
        DetachedThread.start { [self] in acceptLoop(listener, relayPort: relayPort) }
        let watch = MountWatch(directory: directory, export: export, port: relayPort)
        var lifetime = RelayLifetime(started: RelayLifetime.now())
        while true {
            // Watched before it is read: a change in between still wakes the wait.
            let table = MountWatch.Table()
            let mounted = watch.isMounted()
            let inUse = mounted || watch.serverListInUse()
            if lifetime.shouldExit(inUse: inUse, openConnections: active.withLock { $0 }, now: RelayLifetime.now()) { return }
            table.waitForChange(timeoutSeconds: RelayLifetime.waitSeconds(mounted: mounted))
        }
    }

    private func acceptLoop(_ listener: Int32, relayPort: UInt16) {
        while true {
            let (connection, peer) = SocketAddress.accept(listener)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                sleep(1)
                continue
            }
            // The listener is AF_INET: a peer is always a sockaddr_in.
            let client: TCPEndpoint? = if case .inet(let address, let port)? = peer { TCPEndpoint(address: address, port: port) } else { nil }
            SocketTuning.noDelay(connection)
            active.withLock { $0 += 1 }
            DetachedThread.start { [self] in
                defer {
                    close(connection)
                    active.withLock { $0 -= 1 }
                }
                let relay = TCPEndpoint(address: TCPEndpoint.loopback, port: relayPort)
                let privileged = client.map { Self.isPrivileged($0, relay: relay) } ?? false
                guard let host = try? connectHost(privileged: privileged) else { return }
                defer { close(host) }
                // Writeback goes through here: buffers resident from the start.
                var forwarder = Forwarder(bufferSize: 256 * 1024, idleTimeout: 0, halfOpenTimeout: 30)
                forwarder.resident = true
                _ = forwarder.run(connection, host)
            }
        }
    }
}

extension VsockRelay {
    /// Whether `client`, connected to the relay at `relay`, gets a
    /// privileged vsock port: a port below 1024 and a socket root owns,
    /// looked up in this namespace's TCP table while the connection is
    /// fresh. A table that cannot be read makes it unprivileged.
    static func isPrivileged(_ client: TCPEndpoint, relay: TCPEndpoint) -> Bool {
        guard client.port < 1024, let bytes = try? FileSystem.readIfExists("/proc/self/net/tcp") else { return false }
        let owner = TCPSocketTable.owner(in: String(decoding: bytes, as: UTF8.self), local: client, remote: relay)
        return PeerPrivilege.isPrivileged(peerPort: client.port, owner: owner)
    }
}

/// Whether the kernel's NFS client still needs the relay: its mount is
/// there (/proc/self/mounts lists the directory with an NFS mount through
/// the relay's port), or an NFS client of this network namespace is
/// connected through the relay's port. The second matters because NFSv4.1
/// merges every mount of one server in a namespace into the first mount's
/// client and transport (client ID trunking): after that first mount is
/// gone, the later ones still reconnect through its relay.
struct MountWatch {
    let directory: String
    let export: String
    let port: UInt16

    /// Whether an NFS client of this namespace still uses the relay's port.
    func serverListInUse() -> Bool {
        guard let bytes = try? FileSystem.readIfExists("/proc/self/net/nfsfs/servers") else { return false }
        return Self.serverListUses(String(decoding: bytes, as: UTF8.self), port: port)
    }

    /// /proc/fs/nfsfs/servers: "NV SERVER   PORT USE HOSTNAME" then one
    /// line per NFS client, address and port in hex ("v4 7f000001  84d1   1 127.0.0.1").
    static func serverListUses(_ text: String, port: UInt16) -> Bool {
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count >= 3, fields[1] == "7f000001", let listed = UInt16(fields[2], radix: 16) else { continue }
            if listed == port { return true }
        }
        return false
    }

    func isMounted() -> Bool {
        guard let bytes = try? FileSystem.readIfExists("/proc/self/mounts") else { return false }
        return Self.mountTableLists(String(decoding: bytes, as: UTF8.self), directory: directory, export: export, port: port)
    }

    /// Whether /proc/self/mounts has the relay's NFS mount on `directory`:
    /// through the relay's port, or of 127.0.0.1:`export`. The second is
    /// needed because a mount the kernel puts on an existing superblock
    /// (the same export already mounted through another relay in this
    /// namespace) shows that superblock's options, port included.
    static func mountTableLists(_ table: String, directory: String, export: String, port: UInt16) -> Bool {
        // /proc/self/mounts escapes the same bytes as the cache channels.
        let escapedDirectory = CacheText.word(directory)
        let escapedSource = CacheText.word("127.0.0.1:" + export)
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4, fields[1] == escapedDirectory, fields[2].hasPrefix("nfs") else { continue }
            if fields[0] == escapedSource || fields[3].split(separator: ",").contains("port=\(port)") { return true }
        }
        return false
    }

    /// /proc/self/mounts opened for watching: poll(2) reports POLLPRI once
    /// the mount table has changed since it was opened.
    final class Table {
        let fd: Int32

        init() { fd = open("/proc/self/mounts", O_RDONLY | O_CLOEXEC) }

        deinit { if fd >= 0 { close(fd) } }

        /// Waits until the mount table changes or the timeout passes.
        func waitForChange(timeoutSeconds: Int32) {
            guard fd >= 0 else { sleep(UInt32(timeoutSeconds)); return }
            var pfd = pollfd(fd: fd, events: Int16(POLLPRI | POLLERR), revents: 0)
            _ = poll(&pfd, 1, timeoutSeconds * 1000)
        }
    }
}

/// When the relay may exit (pure: the rules are unit-tested).
///  - While its mount or an NFS client uses its port, never.
///  - Once neither does, as soon as no connection is open; connections
///    still open get a few seconds (the kernel sends DESTROY_SESSION and
///    DESTROY_CLIENTID after the mount has left the table), then the relay
///    goes anyway: nothing that needs it can be left (a client the kernel
///    discarded in favour of a trunked one may keep its connection).
///  - Never used within two minutes and idle: the mount failed elsewhere.
struct RelayLifetime {
    static let teardownGrace = 5
    static let mountDeadline = 120

    let started: Int
    var seenInUse = false
    var unusedSince: Int? = nil

    init(started: Int) { self.started = started }

    mutating func shouldExit(inUse: Bool, openConnections: Int, now: Int) -> Bool {
        if inUse {
            seenInUse = true
            unusedSince = nil
            return false
        }
        guard seenInUse else { return openConnections == 0 && now - started >= Self.mountDeadline }
        if openConnections == 0 { return true }
        let since = unusedSince ?? now
        unusedSince = since
        return now - since >= Self.teardownGrace
    }

    /// How long the relay waits for the mount table to change before it
    /// looks again. While its mount is in the table nothing but a change
    /// of the table can end its use, so it sleeps on the table (a guest's
    /// idle relay wakes once a minute, not once a second: a host with many
    /// guests sees each relay's wakeups as CPU of its own). Before the
    /// mount and after it, when connections close or the kernel's client
    /// lets go of the port without a table change, it looks every second.
    static func waitSeconds(mounted: Bool) -> Int32 { mounted ? 60 : 1 }

    static func now() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec
    }
}
