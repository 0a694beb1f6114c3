#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import NFSExports
import Synchronization

/// The host side of NFS over vsock on kernels without an AF_VSOCK nfsd
/// transport: accepts guest connections (AF_VSOCK, or hybrid-vsock Unix
/// sockets) and forwards each to the kernel NFS server's loopback TCP
/// listener from the guest's own loopback address (VsockLoopbackMapping),
/// with a privileged source port exactly when the guest used one, so that
/// mountd sees `vsock:CID` and `secure` keeps its meaning.
public final class Bridge: Sendable {
    public enum Listener: Sendable {
        case vsock(fd: Int32, port: UInt32)
        case unix(fd: Int32, path: String, cid: VsockCID)
    }

    public let configuration: BridgeConfiguration
    let log: DaemonLog
    private let counts = Mutex<(total: Int, perGuest: [VsockCID: Int])>((0, [:]))

    public init(configuration: BridgeConfiguration, log: DaemonLog) {
        self.configuration = configuration
        self.log = log
    }

    /// Open connections per guest CID.
    public var guests: [VsockCID: Int] { counts.withLock { $0.perGuest } }

    /// Starts one accept loop per listener.
    public func start(_ listeners: [Listener]) {
        for listener in listeners {
            // Accepted connections inherit the listener's vsock buffer.
            if case .vsock(let fd, _) = listener { SocketTuning.enlargeVsockBuffer(fd) }
            DetachedThread.start { [self] in acceptLoop(listener) }
        }
    }

    private func acceptLoop(_ listener: Listener) {
        while true {
            switch listener {
            case .vsock(let fd, let port):
                var storage = [UInt8](repeating: 0, count: 128)
                var length = socklen_t(storage.count)
                let connection = storage.withUnsafeMutableBytes { raw in
                    // SAFETY: raw is large enough for any sockaddr_vm.
                    accept(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
                }
                if connection < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    log.error("accept on vsock port \(port): \(String(cString: strerror(errno)))")
                    sleep(1)
                    continue
                }
                // The host kernel (vhost-vsock) drops guest packets whose
                // source CID is not the guest's own: the CID is trustworthy.
                guard let peer = VsockAddress(bytes: Array(storage.prefix(Int(length)))) else {
                    log.warning("vsock port \(port): a connection without a vsock peer address; closed")
                    close(connection)
                    continue
                }
                admit(connection, cid: peer.cid, privileged: peer.port < 1024, from: "vsock:\(peer.cid):\(peer.port)")
            case .unix(let fd, let path, let cid):
                let connection = accept(fd, nil, nil)
                if connection < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    log.error("accept on \(path): \(String(cString: strerror(errno)))")
                    sleep(1)
                    continue
                }
                // The VMM does not pass the guest's port: unprivileged.
                admit(connection, cid: cid, privileged: false, from: "vsock:\(cid) via \(path)")
            }
        }
    }

    private func admit(_ connection: Int32, cid: VsockCID, privileged: Bool, from peer: String) {
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        let limits = configuration
        let refusal: String? = counts.withLock { counts in
            if counts.total >= limits.maxConnections { return "the bridge has \(counts.total) connections (limit \(limits.maxConnections))" }
            if counts.perGuest[cid, default: 0] >= limits.maxConnectionsPerGuest {
                return "guest \(cid) has \(counts.perGuest[cid, default: 0]) connections (limit \(limits.maxConnectionsPerGuest))"
            }
            counts.total += 1
            counts.perGuest[cid, default: 0] += 1
            return nil
        }
        if let refusal {
            log.warning("refused \(peer): \(refusal)")
            close(connection)
            return
        }
        let started = DetachedThread.start { [self] in
            serve(connection, cid: cid, privileged: privileged, peer: peer)
            release(cid)
        }
        if !started {
            log.error("cannot start a thread for \(peer)")
            close(connection)
            release(cid)
        }
    }

    private func release(_ cid: VsockCID) {
        counts.withLock { counts in
            counts.total -= 1
            counts.perGuest[cid, default: 1] -= 1
            if counts.perGuest[cid] == 0 { counts.perGuest[cid] = nil }
        }
    }

    private func serve(_ connection: Int32, cid: VsockCID, privileged: Bool, peer: String) {
        defer { close(connection) }
        guard let source = configuration.mapping.address(of: cid) else {
            log.warning("refused \(peer): CID \(cid) has no address in \(configuration.mapping)")
            return
        }
        let outbound: Int32
        do {
            outbound = try LoopbackConnector.connect(from: source, privileged: privileged,
                                                     to: configuration.targetHost, port: configuration.targetPort)
        } catch {
            log.error("\(peer): cannot reach the NFS server at \(configuration.targetHost):\(configuration.targetPort): \(error)")
            return
        }
        defer { close(outbound) }
        log.info("\(peer) connected as \(source) (\(privileged ? "privileged" : "unprivileged") port)")
        let end = Forwarder(bufferSize: configuration.bufferSize, idleTimeout: configuration.idleTimeout,
                            halfOpenTimeout: configuration.halfOpenTimeout).run(connection, outbound)
        switch end {
        case .closed: log.info("\(peer) closed")
        case .idle: log.info("\(peer) idle for \(configuration.idleTimeout) s; closed")
        case .halfOpenTimeout: log.info("\(peer) half-open for \(configuration.halfOpenTimeout) s; closed")
        case .error(let reason): log.info("\(peer) ended: \(reason)")
        }
    }
}

/// Connects to the NFS server's loopback listener from a given source
/// address, with a privileged (512-1023) or ephemeral source port.
enum LoopbackConnector {
    static func connect(from source: IPAddress, privileged: Bool, to host: String, port: UInt16) throws(SystemError) -> Int32 {
        guard case .v4(let sourceValue) = source, case .v4(let targetValue)? = IPAddress(host) else {
            throw SystemError("connect", host, errno: EAFNOSUPPORT)
        }
        func sockaddrIn(_ value: UInt32, _ port: UInt16) -> sockaddr_in {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = value.bigEndian
            return address
        }
        let ports: [UInt16] = privileged ? Array((512...1023).reversed()) : [0]
        var lastError = EADDRINUSE
        for candidate in ports {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemError("socket", "AF_INET", errno: errno) }
            SocketTuning.noDelay(fd)
            var local = sockaddrIn(sourceValue, candidate)
            let bound = withUnsafePointer(to: &local) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    // SAFETY: a complete sockaddr_in.
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if bound != 0 {
                lastError = errno
                close(fd)
                if lastError == EADDRINUSE { continue }
                throw SystemError("bind", "\(source):\(candidate)", errno: lastError)
            }
            var remote = sockaddrIn(targetValue, port)
            let connected = withUnsafePointer(to: &remote) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    // SAFETY: a complete sockaddr_in.
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if connected == 0 { return fd }
            lastError = errno
            close(fd)
            // The same 4-tuple may still be in TIME_WAIT: try another port.
            if lastError == EADDRNOTAVAIL || lastError == EADDRINUSE { continue }
            throw SystemError("connect", "\(host):\(port) from \(source)", errno: lastError)
        }
        throw SystemError("bind", "\(source): no free privileged port", errno: lastError)
    }
}
