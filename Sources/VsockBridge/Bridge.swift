#if canImport(Glibc)
import Glibc
#endif
import Forwarding
import NFSAdmin
import NFSExports
import RPCMetrics
import SystemEdge

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

        public var fd: Int32 {
            switch self {
            case .vsock(let fd, _), .unix(let fd, _, _): fd
            }
        }

        /// How the log names it.
        public var name: String {
            switch self {
            case .vsock(_, let port): "vsock:*:\(port)"
            case .unix(_, let path, let cid): "\(path) (CID \(cid))"
            }
        }
    }

    /// What the bridge knows about one guest, for limits and status.
    struct GuestRecord {
        var open = 0
        /// Of `open`, those from unprivileged vsock ports.
        var openUnprivileged = 0
        /// The rest: privileged ports, and every hybrid-vsock connection.
        var openPrivileged: Int { open - openUnprivileged }
        var accepted = 0
        var refused = 0
        /// Bytes of connections that have ended.
        var endedFromGuest: UInt64 = 0
        var endedToGuest: UInt64 = 0
        /// RPC counts of connections that have ended.
        var endedRPC = RPCCounts()
        var meters: [ObjectIdentifier: ConnectionMeter] = [:]
        /// The guest side of each open connection (same keys as meters):
        /// a release shuts them down. Removed before the descriptor is
        /// closed, so a shutdown never reaches a reused descriptor.
        var sockets: [ObjectIdentifier: Int32] = [:]
        /// Seconds since the epoch of the last connection change or byte
        /// seen; `seenBytes` tells the status snapshot when bytes moved.
        var lastActivity = 0
        var seenBytes: UInt64 = 0
    }

    /// The configuration in force; its limits change on reload (SIGHUP).
    private let live: ThreadLock<BridgeConfiguration>
    public var configuration: BridgeConfiguration { live.withLock { $0 } }
    /// A listener being served, with the one uid a hybrid socket accepts.
    struct Served {
        var listener: Listener
        var vmmUID: UInt32?
    }

    /// The listeners being served, those a reload has stopped (the accept
    /// thread closes them), and a generation that changes with the list.
    private let listening = ThreadLock<(active: [Served], stopping: [Listener], generation: UInt64, acceptorStarted: Bool)>(([], [], 0, false))
    /// Written to wake the accept thread when the listener list changes.
    private let wake: (read: Int32, write: Int32)
    let log: DaemonLog
    private let state = ThreadLock<(total: Int, guests: [VsockCID: GuestRecord])>((0, [:]))
    private let refusals = ThreadLock(RefusalLog())
    /// A guest's connection lines (connected, closed, ended), limited the
    /// same way: a flood of accepted connections is two lines each.
    private let connectionLines = ThreadLock(RefusalLog(what: "connection messages", burst: 20))
    /// Written on every connection change; the status publisher waits on it.
    private let changes: (read: Int32, write: Int32)

    public init(configuration: BridgeConfiguration, log: DaemonLog) {
        live = ThreadLock(configuration)
        self.log = log
        changes = Self.nonBlockingPipe()
        wake = Self.nonBlockingPipe()
    }

    /// Both ends non-blocking and close-on-exec; (-1, -1) if pipe fails.
    private static func nonBlockingPipe() -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return (-1, -1) }
        for fd in ends {
            _ = fcntl(fd, F_SETFL, O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        return (ends[0], ends[1])
    }

    /// Open connections per guest CID.
    public var guests: [VsockCID: Int] {
        state.withLock { state in state.guests.compactMapValues { $0.open > 0 ? $0.open : nil } }
    }

    /// Per guest: mapped address, connections, bytes each way, RPC counts,
    /// last activity (`now`, seconds since the epoch, marks guests whose byte
    /// counts moved since the previous snapshot).
    public func guestStatus(now: Int) -> [BridgeStatus.Guest] {
        state.withLock { state in
            var result: [BridgeStatus.Guest] = []
            for (cid, record) in state.guests {
                let fromGuest = record.meters.values.reduce(record.endedFromGuest) { $0 &+ $1.bytesFromA }
                let toGuest = record.meters.values.reduce(record.endedToGuest) { $0 &+ $1.bytesFromB }
                var rpc = record.endedRPC
                for meter in record.meters.values { rpc += meter.rpc }
                if fromGuest &+ toGuest != record.seenBytes {
                    state.guests[cid]?.seenBytes = fromGuest &+ toGuest
                    state.guests[cid]?.lastActivity = now
                }
                result.append(BridgeStatus.Guest(
                    cid: cid, address: configuration.mapping.address(of: cid).map { "\($0)" } ?? "-",
                    open: record.open, accepted: record.accepted, refused: record.refused,
                    bytesFromGuest: fromGuest, bytesToGuest: toGuest,
                    lastActivity: state.guests[cid]?.lastActivity ?? record.lastActivity, rpc: rpc))
            }
            return result.sorted { $0.cid < $1.cid }
        }
    }

    /// Bytes carried for every guest so far, both ways (wrapping): it
    /// moves whenever any guest's bytes do, so the status publisher can
    /// tell that nothing moved without building the status of every guest.
    public var bytesCarried: UInt64 {
        state.withLock { state in
            state.guests.values.reduce(UInt64(0)) { sum, record in
                record.meters.values.reduce(sum &+ record.endedFromGuest &+ record.endedToGuest) { $0 &+ $1.bytesFromA &+ $1.bytesFromB }
            }
        }
    }

    /// Waits until a connection opens, closes or is refused, a listener
    /// or the limits change, or the timeout passes; true for a change.
    @discardableResult
    public func waitForChange(timeoutMilliseconds: Int32) -> Bool {
        guard changes.read >= 0 else { usleep(UInt32(timeoutMilliseconds) * 1000); return true }
        var pfd = pollfd(fd: changes.read, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMilliseconds) > 0 else { return false }
        var sink = [UInt8](repeating: 0, count: 256)
        while read(changes.read, &sink, sink.count) > 0 {}
        return true
    }

    private func noteChange() {
        guard changes.write >= 0 else { return }
        var byte: UInt8 = 1
        // A full pipe already says "changed".
        _ = write(changes.write, &byte, 1)
    }

    /// Starts serving listeners: one thread accepts on all of them (a
    /// host with a hybrid-vsock socket per VM has as many listeners as
    /// VMs, and a thread each would be a thousand threads waking up).
    public func start(_ listeners: [Listener]) {
        for listener in listeners {
            // Accepted connections inherit the listener's vsock buffer.
            if case .vsock(let fd, _) = listener { SocketTuning.enlargeVsockBuffer(fd) }
            // Non-blocking: accept takes what is pending and no more.
            _ = fcntl(listener.fd, F_SETFL, fcntl(listener.fd, F_GETFL) | O_NONBLOCK)
        }
        // A hybrid socket's one legitimate client, fixed when it starts
        // being served; nil (nobody) for a socket the configuration does
        // not name.
        let configured = configuration.unixListenersByPath
        let served = listeners.map { listener -> Served in
            guard case .unix(_, let path, _) = listener else { return Served(listener: listener, vmmUID: nil) }
            return Served(listener: listener, vmmUID: configured[BridgeConfiguration.pathKey(path)]?.vmmUID)
        }
        let first = listening.withLock { state in
            state.active.append(contentsOf: served)
            state.generation &+= 1
            defer { state.acceptorStarted = true }
            return !state.acceptorStarted
        }
        if first {
            DetachedThread.start { [self] in acceptLoop() }
        } else {
            wakeAcceptor()
        }
        noteChange()
    }

    /// The listeners being served now.
    public var listeners: [Listener] { listening.withLock { $0.active.map(\.listener) } }

    /// Stops serving a listener (a reload that dropped it): the accept
    /// thread closes it at once; open connections are kept.
    public func stop(_ listener: Listener) {
        listening.withLock { state in
            guard let index = state.active.firstIndex(where: { $0.listener.fd == listener.fd }) else { return }
            state.stopping.append(state.active.remove(at: index).listener)
            state.generation &+= 1
        }
        wakeAcceptor()
        noteChange()
    }

    /// Applies a reloaded configuration's limits and listener lists (the
    /// caller opens and stops the listeners themselves); the target, the
    /// guest block and the buffer size stay. Returns what changed.
    public func reload(_ new: BridgeConfiguration) -> [String] {
        live.withLock { current in
            var changes: [String] = []
            func take(_ name: String, _ path: WritableKeyPath<BridgeConfiguration, Int>) {
                guard current[keyPath: path] != new[keyPath: path] else { return }
                changes.append("\(name) \(current[keyPath: path]) -> \(new[keyPath: path])")
                current[keyPath: path] = new[keyPath: path]
            }
            take("max-per-guest", \.maxConnectionsPerGuest)
            take("max-unprivileged-per-guest", \.maxUnprivilegedPerGuest)
            take("max-connections", \.maxConnections)
            take("idle-timeout", \.idleTimeout)
            current.vsockPorts = new.vsockPorts
            current.unixListeners = new.unixListeners
            noteChange()
            return changes
        }
    }

    private func wakeAcceptor() {
        guard wake.write >= 0 else { return }
        var byte: UInt8 = 1
        // A full pipe already says "look again".
        _ = write(wake.write, &byte, 1)
    }

    /// The accept thread: one poll over the wake pipe and every listener;
    /// each ready listener's pending connections are taken (up to a batch,
    /// so that one flooding socket cannot starve the others).
    private func acceptLoop() {
        var generation: UInt64 = 0
        var served: [Served] = []
        var fds: [pollfd] = []
        var lastResourceLog = 0
        while true {
            let (stopped, changed) = listening.withLock { state -> ([Listener], [Served]?) in
                let stopped = state.stopping
                state.stopping = []
                guard state.generation != generation else { return (stopped, nil) }
                generation = state.generation
                return (stopped, state.active)
            }
            // No longer polled (the list below is rebuilt first): closed here.
            if let changed {
                served = changed
                fds = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
                    + served.map { pollfd(fd: $0.listener.fd, events: Int16(POLLIN), revents: 0) }
            }
            for listener in stopped {
                close(listener.fd)
                log.notice("stopped listening on \(listener.name)")
            }
            // Without a wake pipe (pipe failed at start), look again each second.
            let ready = poll(&fds, nfds_t(fds.count), wake.read >= 0 ? -1 : 1000)
            if ready < 0 {
                if errno == EINTR { continue }
                log.error("poll on \(served.count) listeners: \(SystemError.describe(errno))")
                sleep(1)
                continue
            }
            if fds[0].revents != 0 {
                var sink = [UInt8](repeating: 0, count: 256)
                while read(wake.read, &sink, sink.count) > 0 {}
                // The list changed: a stopped listener must not accept
                // again, so take the new list before accepting anything
                // (pending connections stay pending meanwhile).
                continue
            }
            for index in served.indices where fds[index + 1].revents != 0 {
                batch: for _ in 0..<64 {
                    switch acceptOne(served[index]) {
                    case .accepted: continue batch
                    case .none: break batch
                    case .failed(let error):
                        // Out of descriptors or memory: every listener is
                        // stuck alike; say so at most every 10 s and let
                        // connections end before trying again.
                        let now = Int(time(nil))
                        if now - lastResourceLog >= 10 {
                            log.error("accept on \(served[index].listener.name): \(SystemError.describe(error))")
                            lastResourceLog = now
                        }
                        usleep(100_000)
                        break batch
                    }
                }
            }
        }
    }

    enum AcceptResult { case accepted, none, failed(Int32) }

    /// Takes one pending connection of a listener and admits or refuses it.
    private func acceptOne(_ served: Served) -> AcceptResult {
        switch served.listener {
        case .vsock(let fd, let port):
            let (connection, peerAddress) = SocketAddress.accept(fd)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { return .accepted }
                return errno == EAGAIN ? .none : .failed(errno)
            }
            // The host kernel (vhost-vsock) drops guest packets whose
            // source CID is not the guest's own: the CID is trustworthy.
            guard case .vsock(let peerCID, let peerPort)? = peerAddress else {
                log.warning("vsock port \(port): a connection without a vsock peer address; closed")
                close(connection)
                return .accepted
            }
            // Not the address's description: VMADDR_CID_ANY stays a number here.
            let name = "vsock:\(peerCID):\(peerPort)"
            if let refusal = vsockRefusal(of: peerCID) {
                refuse(connection, cid: peerCID, peer: name, refusal.reason)
                return .accepted
            }
            admit(connection, cid: peerCID, privileged: peerPort < 1024, unprivileged: peerPort >= 1024, from: name)
        case .unix(let fd, let path, let cid):
            let connection = Socket.accept(fd)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { return .accepted }
                return errno == EAGAIN ? .none : .failed(errno)
            }
            let peer = "vsock:\(cid) via \(path)"
            // The socket stands for one VM only as long as nobody but
            // its VMM connects: the file mode keeps other users out,
            // this check everyone else, root included.
            guard let vmm = served.vmmUID else {
                refuse(connection, cid: cid, peer: peer, "no hybrid-vsock listener in the configuration names the VMM of \(path)")
                return .accepted
            }
            let credentials: PeerCredentials
            do {
                credentials = try PeerCredentials(of: connection)
            } catch {
                refuse(connection, cid: cid, peer: peer, "\(error)")
                return .accepted
            }
            guard credentials.uid == vmm else {
                refuse(connection, cid: cid, peer: peer, "pid \(credentials.pid) uid \(credentials.uid) is not the VM's VMM (uid \(vmm))")
                return .accepted
            }
            // The VMM does not pass the guest's port: unprivileged.
            admit(connection, cid: cid, privileged: false, unprivileged: false, from: peer)
        }
        return .accepted
    }

    /// Why a connection is refused before it takes a slot.
    struct Refusal: Error, Equatable {
        var reason: String
    }

    /// The loopback address a connection from `cid` comes from. CID 0
    /// (the hypervisor), VMADDR_CID_ANY and CIDs beyond the block have
    /// none. CIDs 1 (vsock loopback) and 2 (the host) have one: exports(5)
    /// decides, and only an explicit vsock:1 or vsock:2 rule lets them in.
    func loopbackSource(of cid: VsockCID) -> Result<IPAddress, Refusal> {
        let mapping = configuration.mapping
        switch cid {
        case 0: return .failure(Refusal(reason: "CID 0 is the hypervisor's, not a guest's"))
        case SocketAddress.anyCID: return .failure(Refusal(reason: "CID \(cid) is VMADDR_CID_ANY, not a guest's"))
        default:
            guard let address = mapping.address(of: cid) else {
                return .failure(Refusal(reason: "CID \(cid) has no address in \(mapping) (CIDs up to \(mapping.maxCID))"))
            }
            return .success(address)
        }
    }

    /// Why an AF_VSOCK connection from `cid` is refused, beyond what
    /// `loopbackSource` says: a CID the configuration gives a hybrid-vsock
    /// VM is that VM's identity, and a vsock guest with the same CID (a
    /// VMM may pick any) would pass as it.
    func vsockRefusal(of cid: VsockCID) -> Refusal? {
        guard let hybrid = configuration.unixListeners.first(where: { $0.cid == cid }) else { return nil }
        return Refusal(reason: "CID \(cid) is the hybrid-vsock VM's behind \(hybrid.path), not an AF_VSOCK guest's")
    }

    /// Counts a refusal in the guest's record, logs it and closes the
    /// connection: no thread, no connection slot.
    private func refuse(_ connection: Int32, cid: VsockCID, peer: String, _ reason: String) {
        let now = time(nil)
        state.withLock { state in
            state.guests[cid, default: GuestRecord()].refused += 1
            state.guests[cid]?.lastActivity = now
        }
        noteChange()
        logRefusal(cid: cid, "refused \(peer): \(reason)")
        close(connection)
    }

    /// Why a new connection of guest `cid` is refused (nil: admitted).
    /// The total cap first, whose last slots only a guest without a
    /// connection may take (reservedForNewGuests), then the guest's quota:
    /// its unprivileged-port connections have their own, so that a
    /// guest's users cannot take the slots of its kernel's NFS client.
    static func quotaRefusal(cid: VsockCID, record: GuestRecord, total: Int, unprivileged: Bool, limits: BridgeConfiguration) -> String? {
        if total >= limits.maxConnections {
            return "the bridge has \(total) connections (limit \(limits.maxConnections))"
        }
        if record.open > 0 && total >= limits.maxConnections - limits.reservedForNewGuests {
            return "the bridge has \(total) connections (limit \(limits.maxConnections)); its last \(limits.reservedForNewGuests) are kept for guests that have none, and guest \(cid) has \(record.open)"
        }
        if unprivileged {
            if record.openUnprivileged >= limits.maxUnprivilegedPerGuest {
                return "guest \(cid) has \(record.openUnprivileged) connections from unprivileged ports (limit \(limits.maxUnprivilegedPerGuest); its privileged ones are not affected)"
            }
        } else if record.openPrivileged >= limits.maxConnectionsPerGuest {
            return "guest \(cid) has \(record.openPrivileged) connections (limit \(limits.maxConnectionsPerGuest))"
        }
        return nil
    }

    /// `privileged`: the guest's port is below 1024 (its root's), which
    /// nfsd's `secure` check is to see. `unprivileged`: the connection
    /// counts against the guest's unprivileged quota (an AF_VSOCK
    /// connection from a port of 1024 and up; a hybrid-vsock VM's
    /// connections cannot be told apart and share the main quota).
    private func admit(_ connection: Int32, cid: VsockCID, privileged: Bool, unprivileged: Bool, from peer: String) {
        let source: IPAddress
        switch loopbackSource(of: cid) {
        case .success(let address): source = address
        case .failure(let refusal):
            refuse(connection, cid: cid, peer: peer, refusal.reason)
            return
        }
        _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
        let limits = configuration
        let meter = ConnectionMeter()
        let now = time(nil)
        let refusal: String? = state.withLock { state in
            var record = state.guests[cid, default: GuestRecord()]
            defer { state.guests[cid] = record }
            record.lastActivity = now
            if let refusal = Self.quotaRefusal(cid: cid, record: record, total: state.total, unprivileged: unprivileged, limits: limits) {
                record.refused += 1
                return refusal
            }
            state.total += 1
            record.open += 1
            if unprivileged { record.openUnprivileged += 1 }
            record.accepted += 1
            record.meters[ObjectIdentifier(meter)] = meter
            record.sockets[ObjectIdentifier(meter)] = connection
            return nil
        }
        noteChange()
        if let refusal {
            logRefusal(cid: cid, "refused \(peer): \(refusal)")
            close(connection)
            return
        }
        let started = DetachedThread.start { [self] in
            serve(connection, cid: cid, from: source, privileged: privileged, peer: peer, meter: meter)
            release(cid, meter, unprivileged: unprivileged)
            close(connection)
        }
        if !started {
            log.error("cannot start a thread for \(peer)")
            release(cid, meter, unprivileged: unprivileged)
            close(connection)
        }
    }

    /// Refusals reach the log rate-limited per guest (RefusalLog).
    private func logRefusal(cid: VsockCID, _ message: String) {
        logLimited(refusals, cid: cid, .warning, message)
    }

    /// A connection's own lines, rate-limited per guest too.
    private func logConnection(cid: VsockCID, _ priority: DaemonLog.Priority, _ message: String) {
        logLimited(connectionLines, cid: cid, priority, message)
    }

    private func logLimited(_ limit: ThreadLock<RefusalLog>, cid: VsockCID, _ priority: DaemonLog.Priority, _ message: String) {
        let now = Int(time(nil))
        let line: String? = limit.withLock { table in
            if table.entries.count > 4096 { table.prune(now: now) }
            return table.line(cid: cid, now: now, message: message)
        }
        if let line { log.log(priority, line) }
    }

    private func release(_ cid: VsockCID, _ meter: ConnectionMeter, unprivileged: Bool) {
        let now = time(nil)
        state.withLock { state in
            state.total -= 1
            guard var record = state.guests[cid] else { return }
            record.open -= 1
            if unprivileged { record.openUnprivileged -= 1 }
            record.endedFromGuest &+= meter.bytesFromA
            record.endedToGuest &+= meter.bytesFromB
            record.endedRPC += meter.rpc
            record.meters[ObjectIdentifier(meter)] = nil
            record.sockets[ObjectIdentifier(meter)] = nil
            record.lastActivity = now
            state.guests[cid] = record
        }
        noteChange()
    }

    /// A guest that left (nfsd-control release-guest): every connection
    /// of its CID is shut down; their forwarders see the end and close
    /// both sides. Returns how many were open.
    @discardableResult
    public func closeConnections(of cid: VsockCID) -> Int {
        state.withLock { state in
            let sockets = state.guests[cid]?.sockets.values.map { $0 } ?? []
            for socket in sockets { shutdown(socket, Int32(SHUT_RDWR)) }
            return sockets.count
        }
    }

    /// Forwards one admitted connection; the caller closes `connection`
    /// once it is no longer listed (release).
    private func serve(_ connection: Int32, cid: VsockCID, from source: IPAddress, privileged: Bool, peer: String, meter: ConnectionMeter) {
        let outbound: Int32
        do {
            outbound = try LoopbackConnector.connect(from: source, privileged: privileged,
                                                     to: configuration.targetHost, port: configuration.targetPort)
        } catch {
            logConnection(cid: cid, .error, "\(peer): cannot reach the NFS server at \(configuration.targetHost):\(configuration.targetPort): \(error)")
            return
        }
        defer { close(outbound) }
        logConnection(cid: cid, .info, "\(peer) connected as \(source) (\(privileged ? "privileged" : "unprivileged") port)")
        var forwarder = Forwarder(bufferSize: configuration.bufferSize, idleTimeout: configuration.idleTimeout,
                                  halfOpenTimeout: configuration.halfOpenTimeout)
        forwarder.meter = meter
        forwarder.measuresRPC = true
        let end = forwarder.run(connection, outbound)
        switch end {
        case .closed: logConnection(cid: cid, .info, "\(peer) closed")
        case .idle: logConnection(cid: cid, .info, "\(peer) idle for \(configuration.idleTimeout) s; closed")
        case .halfOpenTimeout: logConnection(cid: cid, .info, "\(peer) half-open for \(configuration.halfOpenTimeout) s; closed")
        case .error(let reason): logConnection(cid: cid, .info, "\(peer) ended: \(reason)")
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
        // Unprivileged: port 0 (the kernel's choice) through the same
        // search, bound to the guest's source address all the same.
        let outcome = try PrivilegedPort.connect(
            to: .inet(address: targetValue, port: port), from: { .inet(address: sourceValue, port: $0) },
            ports: privileged ? PrivilegedPort.range : [0], prepare: SocketTuning.noDelay)
        switch outcome {
        case .connected(let fd): return fd
        case .bindFailed(let local, let error): throw SystemError("bind", "\(source):\(local)", errno: error)
        case .connectFailed(let error): throw SystemError("connect", "\(host):\(port) from \(source)", errno: error)
        case .noFreePort(let error): throw SystemError("bind", "\(source): no free privileged port", errno: error)
        }
    }
}
