import ArgumentParser
import CLinux
import CSystemd
import NFSAdmin
import NFSExports
import VsockBridge

#if canImport(Glibc)
import Glibc
#endif

/// `nfs-vsock-bridge`: serve NFS to vsock guests through the kernel NFS
/// server's loopback TCP listener, keeping each guest's CID as its identity.
public struct BridgeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "nfs-vsock-bridge",
        abstract: "Carry NFS from vsock guests to the kernel NFS server's loopback listener, keeping each guest's CID as its identity.",
        discussion: """
            Each guest connection is forwarded from the guest's own loopback address (CID c -> 127.128.0.0 + c by default), so rpc.mountd sees vsock:c and applies only vsock rules; a guest source port below 1024 becomes a privileged source port, so `secure` means the same as for TCP. A connection from CID 0 (the hypervisor), VMADDR_CID_ANY or a CID without an address in the block is refused at once; CIDs 1 (vsock loopback) and 2 (the host) are forwarded, and only an explicit vsock:1 or vsock:2 export rule lets them in. Listens on AF_VSOCK ports (--vsock), on hybrid-vsock Unix sockets of Firecracker or Cloud Hypervisor (--unix PATH=CID[:USER]), or on sockets from systemd socket activation. Settings also come from the [vsock] section of /etc/nfs.conf; the command line wins. Its listeners and guests (connections, bytes, refusals) are published in /run/nfs-vsock-bridge/status for nfsd-control status; SIGTERM removes that file. SIGHUP (systemctl reload) reads nfs.conf and the command line again: new limits, and vsock ports it opened itself, without dropping a connection. SIGRTMIN+1 queued with a CID by root (nfsd-control release-guest) closes that guest's connections.
            """)

    @Option(name: .customLong("vsock"), help: ArgumentHelp("Listen on this AF_VSOCK port for every guest (repeatable; default 2049 unless --unix or systemd sockets are given).", valueName: "port"))
    var vsockPorts: [UInt32] = []

    @Option(name: .customLong("unix"), help: ArgumentHelp("Listen on a hybrid-vsock Unix socket whose connections all come from one VM, with this CID (3 or more, one per VM), through its VMM running as user (a name or uid; root if left out): the socket is created mode 0600 and owned by user, and a connection from any other uid, root's included, is refused (repeatable), e.g. /run/vm7.vsock_2049=7:firecracker.", valueName: "path=cid[:user]"))
    var unix: [String] = []

    @Option(help: ArgumentHelp("The NFS server's loopback listener.", valueName: "host:port"))
    var target: String?

    // Gone: the block comes from the bridge's namespace, where rpc.nfsd
    // recorded it, so that the bridge and mountd cannot disagree.
    @Option(name: .customLong("loopback-block"), help: .hidden)
    var loopbackBlock: String?

    @Option(help: ArgumentHelp("Run as this user once the listeners are open, when started as root (default nfs-vsock-bridge; [vsock] user in nfs.conf).", valueName: "user"))
    var user: String?

    @Option(name: .customLong("max-per-guest"), help: "Connections allowed per guest from privileged ports, the guest kernel's (default 16; a hybrid-vsock VM's connections all count here).")
    var maxPerGuest: Int?

    @Option(name: .customLong("max-unprivileged-per-guest"), help: "Connections allowed per guest from unprivileged vsock ports, any guest process's (default 4); they never take the privileged ones' slots.")
    var maxUnprivilegedPerGuest: Int?

    @Option(name: .customLong("max-connections"), help: "Connections allowed in total (default 1024); the last sixteenth only for guests that have none. rpc.nfsd sizes the guests' nfsd from [vsock] max-connections, so set it there.")
    var maxConnections: Int?

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("Close connections idle this long, in seconds; 0 never (default 900).", valueName: "seconds"))
    var idleTimeout: Int?

    @Option(name: .customLong("status-file"), help: ArgumentHelp("Where to publish the status that nfsd-control status shows (default /run/nfs-vsock-bridge/status; \"none\": nowhere).", valueName: "path"))
    var statusFile: String?

    @Flag(name: [.customShort("d"), .long], help: "Log every connection.")
    var debug = false

    public init() {}

    /// The command line merged with [vsock] of nfs.conf (the command line
    /// wins); a bad value names the option or the nfs.conf line.
    func configuration(conf: NFSConf) throws -> BridgeConfiguration {
        var configuration = BridgeConfiguration()
        do {
            for port in vsockPorts where port == 0 || port == UInt32.max {
                throw ValidationError("--vsock: bad vsock port \"\(port)\"")
            }
            configuration.vsockPorts = try conf.resolve("vsock", "ports", as: .vsockPorts, commandLine: vsockPorts.isEmpty ? nil : vsockPorts)
                ?? conf.resolve("vsock", "port", as: .vsockPorts, default: [])
            let unixTexts = try conf.resolve("vsock", "unix", as: .words, commandLine: unix.isEmpty ? nil : unix, default: [])
            let unixOrigin = unix.isEmpty ? conf.value("vsock", "unix").map { "\($0.file):\($0.line): [vsock] unix" } ?? "--unix" : "--unix"
            configuration.unixListeners = try unixTexts.map { text in
                do {
                    return try BridgeConfiguration.unixListener(text, origin: unixOrigin) { Privileges.account($0)?.uid }
                } catch {
                    throw ValidationError("\(error)")
                }
            }
            let targetOption = try target.map { text in
                do throws(NFSConf.Mismatch) {
                    return try Self.endpoint.read(text)
                } catch {
                    throw ValidationError("--target: \(error.message)")
                }
            }
            if let (host, port) = try conf.resolve("vsock", "target", as: Self.endpoint, commandLine: targetOption) {
                configuration.targetHost = host
                configuration.targetPort = port
            }
            if loopbackBlock != nil {
                throw ValidationError("--loopback-block is gone: set loopback-block in [vsock] of /etc/nfs.conf; rpc.nfsd records it in the bridge's namespace (\(BridgeNamespace(paths: .init()).paths.bridgeGuestBlock)), where the bridge and mountd both read it")
            }
            func count(_ option: Int?, _ key: String, atLeast minimum: Int) throws -> Int? {
                if let option, option < minimum { throw ValidationError("--\(key) must be \(minimum) or more, got \(option)") }
                return try conf.resolve("vsock", key, as: .integer(atLeast: minimum), commandLine: option)
            }
            if let number = try count(maxPerGuest, "max-per-guest", atLeast: 1) { configuration.maxConnectionsPerGuest = number }
            if let number = try count(maxUnprivilegedPerGuest, "max-unprivileged-per-guest", atLeast: 0) { configuration.maxUnprivilegedPerGuest = number }
            if let number = try count(maxConnections, "max-connections", atLeast: 1) { configuration.maxConnections = number }
            if let number = try count(idleTimeout, "idle-timeout", atLeast: 0) { configuration.idleTimeout = number }
            // With the default block, the largest there is; run() checks again
            // once the namespace's block is known.
            do {
                try configuration.checkUnixListeners()
            } catch {
                throw ValidationError("\(unixOrigin): \(error.message)")
            }
        } catch let problem as NFSConf.Problem {
            throw ValidationError(problem.description)
        }
        return configuration
    }

    /// --target and [vsock] target: IPv4-address:port.
    static let endpoint = NFSConfType<(host: String, port: UInt16)> { (text: String) throws(NFSConf.Mismatch) in
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0,
              case .v4? = IPAddress(text[..<colon])
        else { throw .init("want IPv4-address:port, got \"\(text)\"") }
        return (host: String(text[..<colon]), port: port)
    }

    public func run() throws {
        let environment = ProcessEnvironment.current
        let paths = SystemPaths.fromEnvironment(environment)
        var configuration = try configuration(conf: NFSConf.load(paths: paths))
        let log = DaemonLog(name: "nfs-vsock-bridge", environment: environment, debug: debug)
        signal(SIGPIPE, SIG_IGN)
        // TERM and INT (stop), HUP (reload) and the release signal are
        // taken by sigwaitinfo below (every thread inherits the mask), so
        // the status file can be removed on the way out.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        for number in [SIGTERM, SIGINT, SIGHUP, GuestRelease.signal] { sigaddset(&stopSignals, number) }
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)
        let systemdCount = sd_listen_fds(1)
        if systemdCount <= 0 && configuration.vsockPorts.isEmpty && configuration.unixListeners.isEmpty { configuration.vsockPorts = [2049] }
        // Before any listener opens (a host with a hybrid-vsock socket per
        // VM has more of them than the default limit of 1024 descriptors),
        // and while still root (rpc.nfsd's start), so the hard limit may
        // rise too.
        let listenerCount = systemdCount > 0 ? Int(systemdCount) : configuration.vsockPorts.count + configuration.unixListeners.count
        do {
            if let raised = try DescriptorBudget(maxConnections: configuration.maxConnections, listeners: listenerCount).apply() {
                log.info(raised)
            }
        } catch {
            log.error("\(error); not serving vsock")
            throw ExitCode.failure
        }
        var listeners: [Bridge.Listener]
        var listenersFromSystemd = false
        do {
            listeners = try BridgeListeners.fromSystemd(configuration, count: systemdCount)
            listenersFromSystemd = !listeners.isEmpty
            if listeners.isEmpty { listeners = try BridgeListeners.open(configuration) }
        } catch {
            log.error("cannot listen: \(error)")
            throw ExitCode.failure
        }
        do {
            configuration.mapping = try enterNamespace(paths: paths)
            // Hybrid CIDs against the block actually in force.
            try configuration.checkUnixListeners()
        } catch {
            log.error("\(error); not serving vsock")
            throw ExitCode.failure
        }
        if geteuid() == 0 {
            do {
                try dropRoot(conf: NFSConf.load(paths: paths), statusFile: statusFile == "none" ? nil : statusFile ?? paths.bridgeStatus,
                             defaultStatusFile: paths.bridgeStatus)
            } catch {
                log.error("\(error); not serving vsock")
                throw ExitCode.failure
            }
        }
        let bridge = Bridge(configuration: configuration, log: log)
        bridge.start(listeners)
        let names = listeners.map { listener -> String in
            switch listener {
            case .vsock(_, let port): "vsock:*:\(port)"
            case .unix(_, let path, let cid): "\(path) (CID \(cid))"
            }
        }
        var publisher: BridgeStatusPublisher? = nil
        if statusFile != "none" {
            let file = BridgeStatusFile(path: statusFile ?? paths.bridgeStatus)
            publisher = BridgeStatusPublisher(bridge: bridge, file: file, log: log)
            publisher?.start()
        }
        log.notice("forwarding \(names.joined(separator: ", ")) to \(configuration.targetHost):\(configuration.targetPort) in network namespace \(BridgeNamespace.name), from \(configuration.mapping), as \(Privileges.account(String(getuid()))?.name ?? String(getuid()))")
        _ = sd_notify(0, "READY=1\nSTATUS=forwarding \(names.joined(separator: ", "))")
        // The accept loops, forwarders and the status publisher run on
        // their own threads; this one waits for a signal to stop.
        // A release (nfsd-control release-guest) carries a guest's CID.
        var received: Int32 = 0
        while true {
            var info = siginfo_t()
            received = sigwaitinfo(&stopSignals, &info)
            if received < 0 { continue }
            if received == SIGHUP {
                _ = sd_notify(0, "RELOADING=1")
                reload(bridge, paths: paths, listenersFromSystemd: listenersFromSystemd, log: log)
                _ = sd_notify(0, "READY=1")
                continue
            }
            guard received == GuestRelease.signal else { break }
            guard nfsvsock_siginfo_queued(&info) != 0, nfsvsock_siginfo_uid(&info) == 0 else {
                log.warning("ignored a release request from uid \(nfsvsock_siginfo_uid(&info)): only root may release a guest")
                continue
            }
            let cid = VsockCID(UInt32(bitPattern: nfsvsock_siginfo_int(&info)))
            log.notice("guest \(cid) released: closing its \(bridge.closeConnections(of: cid)) connection(s)")
        }
        publisher?.stop()
        log.notice("stopping on signal \(received)")
        Glibc.exit(0)
    }

    /// SIGHUP (systemctl reload): nfs.conf and this command line read
    /// again, and BridgeReload decides what changes.
    func reload(_ bridge: Bridge, paths: SystemPaths, listenersFromSystemd: Bool, log: DaemonLog) {
        let read: BridgeConfiguration
        do {
            read = try configuration(conf: NFSConf.load(paths: paths))
        } catch {
            log.error("reload: \(error); the running configuration stays")
            return
        }
        // The guests' nfsd closes connections past its max_connections
        // (Linux 6.1): rpc.nfsd sets it, the bridge cannot.
        let limitFile = paths.bridgeNFSD + "/max_connections"
        let guestsMaxConnections = (try? FileSystem.readIfExists(limitFile))
            .flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: " \n")) }
        let outcome = BridgeReload.run(current: bridge.configuration, read: read, listenersFromSystemd: listenersFromSystemd,
                                       guestsMaxConnections: guestsMaxConnections, effects: LiveBridgeReload(bridge: bridge))
        for line in outcome.errors { log.error(line) }
        log.notice(outcome.notice)
        for line in outcome.warnings { log.warning(line) }
    }

    typealias StartProblem = NFSExports.Problem

    /// Puts the whole process (before any thread starts) into the bridge's
    /// network namespace, unless systemd already did
    /// (NetworkNamespacePath=), and returns the guest block rpc.nfsd
    /// recorded there. Outside that namespace guests' addresses mean
    /// nothing to mountd, so the bridge refuses to run anywhere else.
    func enterNamespace(paths: SystemPaths) throws(StartProblem) -> VsockLoopbackMapping {
        let namespace = BridgeNamespace(paths: paths)
        if !namespace.isCurrent {
            guard namespace.exists else {
                throw StartProblem("the bridge's network namespace \(namespace.pin) does not exist: rpc.nfsd --vsock PORT creates it (with the nfsd instance that serves guests) when the kernel has no AF_VSOCK transport")
            }
            guard geteuid() == 0 else {
                throw StartProblem("not in the bridge's network namespace \(namespace.pin) and not root to enter it: start the bridge through rpc.nfsd or nfs-vsock-bridge.service (NetworkNamespacePath=\(namespace.pin))")
            }
            do {
                try NetworkNamespace.join(namespace.pin)
            } catch {
                throw StartProblem("cannot enter the bridge's network namespace: \(error)")
            }
        }
        do {
            return try namespace.guestBlock()
        } catch {
            throw StartProblem("no guest block: \(error)")
        }
    }

    /// Gives up root once every listener is open: becomes the [vsock]
    /// user (default nfs-vsock-bridge) with no capability left. Nothing
    /// after this needs root: the namespace lets anyone in it bind the
    /// privileged source ports it gives privileged guests. The status
    /// file's directory is handed to that user first.
    func dropRoot(conf: NFSConf, statusFile: String?, defaultStatusFile: String) throws(StartProblem) {
        let configured: String?
        do {
            configured = try conf.resolve("vsock", "user", as: .text, commandLine: user)
        } catch {
            throw StartProblem("\(error)")
        }
        let account = try BridgeUser.choose(configured: configured, lookup: Privileges.account)
        let name = configured ?? BridgeUser.defaultName
        // Only the bridge's own /run directory changes hands; a --status-file
        // elsewhere must already be writable by the user.
        let directory = PathName.directory(of: defaultStatusFile)
        if statusFile == defaultStatusFile {
            do {
                try FileSystem.makeDirectories(directory, mode: 0o755)
            } catch {
                throw StartProblem("\(error)")
            }
            if chown(directory, account.uid, account.gid) != 0 {
                throw StartProblem("\(SystemError.current("chown", "\(directory) to \(name)"))")
            }
        }
        do {
            try Privileges.drop(to: account)
        } catch {
            throw StartProblem("cannot drop root: \(error)")
        }
    }
}
