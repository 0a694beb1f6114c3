import ArgumentParser
import NFSAdmin
import NFSDControl

#if canImport(Glibc)
import Glibc
#endif

/// `rpc.nfsd` / `nfsd-control`: configure, start and stop the kernel NFS
/// server.
public struct NfsdControlCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rpc.nfsd",
        abstract: "Configure, start and stop the kernel NFS server (also installed as nfsd-control).",
        discussion: """
            Brings the server up in the order the kernel needs: versions, lease and grace times, listeners, threads. Listeners are sockets opened here and handed to the kernel: TCP (and UDP with -u) for each -H address, and AF_VSOCK for each --vsock port. nthreads 0 stops the server. Settings come from the [nfsd] section of /etc/nfs.conf and /etc/nfs.conf.d/*.conf; the command line wins.

            Mainline kernels have no AF_VSOCK transport in nfsd: --vsock then says so, undoes what this run set up and exits 1.

            "nfsd-control status [--json]" shows the server's state and, when nfs-vsock-bridge runs, what it listens on and its guests (from /run/nfs-vsock-bridge/status).
            """)

    @Option(name: [.customShort("p"), .long], help: "TCP/UDP port to listen on (default 2049).")
    var port: UInt16?

    @Option(name: [.customShort("H"), .long], help: ArgumentHelp("Listen only on this address or host name (repeatable).", valueName: "host"))
    var host: [String] = []

    @Option(name: [.customShort("N"), .customLong("no-nfs-version")], help: ArgumentHelp("Disable an NFS version: 3, 4, 4.0, 4.1, 4.2 (repeatable).", valueName: "vers"))
    var disable: [String] = []

    @Option(name: [.customShort("V"), .customLong("nfs-version")], help: ArgumentHelp("Enable an NFS version: 3, 4, 4.0, 4.1, 4.2 (repeatable).", valueName: "vers"))
    var enable: [String] = []

    @Flag(name: [.customShort("T"), .customLong("no-tcp")], help: "Do not listen on TCP.")
    var noTCP = false

    @Flag(name: [.customShort("t"), .customLong("tcp")], help: "Listen on TCP (the default).")
    var tcp = false

    @Flag(name: [.customShort("U"), .customLong("no-udp")], help: "Do not listen on UDP (the default).")
    var noUDP = false

    @Flag(name: [.customShort("u"), .customLong("udp")], help: "Also listen on UDP (NFSv3 only).")
    var udp = false

    @Option(name: [.customShort("L"), .customLong("lease-time")], help: ArgumentHelp("NFSv4 lease time in seconds (10-3600).", valueName: "seconds"))
    var leaseTime: Int?

    @Option(name: [.customShort("G"), .customLong("grace-time")], help: ArgumentHelp("NFSv4 grace time in seconds (10-3600).", valueName: "seconds"))
    var graceTime: Int?

    @Option(name: .customLong("vsock"), help: ArgumentHelp("Serve NFS on this AF_VSOCK port, any CID (repeatable); 0 alone: stop serving vsock, leave IP service as it is.", valueName: "port"))
    var vsock: [UInt32] = []

    @Flag(name: .customLong("no-vsock-bridge"), help: "Where the kernel has no AF_VSOCK transport, fail instead of serving --vsock through nfs-vsock-bridge.")
    var noVsockBridge = false

    @Flag(name: [.customShort("s"), .long], help: "Log to syslog instead of standard error.")
    var syslog = false

    @Flag(name: [.customShort("d"), .long], help: "Say each step.")
    var debug = false

    @Argument(help: "Number of server threads (default 8; 0 stops the server).")
    var nthreads: Int?

    public init() {}

    /// Dispatches `status` (a word nthreads can never be) to its command;
    /// everything else is the rpc.nfsd command line.
    /// Installed as nfs-vsock-generator (a link), it is systemd's generator.
    public static func entry(_ arguments: [String], invokedAs name: String = "nfsd-control") {
        if name.split(separator: "/").last == "nfs-vsock-generator" {
            Glibc.exit(SystemdGenerator.run(arguments: arguments, paths: SystemPaths.fromEnvironment(ProcessEnvironment.current)))
        }
        if arguments.first == "status" {
            Status.main(Array(arguments.dropFirst()))
        } else if arguments.first == "release-guest" {
            ReleaseGuest.main(Array(arguments.dropFirst()))
        } else {
            main(arguments)
        }
    }

    /// The merged settings: defaults, then nfs.conf, then this command line.
    func settings(conf: NFSConf) throws -> NFSDSettings {
        var settings = NFSDSettings()
        do {
            try settings.apply(conf: conf)
        } catch {
            throw ValidationError(error.message)
        }
        if let nthreads {
            guard (0...8192).contains(nthreads) else { throw ValidationError("nthreads must be from 0 to 8192, got \(nthreads)") }
            settings.threads = nthreads
        }
        if let port {
            guard port > 0 else { throw ValidationError("bad port 0") }
            settings.port = port
        }
        if !host.isEmpty { settings.hosts = host }
        for text in disable {
            guard let version = NFSVersion(argument: text) else {
                throw ValidationError("bad NFS version \"\(text)\" for -N: use 3, 4, 4.0, 4.1 or 4.2")
            }
            settings.versions[version] = false
            if version == .v4 { NFSVersion.minorVersions.forEach { settings.versions[$0] = false } }
        }
        for text in enable {
            guard let version = NFSVersion(argument: text) else {
                throw ValidationError("bad NFS version \"\(text)\" for -V: use 3, 4, 4.0, 4.1 or 4.2")
            }
            settings.versions[version] = true
        }
        if tcp { settings.tcp = true }
        if noTCP { settings.tcp = false }
        if udp { settings.udp = true }
        if noUDP { settings.udp = false }
        for (name, value) in [("lease-time", leaseTime), ("grace-time", graceTime)] {
            if let value, !(10...3600).contains(value) {
                throw ValidationError("--\(name) must be from 10 to 3600 seconds, got \(value)")
            }
        }
        if let leaseTime { settings.leaseTime = leaseTime }
        if let graceTime { settings.graceTime = graceTime }
        if vsock.contains(0) && vsock != [0] {
            throw ValidationError("--vsock 0 stops vsock service and takes no other --vsock port")
        }
        for port in vsock where port == UInt32.max {
            throw ValidationError("bad vsock port \(port)")
        }
        // --vsock 0 is not a port: run() stops vsock service for it.
        if !vsock.isEmpty && vsock != [0] { settings.vsockPorts = vsock }
        if noVsockBridge { settings.vsockBridge = false }
        settings.syslog = settings.syslog || syslog
        settings.debug = settings.debug || debug
        return settings
    }

    public func run() throws {
        let paths = SystemPaths.fromEnvironment(ProcessEnvironment.current)
        let settings = try settings(conf: NFSConf.load(paths: paths))
        let logger = Logger(syslog: settings.syslog, verbose: settings.debug)
        let controller = NFSDController(kernel: NFSDKernel(paths: paths), log: { logger.info($0) })
        let bridge = BridgeProcess(paths: paths)
        do {
            if vsock == [0] {
                try stopVsock(controller: controller, bridge: bridge, logger: logger)
                return
            }
            if settings.threads == 0 {
                bridge.clearWanted()
                if let unverified = bridge.unverified { logger.always("rpc.nfsd: " + unverified.notice) }
                if bridge.stop() { logger.info("stopped nfs-vsock-bridge") }
            }
            let report = try controller.start(settings)
            if report.vsockForBridge.isEmpty && !report.alreadyRunning { bridge.clearWanted() }
            if settings.threads > 0 && !report.alreadyRunning {
                logger.notice("nfsd: \(report.threads) threads; listening on \(report.listeners.joined(separator: ", "))")
                // Where the server can be reached, whether or not -d is given.
                for listener in report.listeners { logger.always("rpc.nfsd: listening on \(listener)") }
                if report.listeners.isEmpty { logger.always("rpc.nfsd: no IP listener: IP clients are not served") }
            }
            if report.alreadyRunning {
                logger.always("rpc.nfsd: the server is running; " + (report.changed.isEmpty ? "nothing changed" : "changed: " + report.changed.joined(separator: "; ")))
                if !report.left.isEmpty { logger.always("rpc.nfsd: left as it was: " + report.left.joined(separator: "; ")) }
            }
            for port in report.vsockServedByKernel {
                logger.always("rpc.nfsd: vsock port \(port): served by the kernel")
            }
            if !report.vsockForBridge.isEmpty, let instance = report.bridgeInstance {
                let ports = report.vsockForBridge.map(String.init).joined(separator: ", ")
                let target = instance.listener
                let versions = instance.versions.map(\.rawValue).joined(separator: " and ")
                let through = "through its own nfsd (tcp \(target) in network namespace \(BridgeNamespace.name), NFSv\(versions); NFSv4.0 is off for guests: its callbacks would have nfsd connect out from this host; \(instance.connectionLimit))"
                do {
                    try bridge.markWanted(ports: report.vsockForBridge, target: target)
                } catch {
                    logger.error("rpc.nfsd: \(error)")
                }
                if BridgeProcess.underSystemd(ProcessEnvironment.current) {
                    logger.always("rpc.nfsd: vsock port \(ports): the kernel has no AF_VSOCK transport; served by nfs-vsock-bridge.socket (systemd) \(through)")
                } else if report.bridgeInstanceKept, let pid = bridge.serves(report.vsockForBridge) {
                    logger.always("rpc.nfsd: vsock port \(ports): served by nfs-vsock-bridge (pid \(pid)) \(through); left running, its guests keep their connections")
                } else {
                    // A bridge serving other ports gives them up first.
                    if report.alreadyRunning, let old = bridge.wantedPorts, bridge.stop() {
                        logger.always("rpc.nfsd: stopped nfs-vsock-bridge, which served vsock port \(old.map(String.init).joined(separator: ", ")) (its guests reconnect)")
                        try? bridge.markWanted(ports: report.vsockForBridge, target: target)
                    }
                    if let unverified = bridge.unverified { logger.always("rpc.nfsd: " + unverified.notice) }
                    do {
                        let user = NFSConf.load(paths: paths).value("vsock", "user")?.text ?? "nfs-vsock-bridge"
                        guard Privileges.account(user) != nil else {
                            throw SystemError("getpwnam", "\(user), the user nfs-vsock-bridge runs as (create it: useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \(user); or set [vsock] user)", errno: ENOENT)
                        }
                        let started = try bridge.start(ports: report.vsockForBridge, target: target)
                        logger.always("rpc.nfsd: vsock port \(ports): the kernel has no AF_VSOCK transport; served by nfs-vsock-bridge (pid \(started.pid), user \(user)) \(through); its log: \(started.log)")
                    } catch {
                        bridge.clearWanted()
                        if report.alreadyRunning {
                            // IP clients keep their server.
                            if !report.bridgeInstanceKept { controller.stopBridgeInstance() }
                            logger.error("rpc.nfsd: cannot start nfs-vsock-bridge for vsock port \(ports): \(error); vsock is not served, IP service is left as it was")
                        } else {
                            try? controller.stop()
                            logger.error("rpc.nfsd: cannot start nfs-vsock-bridge for vsock port \(ports): \(error); the server was stopped")
                        }
                        throw ExitCode.failure
                    }
                }
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            logger.error("rpc.nfsd: \(error)")
            throw ExitCode.failure
        }
    }

    /// `rpc.nfsd --vsock 0`: the bridge, then the guests' nfsd and its
    /// namespace, go; the host's nfsd and its IP clients stay.
    func stopVsock(controller: NFSDController, bridge: BridgeProcess, logger: Logger) throws {
        bridge.clearWanted()
        if let unverified = bridge.unverified { logger.always("rpc.nfsd: " + unverified.notice) }
        let pid = bridge.runningPID
        let stoppedBridge = bridge.stop()
        let stoppedInstance = try controller.stopVsock()
        var stopped: [String] = []
        if stoppedBridge, let pid { stopped.append("nfs-vsock-bridge (pid \(pid))") }
        if stoppedInstance { stopped.append("the nfsd for vsock guests and network namespace \(BridgeNamespace.name)") }
        let kernel = controller.kernel
        let remaining = kernel.threads > 0
            ? "IP service is left as it was (\(kernel.threads) threads; \(kernel.portlist.joined(separator: ", ")))"
            : "no IP service was running"
        logger.always("rpc.nfsd: " + (stopped.isEmpty ? "vsock was not served; nothing changed; " : "vsock is no longer served: stopped \(stopped.joined(separator: " and ")); ") + remaining)
        if BridgeProcess.underSystemd(ProcessEnvironment.current) {
            logger.always("rpc.nfsd: nfs-vsock-bridge.socket still holds its vsock ports: systemctl stop nfs-vsock-bridge.socket")
        }
    }

    /// `nfsd-control release-guest CID [--json]`: the management layer's
    /// call when a VM goes away (see GuestRelease).
    public struct ReleaseGuest: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "nfsd-control release-guest",
            abstract: "Release what a departed guest left on the bridge path: its bridge connections, its NFSv4 state (opens, locks, delegations) and NLM locks.",
            discussion: """
                Run it when a VM is destroyed or migrated away, before its CID is given to another VM (libvirt's qemu hook: see nfsd-control(8) and /usr/share/doc/nfs-vsock/examples/qemu-hook). Another client can then take the guest's locks at once, the exported filesystems hold nothing of it, and a new VM with the same CID starts clean. Exit status 1 if a step failed.
                """)

        @Argument(help: "The guest's CID (3 and up; 1, the local loopback transport, for tests).")
        var cid: UInt32

        @Flag(help: "Print JSON for management tools.")
        var json = false

        public init() {}

        public func validate() throws {
            // CID 1 (the local loopback transport) is allowed: exports may
            // name it for tests on the host itself.
            guard cid != 0, cid != 2, cid < UInt32.max else {
                throw ValidationError("CID \(cid) is not a guest's (guests have CIDs 3 and up; 0 is the hypervisor, 2 the host)")
            }
        }

        public func run() throws {
            guard geteuid() == 0 else {
                Console.err("nfsd-control release-guest: must be run as root (it signals the bridge and writes the guests' nfsd's files)\n")
                throw ExitCode.failure
            }
            let paths = SystemPaths.fromEnvironment(ProcessEnvironment.current)
            let report: GuestRelease.Report
            do {
                report = try GuestRelease(paths: paths).release(cid: cid)
            } catch {
                if json {
                    Console.out("{\"cid\": \(cid), \"released\": false, \"reason\": \(JSONText.quote(error.description))}\n")
                } else {
                    Console.err("nfsd-control release-guest: \(error)\n")
                }
                // Nothing of the guest can be here: not a failure.
                return
            }
            Console.out(json ? report.json : "nfsd-control: released \(report.text)\n")
            if !report.problems.isEmpty { throw ExitCode.failure }
        }
    }

    /// `nfsd-control status [--json]`.
    public struct Status: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "nfsd-control status",
            abstract: "Show the server's state: threads, versions, listeners, lease and grace times, how vsock is served, the bridge and its guests.")

        @Flag(help: "Print JSON for management tools.")
        var json = false

        @Flag(help: "Print Prometheus metrics (text format; per guest: connections, accepted, refused, bytes, last activity).")
        var prometheus = false

        public init() {}

        public func validate() throws {
            if json && prometheus { throw ValidationError("--json and --prometheus are two formats: choose one") }
        }

        public func run() throws {
            let paths = SystemPaths.fromEnvironment(ProcessEnvironment.current)
            var status = NFSDStatus(kernel: NFSDKernel(paths: paths))
            let process = BridgeProcess(paths: paths)
            let recorded = process.recorded
            status.bridgePID = recorded.runningPID
            status.bridge = BridgeStatusReport(reading: BridgeStatusFile(paths: paths).read(), statusPath: paths.bridgeStatus,
                                               pidFilePID: recorded.runningPID, unverifiedPIDFile: process.unverified(in: recorded),
                                               now: time(nil))
            Console.out(prometheus ? status.prometheus : json ? status.json : status.text)
        }
    }
}


/// Messages to standard error, or to syslog with -s.
struct Logger {
    var syslog: Bool
    var verbose: Bool

    init(syslog: Bool, verbose: Bool) {
        self.syslog = syslog
        self.verbose = verbose
        if syslog { openlog("rpc.nfsd", LOG_PID, LOG_DAEMON) }
    }

    func info(_ message: String) {
        guard verbose else { return }
        emit(LOG_INFO, "rpc.nfsd: " + message)
    }

    func notice(_ message: String) { if verbose { emit(LOG_NOTICE, message) } }

    /// Said whether or not -d is given: what serves vsock.
    func always(_ message: String) { emit(LOG_NOTICE, message) }

    func error(_ message: String) { emit(LOG_ERR, message) }

    private func emit(_ priority: Int32, _ message: String) {
        if syslog {
            message.withCString { text in
                withVaList([text]) { vsyslog(priority, "%s", $0) }
            }
        } else {
            Console.err(message + "\n")
        }
    }
}
