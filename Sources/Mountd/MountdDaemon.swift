#if canImport(Glibc)
import Glibc
#endif
import CLinux
import CSystemd
import Dispatch
import MountdCore
import MountProtocol
import NFSAdmin
import NFSExports
import SystemEdge

/// The kernel's upcall daemon: answers auth.unix.ip, nfsd.export, nfsd.fh
/// (and auth.unix.gid with --manage-gids) from /var/lib/nfs/etab.
///
/// One thread polls the channels and a signalfd. Answers that need no name
/// lookup are written at once; auth.unix.ip requests that need a reverse
/// lookup go to worker threads (a WorkerPool), so a slow resolver for one
/// client never delays another. The export table is an immutable snapshot swapped whole
/// when etab changes (exportfs renames it) or on SIGHUP, so no request ever
/// sees a half-loaded table.
public final class MountdDaemon: @unchecked Sendable {
    public struct Options: Sendable {
        public var manageGids = false
        public var ttl = CacheReply.ttl
        /// Loopback addresses that stand for vsock guests (the bridge path).
        public var vsockMapping = VsockLoopbackMapping.default
        public init() {}
    }

    struct Snapshot: Sendable {
        var authority: ExportAuthority
        var stamp: FileStamp?
        /// The table has host names, wildcards or netgroups: IP clients
        /// need their names looked up.
        var needsNames: Bool

        /// `client`'s names are looked up (which may block): an IP client
        /// of a table that has host names, wildcards or netgroups.
        func looksUpNames(of client: ClientAddress) -> Bool {
            if case .ip = client { return needsNames }
            return false
        }
    }

    struct FileStamp: Equatable, Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var mtime: Int
        var mtimeNanoseconds: Int
    }

    public let paths: SystemPaths
    public let options: Options
    public let log: DaemonLog
    public let names = SystemNameService()
    public let filesystems: FilesystemProbe
    private let snapshot: ThreadLock<Snapshot>
    /// The host nfsd's channels.
    private var channels: [CacheChannel] = []
    /// The channels of the nfsd in the vsock bridge's namespace, while
    /// that namespace exists; their requests are read with `bridgeView`.
    private var bridgeChannels: [CacheChannel] = []
    private var bridgeIdentity: NetworkNamespace.Identity? = nil
    private var bridgeView: UpcallView? = nil
    /// The attached bridge's block, for the host view, which the MOUNT
    /// service's threads read too.
    private let attachedBlock = ThreadLock<VsockLoopbackMapping?>(nil)
    /// A namespace mountd could not serve (said once, not every second).
    private var bridgeRefused: NetworkNamespace.Identity? = nil
    /// A namespace seen without its block record yet, and since when.
    private var bridgeWaited: (identity: NetworkNamespace.Identity, since: ContinuousClock.Instant)? = nil
    private var signalFD: Int32 = -1
    /// Reverse lookups of clients' names (each may wait out a resolver's
    /// timeouts): up to 32 at once, so that one slow name never holds up
    /// another client's answer.
    private let lookups = WorkerPool(limit: 32)
    private var stopping = false

    public init(paths: SystemPaths, options: Options, log: DaemonLog) {
        self.paths = paths
        self.options = options
        self.log = log
        filesystems = FilesystemProbe(paths: paths)
        let features = KernelExports(paths: paths).features()
        snapshot = ThreadLock(Snapshot(authority: ExportAuthority(table: ExportTable(), features: features), stamp: nil, needsNames: false))
    }

    /// The current export authority (for the MOUNT service).
    public var authority: ExportAuthority { snapshot.withLock { $0.authority } }

    /// An IP client as the export table sees it (see `identity(of:in:)`).
    func identity(of address: IPAddress) -> ClientIdentity {
        identity(of: .ip(address), in: snapshot.withLock { $0 })
    }

    /// A client as `snapshot`'s table sees it: its names are looked up only
    /// when `Snapshot.looksUpNames(of:)` says so.
    func identity(of client: ClientAddress, in snapshot: Snapshot) -> ClientIdentity {
        if case .ip(let address) = client, snapshot.looksUpNames(of: client) {
            return ClientIdentity.ip(address, names: names.names(of: address))
        }
        return ClientIdentity(address: client)
    }

    // MARK: export table

    func stampOfEtab() -> FileStamp? {
        var st = stat()
        guard stat(paths.etab, &st) == 0 else { return nil }
        return FileStamp(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                         mtime: st.st_mtim.tv_sec, mtimeNanoseconds: st.st_mtim.tv_nsec)
    }

    /// Reloads etab if it changed (or `force`). Returns whether it loaded.
    @discardableResult
    public func reloadIfNeeded(force: Bool = false) -> Bool {
        let stamp = stampOfEtab()
        if !force && snapshot.withLock({ $0.stamp }) == stamp { return false }
        let features = KernelExports(paths: paths).features()
        let store = ETabStore(paths: paths, features: features)
        let entries: [ExportEntry]
        do {
            let read = try store.read()
            for diagnostic in read.diagnostics where diagnostic.severity == .error {
                log.warning("etab: \(diagnostic)")
            }
            // A malformed line never grants anything: its entry is absent.
            entries = read.entries
        } catch {
            log.error("cannot read \(paths.etab): \(error); keeping the previous export table")
            return false
        }
        var diagnostics: [Diagnostic] = []
        let table = ExportTable(entries, diagnostics: &diagnostics)
        let needsNames = table.entries.contains { entry in
            switch entry.client {
            case .host, .wildcard, .netgroup: true
            default: false
            }
        }
        names.forget()
        filesystems.forget()
        let previous = snapshot.withLock { snapshot in
            defer { snapshot = Snapshot(authority: ExportAuthority(table: table, features: features), stamp: stamp, needsNames: needsNames) }
            return snapshot.stamp == nil ? nil : snapshot.authority
        }
        log.info("loaded \(table.count) export\(table.count == 1 ? "" : "s") from \(paths.etab)")
        // exportfs flushes the caches after it renames etab; one killed in
        // between leaves them granting what the new table took away, for
        // as long as their entries last. Whatever this reload finds
        // revoked is flushed here too.
        if let previous, let revoked = Self.revoked(from: previous, to: table, features: features) {
            let now = Int(time(nil))
            _ = try? KernelExports(paths: paths).flushCaches(now: now)
            _ = try? BridgeNamespace(paths: paths).flushCaches(now: now)
            log.notice("etab no longer grants \(revoked): flushed the kernel's export caches")
        }
        return true
    }

    /// The first export (as etab writes it) the old table has and the new
    /// one does not, with the same options; nil when nothing was taken away.
    static func revoked(from old: ExportAuthority, to new: ExportTable, features: ExportFeatures) -> String? {
        let kept = Set(new.orderedEntries.map { ETabFormat.line($0, features: features) })
        for entry in old.table.orderedEntries where !kept.contains(ETabFormat.line(entry, features: features)) {
            return entry.displayName
        }
        return nil
    }

    // MARK: running

    /// Opens the channels and prepares signals. Call before `run()`.
    var caches: [String] {
        var caches = ["auth.unix.ip", "nfsd.export", "nfsd.fh"]
        if options.manageGids { caches.append("auth.unix.gid") }
        return caches
    }

    public func prepare() throws(SystemError) {
        channels = caches.map { CacheChannel(cache: $0, paths: paths) }
        for channel in channels {
            if let error = channel.open() {
                throw SystemError("open", channel.path, errno: error)
            }
        }
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in [SIGHUP, SIGTERM, SIGINT] { sigaddset(&mask, signal) }
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        signalFD = signalfd(-1, &mask, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        if signalFD < 0 { throw SystemError.current("signalfd", "SIGHUP/SIGTERM") }
        reloadIfNeeded(force: true)
        // Answers cached while no mountd ran may be negative, or older than
        // etab; only then are the caches flushed (staleCacheReason).
        let kernel = KernelExports(paths: paths)
        if let reason = kernel.staleCacheReason(etabModified: etabModified) {
            _ = try? kernel.flushCaches(now: Int(time(nil)))
            log.notice("flushed the kernel's export caches: \(reason)")
        }
        refreshBridge()
    }

    /// etab's mtime in seconds, as loaded.
    var etabModified: Int? { snapshot.withLock { $0.stamp.map { Int($0.mtime) } } }

    // MARK: the vsock bridge's nfsd

    /// What addresses mean on the host's channels: addresses of the guest
    /// blocks (configured, and the bridge's recorded one) are nobody there.
    public var hostView: UpcallView {
        var blocks = [options.vsockMapping]
        if let block = attachedBlock.withLock({ $0 }), block != options.vsockMapping { blocks.append(block) }
        return .host(guestBlocks: blocks)
    }

    /// Follows the bridge's namespace: serves the upcalls of the nfsd
    /// instance in it from the moment rpc.nfsd creates it (checked every
    /// second), and lets go when it is removed or replaced. The guest block
    /// comes from the namespace's record, so mountd and the bridge agree.
    func refreshBridge() {
        let namespace = BridgeNamespace(paths: paths)
        let identity = namespace.identity
        if identity == bridgeIdentity && bridgeChannels.allSatisfy(\.isOpen) { return }
        if !bridgeChannels.isEmpty {
            bridgeChannels.forEach { $0.close() }
            bridgeChannels = []
            bridgeView = nil
            attachedBlock.withLock { $0 = nil }
            log.notice(identity == nil ? "the vsock bridge's namespace is gone: no longer answering its nfsd"
                                       : "the vsock bridge's namespace changed or a channel closed: reattaching")
        }
        bridgeIdentity = nil
        guard let identity, identity != bridgeRefused else { return }
        let block: VsockLoopbackMapping
        do {
            block = try namespace.guestBlock()
        } catch .missing where bridgeWaited.map({ ContinuousClock.now - $0.since < .seconds(10) && $0.identity == identity }) ?? true {
            // rpc.nfsd records the block right after pinning the namespace
            // (older ones) or a moment before: wait for it a while.
            if bridgeWaited?.identity != identity { bridgeWaited = (identity, ContinuousClock.now) }
            return
        } catch {
            bridgeRefused = identity
            log.error("not answering the vsock bridge's nfsd (\(namespace.pin)): \(error); its guests get no access")
            return
        }
        let opened = caches.map { CacheChannel(cache: $0, paths: paths.bridgeInstance, namespace: namespace.pin) }
        for channel in opened {
            if let error = channel.open() {
                opened.forEach { $0.close() }
                // The namespace may be half made (rpc.nfsd still at work): try again next second.
                log.info("cannot open \(channel.name) yet: \(SystemError.describe(error))")
                return
            }
        }
        bridgeChannels = opened
        bridgeIdentity = identity
        bridgeRefused = nil
        bridgeView = .bridge(block)
        attachedBlock.withLock { $0 = block }
        if let reason = try? namespace.flushCachesIfStale(etabModified: etabModified, now: Int(time(nil))) {
            log.notice("flushed the vsock bridge nfsd's export caches: \(reason)")
        }
        log.notice("answering the vsock bridge's nfsd too (network namespace \(BridgeNamespace.name), \(identity), guests from \(block))")
    }

    /// Serves the upcalls, and the MOUNT service when there is one, until
    /// SIGTERM or SIGINT. Returns false when the MOUNT service could not
    /// start (said in the log). Call `prepare()` first.
    ///
    /// The upcalls are answered from the first moment. A restarted mountd
    /// finds the requests the kernel held for it while it was gone, and
    /// each moment before it reads them is one their clients wait, and one
    /// more for the kernel to set requests aside and replay them. So the
    /// MOUNT service, whose sockets and rpcbind registrations take a second
    /// or more on a busy host, starts beside the upcall loop on a thread
    /// of its own, and systemd hears READY=1 once both serve.
    public func serve(mount server: MountRPCServer?) -> Bool {
        let ready = "ready: answering \(paths.procRPC) upcalls from \(paths.etab)"
        guard let server else {
            log.notice(ready)
            run(notifyReady: true)
            return true
        }
        let failed = ThreadLock(false)
        let started = DispatchSemaphore(value: 0)
        let thread = DetachedThread.start { [self] in
            defer { started.signal() }
            do throws(MountRPCError) {
                try server.start()
            } catch {
                let hint = switch error.step {
                case .registration: " (is rpcbind running? NFSv4-only servers can run mountd with -N 3)"
                case .bind: " (another program has the port: -p or [mountd] port in nfs.conf chooses another)"
                default: ""
                }
                log.error("cannot start the MOUNT service: \(error)\(hint)")
                failed.withLock { $0 = true }
                kill(getpid(), SIGTERM)
                return
            }
            let ports = server.boundPorts
            log.notice("MOUNT v\(server.versions.map(String.init).joined(separator: ", v")) on tcp port \(ports.tcp.map(String.init) ?? "-"), udp port \(ports.udp.map(String.init) ?? "-")")
            log.notice(ready)
            _ = sd_notify(0, "READY=1\nSTATUS=answering the kernel's export upcalls and MOUNT")
        }
        if !thread {
            log.error("cannot start the MOUNT service: no thread for it")
            return false
        }
        run(notifyReady: false)
        started.wait()
        server.stop()
        return !failed.withLock { $0 }
    }

    /// Serves the upcalls until SIGTERM or SIGINT.
    public func run(notifyReady: Bool = true) {
        if notifyReady { _ = sd_notify(0, "READY=1\nSTATUS=answering the kernel's export upcalls") }
        var lastMaintenance = time(nil)
        while !stopping {
            let polled = channels + bridgeChannels
            var fds = polled.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            fds.append(pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0))
            let ready = poll(&fds, nfds_t(fds.count), 1000)
            if ready < 0 && errno != EINTR {
                log.error("poll: \(SystemError.describe(errno))")
                sleep(1)
            }
            if ready > 0 {
                for (index, channel) in polled.enumerated() where fds[index].fd >= 0 {
                    let events = Int32(fds[index].revents)
                    if events & (POLLERR | POLLHUP | POLLNVAL) != 0 && events & POLLIN == 0 {
                        log.warning("\(channel.name) went away; reopening")
                        channel.close()
                        continue
                    }
                    if events & POLLIN != 0 { drain(channel) }
                }
                if fds[fds.count - 1].revents != 0 { handleSignals() }
            }
            let now = time(nil)
            if now != lastMaintenance {
                lastMaintenance = now
                for channel in channels where !channel.isOpen {
                    if channel.open() == nil { log.notice("reopened \(channel.path)") }
                }
                reloadIfNeeded()
                refreshBridge()
            }
        }
        _ = sd_notify(0, "STOPPING=1")
        (channels + bridgeChannels).forEach { $0.close() }
        log.info("stopped")
    }

    private func handleSignals() {
        var info = signalfd_siginfo()
        while Glibc.read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
            switch Int32(info.ssi_signo) {
            case SIGHUP:
                _ = sd_notify(0, "RELOADING=1")
                reloadIfNeeded(force: true)
                _ = sd_notify(0, "READY=1")
            default:
                stopping = true
            }
        }
    }

    private func drain(_ channel: CacheChannel) {
        while true {
            switch channel.read() {
            case .nothing:
                return
            case .failed(let error):
                log.warning("reading \(channel.path): \(SystemError.describe(error)); reopening")
                channel.close()
                return
            case .request(let line):
                // exportfs renames etab before it flushes the caches, so the
                // upcalls that follow a flush see the new table.
                reloadIfNeeded()
                handle(line, on: channel)
            }
        }
    }

    func handle(_ line: String, on channel: CacheChannel) {
        log.trace("\(channel.cache) request: \(line)")
        let now = Int(time(nil))
        let expiry = now + options.ttl
        let current = snapshot.withLock { $0 }
        do {
            switch channel.cache {
            case "auth.unix.ip":
                let request = try AuthUnixIPRequest.parse(line[...])
                guard request.serviceClass == "nfsd" else { return }
                // Who the address is depends on which nfsd asks: in the
                // bridge's namespace a block address is that guest; at the
                // host's nfsd it is nobody (UpcallView).
                let view = channel.namespace == nil ? hostView : (bridgeView ?? hostView)
                let client: ClientAddress
                switch view.identity(of: request.client) {
                case .client(let address):
                    client = address
                case .nobody(let reason):
                    log.notice("\(reason): no access")
                    send(CacheReply.authUnixIP(request, expiry: expiry, domain: nil), on: channel, about: request.addressText)
                    return
                }
                // A lookup that may block runs on a worker.
                let reply: @Sendable () -> Void = { [self] in
                    answer(request, identity: identity(of: client, in: current), authority: current.authority, expiry: expiry, channel: channel)
                }
                if current.looksUpNames(of: client) { lookups.submit(reply) } else { reply() }
            case "nfsd.export":
                let request = try ExportRequest.parse(line[...])
                let decision = current.authority.export(domain: request.domain, path: request.path, info: filesystems.info)
                let reply: String
                switch decision {
                case .export(let answer):
                    log.info("granted access to \(request.path) for \(request.domain)")
                    reply = CacheReply.export(domain: request.domain, path: request.path, expiry: expiry, export: answer)
                case .pseudo(let answer):
                    log.trace("pseudo-filesystem directory \(request.path) for \(request.domain)")
                    reply = CacheReply.export(domain: request.domain, path: request.path, expiry: expiry, export: answer)
                case .denied:
                    log.info("denied access to \(request.path) for \(request.domain)")
                    reply = CacheReply.exportDenied(domain: request.domain, path: request.path, expiry: expiry)
                }
                send(reply, on: channel, about: request.path)
            case "nfsd.fh":
                let request = try FileHandleRequest.parse(line[...])
                let path = current.authority.path(for: request, info: filesystems.info)
                if path == nil { log.info("no export of \(request.domain) has fsid type \(request.fsidType) \(CacheText.hexWord(request.fsid))") }
                send(CacheReply.fileHandle(request, expiry: path == nil ? expiry : CacheReply.forever, path: path),
                     on: channel, about: path ?? "an unknown filehandle")
            case "auth.unix.gid":
                let request = try GroupsRequest.parse(line[...])
                send(CacheReply.groups(uid: request.uid, expiry: expiry, gids: GroupDatabase.groups(of: request.uid)),
                     on: channel, about: "uid \(request.uid)")
            default:
                break
            }
        } catch {
            // Never crash on what the kernel sends, and never grant: a line
            // we cannot read is logged and left unanswered (the kernel's
            // request times out negative).
            log.warning("\(channel.cache): ignoring malformed request \"\(line)\": \(error)")
        }
    }

    private func answer(_ request: AuthUnixIPRequest, identity: ClientIdentity, authority: ExportAuthority, expiry: Int, channel: CacheChannel) {
        let domain = authority.domain(for: identity, nameService: names)
        log.trace("client \(request.addressText) is \(domain ?? "not a client")")
        send(CacheReply.authUnixIP(request, expiry: expiry, domain: domain), on: channel, about: request.addressText)
    }

    private func send(_ reply: String, on channel: CacheChannel, about subject: String) {
        if let error = channel.reply(reply) {
            if channel.cache == "nfsd.export" && error == EINVAL {
                log.error("the kernel refused the export of \(subject): possibly an unsupported filesystem, or fsid= is required")
            } else {
                log.warning("writing \(channel.cache) answer for \(subject): \(SystemError.describe(error))")
            }
        }
    }
}
