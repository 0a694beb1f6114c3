#if canImport(Glibc)
import Glibc
#endif
import CMountGlue
import CTIRPC
import SystemEdge

/// The MOUNT protocol server (RPC program 100005, versions 1 and 3) that
/// mountd hosts, on libtirpc.
///
/// `start()` binds a TCP listener and a UDP socket (one dual-stack IPv6
/// socket each when no address is given, so IPv4 clients arrive too),
/// hands them to libtirpc, registers every version x netid with rpcbind
/// (after removing stale entries, as nfs-utils does) and serves on a thread
/// of its own. That thread calls the service synchronously, one call at a
/// time; it blocks asynchronous signals, so the daemon's own signal handling
/// is undisturbed, and a client that vanishes mid-reply costs an EPIPE, not
/// a SIGPIPE. `stop()` unregisters, closes every socket and joins the thread.
///
/// libtirpc's server side is process-global; several servers in one process
/// work (tests run many), serialized by one lock, but each program/version
/// is answered by whichever server owns the socket the call came in on.
public final class MountRPCServer: Sendable {
    public let service: any MountService
    public let versions: [UInt32]
    /// Requested port; 0 lets the kernel pick (TCP and UDP separately).
    public let port: UInt16
    public let tcp: Bool
    public let udp: Bool
    public let registerWithRpcbind: Bool
    /// Numeric IPv4 or IPv6 address to listen on; nil listens on every address.
    public let address: String?
    /// A TCP connection that sends nothing for this long is closed.
    public let idleConnectionTimeout: Duration
    /// Accepted TCP connections beyond this close the least recently active.
    public let maxConnections: Int
    private let log: @Sendable (String) -> Void

    private enum State {
        case idle
        case running(Running)
        case stopped
    }

    private struct Running: Sendable {
        var loop: ServeLoop
        var thread: pthread_t
        var registrations: [RpcbindEntry]
        var ports: (tcp: UInt16?, udp: UInt16?)
    }

    private let state = ThreadLock<State>(.idle)

    /// `log` receives what a client cannot be told: replies that could not
    /// be sent, entries left out of a list, refused paths. By default it
    /// goes to standard error.
    public init(
        service: any MountService,
        versions: [UInt32] = [1, 3],
        port: UInt16 = 0,
        tcp: Bool = true,
        udp: Bool = true,
        registerWithRpcbind: Bool = true,
        address: String? = nil,
        idleConnectionTimeout: Duration = .seconds(60),
        maxConnections: Int = 256,
        log: @escaping @Sendable (String) -> Void = { message in
            var line = "mountd: \(message)\n"
            line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
    ) {
        self.service = service
        self.versions = versions
        self.port = port
        self.tcp = tcp
        self.udp = udp
        self.registerWithRpcbind = registerWithRpcbind
        self.address = address
        self.idleConnectionTimeout = idleConnectionTimeout
        self.maxConnections = maxConnections
        self.log = log
    }

    deinit {
        stop()
    }

    /// The ports actually bound while running (nil for a transport not served).
    public var boundPorts: (tcp: UInt16?, udp: UInt16?) {
        state.withLock { state in
            if case .running(let running) = state { return running.ports }
            return (nil, nil)
        }
    }

    /// Creates the sockets, registers with rpcbind and starts serving.
    /// On failure nothing is left behind (sockets closed, entries removed).
    public func start() throws(MountRPCError) {
        try state.withLock { (state: inout State) throws(MountRPCError) in
            guard case .idle = state else {
                throw MountRPCError(step: .state, subject: "MOUNT server", rpcError: "start() may be called once")
            }
            state = .running(try launch())
        }
    }

    /// Unregisters from rpcbind, stops the serving thread, closes every
    /// socket. Safe to call more than once, and from the service itself.
    public func stop() {
        let running: Running? = state.withLock { state in
            defer { state = .stopped }
            if case .running(let running) = state { return running }
            return nil
        }
        guard let running else { return }
        for entry in running.registrations { Rpcbind.unregister(entry) }
        running.loop.wake()
        if pthread_equal(pthread_self(), running.thread) != 0 {
            pthread_detach(running.thread) // called by the service: the loop ends after this call
        } else {
            pthread_join(running.thread, nil)
        }
    }

    // MARK: start-up steps

    private func launch() throws(MountRPCError) -> Running {
        let served = try checkedVersions()
        guard tcp || udp else {
            throw MountRPCError(step: .configuration, subject: "MOUNT server", rpcError: "neither TCP nor UDP enabled")
        }
        let (bindAddress, dualStack) = try listenAddress()

        var sockets: [(MountTransport, Int32)] = []
        do {
            for transport in [MountTransport.tcp, .udp] where transport == .tcp ? tcp : udp {
                sockets.append((transport, try Self.openSocket(transport, at: bindAddress, dualStack: dualStack)))
            }
        } catch {
            for (_, fd) in sockets { close(fd) }
            throw error
        }

        let endpoints = try Self.makeTransports(sockets, versions: served)

        var registrations: [RpcbindEntry] = []
        if registerWithRpcbind {
            do {
                for endpoint in endpoints {
                    for entry in RpcbindEntry.entries(for: endpoint.local, transport: endpoint.transport,
                                                            versions: served, dualStack: dualStack) {
                        try Rpcbind.register(entry)
                        registrations.append(entry)
                    }
                }
            } catch {
                for entry in registrations { Rpcbind.unregister(entry) }
                Self.destroy(endpoints)
                throw error
            }
        }

        do {
            let dispatcher = MountDispatcher(service: service, versions: served, log: log)
            let (loop, thread) = try Self.startThread(endpoints: endpoints, dispatcher: dispatcher,
                                                      idleTimeout: idleConnectionTimeout, maxConnections: maxConnections)
            let tcpPort = endpoints.first { $0.transport == .tcp }?.local.ipPort
            let udpPort = endpoints.first { $0.transport == .udp }?.local.ipPort
            return Running(loop: loop, thread: thread, registrations: registrations, ports: (tcpPort, udpPort))
        } catch {
            for entry in registrations { Rpcbind.unregister(entry) }
            Self.destroy(endpoints)
            throw error
        }
    }

    private func checkedVersions() throws(MountRPCError) -> [UInt32] {
        let served = Array(Set(versions)).sorted()
        guard !served.isEmpty else {
            throw MountRPCError(step: .configuration, subject: "MOUNT server", rpcError: "no MOUNT version to serve")
        }
        for version in served where !MountProgram.supportedVersions.contains(version) {
            throw MountRPCError(step: .configuration, subject: "MOUNT version \(version)",
                                rpcError: "only versions \(MountProgram.supportedVersions.map(String.init).joined(separator: ", ")) are served")
        }
        return served
    }

    /// The address to bind, and whether it is a dual-stack wildcard.
    private func listenAddress() throws(MountRPCError) -> (SocketAddress, Bool) {
        if let address {
            guard let parsed = SocketAddress(numericHost: address, port: port) else {
                throw MountRPCError(step: .configuration, subject: "listen address \"\(address)\"",
                                    rpcError: "not a numeric IPv4 or IPv6 address")
            }
            return (parsed, false)
        }
        // Where the kernel has no IPv6 at all, listen on IPv4 only.
        guard Socket.supported(family: AF_INET6, type: Socket.datagram) else { return (SocketAddress.anyInet(port: port), false) }
        return (SocketAddress.anyInet6(port: port), true)
    }

    private static func openSocket(_ transport: MountTransport, at address: SocketAddress, dualStack: Bool) throws(MountRPCError) -> Int32 {
        let subject = "\(transport.rawValue) \(address.description)"
        // SO_REUSEADDR on TCP: a restarted mountd must get its fixed port
        // back despite TIME_WAIT. IPV6_V6ONLY explicit either way: the
        // sysctl default (bindv6only) varies.
        let options = ListenOptions(type: Int32((transport == .tcp ? SOCK_STREAM : SOCK_DGRAM).rawValue), reuseAddress: transport == .tcp,
                                    ipv6Only: !dualStack, backlog: SOMAXCONN)
        let fd: Int32
        do {
            fd = try address.listen(options)
        } catch {
            throw MountRPCError(step: MountRPCError.Step(error.step), subject: subject, errno: error.errno)
        }
        if transport == .udp {
            // svc_dg reads a datagram only after poll says there is one; never block on a stray wake-up.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return fd
    }

    /// Hands the sockets to libtirpc and routes our versions to the dispatcher.
    private static func makeTransports(_ sockets: [(MountTransport, Int32)], versions: [UInt32]) throws(MountRPCError) -> [ServerEndpoint] {
        let outcome: Result<[ServerEndpoint], MountRPCError> = TIRPCServerLock.withLock {
            // Accepted connections become non-blocking with a bounded record
            // size (as nfs-utils sets up), so a client that sends half a
            // call cannot hold the serving thread. Read when the listener is
            // created, process-wide.
            var maxRecord = Int32(RPC_MAXDATASIZE)
            _ = rpc_control(RPC_SVC_CONNMAXREC_SET, &maxRecord)

            var endpoints: [ServerEndpoint] = []
            for (index, (transport, fd)) in sockets.enumerated() {
                let local = SocketAddress.local(of: fd)
                let created = transport == .tcp ? svc_vc_create(fd, 0, 0) : svc_dg_create(fd, 0, 0)
                guard let xprt = created, let local else {
                    let subject = "\(transport.rawValue) socket"
                    if let created { mountglue_destroy(created) } else { close(fd) }
                    for (_, later) in sockets[(index + 1)...] { close(later) }
                    for endpoint in endpoints { mountglue_destroy(endpoint.xprt) }
                    return .failure(MountRPCError(step: .transport, subject: subject,
                                                  rpcError: transport == .tcp ? "svc_vc_create failed" : "svc_dg_create failed"))
                }
                endpoints.append(ServerEndpoint(transport: transport, fd: fd, xprt: xprt, local: local))
                for version in versions where !mountglue_svc_reg(xprt, rpcprog_t(MountProgram.number), rpcvers_t(version)) {
                    for (_, later) in sockets[(index + 1)...] { close(later) }
                    for endpoint in endpoints { mountglue_destroy(endpoint.xprt) }
                    return .failure(MountRPCError(step: .transport, subject: "svc_reg(mountd, \(version))",
                                                  rpcError: "another dispatcher has this program and version in this process"))
                }
            }
            return .success(endpoints)
        }
        return try outcome.get()
    }

    private static func destroy(_ endpoints: [ServerEndpoint]) {
        TIRPCServerLock.withLock {
            for endpoint in endpoints { mountglue_destroy(endpoint.xprt) }
        }
    }

    private static func startThread(endpoints: [ServerEndpoint], dispatcher: MountDispatcher,
                                    idleTimeout: Duration, maxConnections: Int) throws(MountRPCError) -> (ServeLoop, pthread_t) {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { throw .system(.thread, "wake-up pipe") }
        for fd in pipeFDs {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        let loop = ServeLoop(endpoints: endpoints, dispatcher: dispatcher, wakeReadFD: pipeFDs[0], wakeWriteFD: pipeFDs[1],
                             idleTimeout: idleTimeout, maxConnections: max(1, maxConnections))
        let thread: pthread_t
        switch PosixThread.start(detached: false, { loop.run() }) {
        case .success(let started): thread = started
        case .failure(let error): throw MountRPCError(step: .thread, subject: "MOUNT serving thread", errno: error.errno)
        }
        return (loop, thread)
    }
}
