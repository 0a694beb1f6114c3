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

    /// This command line, checked; nil for what it does not name.
    func commandLine() throws -> NFSDSettings.CommandLine {
        var line = NFSDSettings.CommandLine()
        if let nthreads {
            guard (0...8192).contains(nthreads) else { throw ValidationError("nthreads must be from 0 to 8192, got \(nthreads)") }
            line.threads = nthreads
        }
        if let port {
            guard port > 0 else { throw ValidationError("bad port 0") }
            line.port = port
        }
        if !host.isEmpty { line.hosts = host }
        let off = try disable.map { text in
            guard let version = NFSVersion(argument: text) else {
                throw ValidationError("bad NFS version \"\(text)\" for -N: use 3, 4, 4.0, 4.1 or 4.2")
            }
            return version
        }
        let on = try enable.map { text in
            guard let version = NFSVersion(argument: text) else {
                throw ValidationError("bad NFS version \"\(text)\" for -V: use 3, 4, 4.0, 4.1 or 4.2")
            }
            return version
        }
        line.switchVersions(off: off, on: on)
        line.tcp = noTCP ? false : tcp ? true : nil
        line.udp = noUDP ? false : udp ? true : nil
        for (name, value) in [("lease-time", leaseTime), ("grace-time", graceTime)] {
            if let value, !(10...3600).contains(value) {
                throw ValidationError("--\(name) must be from 10 to 3600 seconds, got \(value)")
            }
        }
        line.leaseTime = leaseTime
        line.graceTime = graceTime
        if vsock.contains(0) && vsock != [0] {
            throw ValidationError("--vsock 0 stops vsock service and takes no other --vsock port")
        }
        for port in vsock where port == UInt32.max {
            throw ValidationError("bad vsock port \(port)")
        }
        // --vsock 0 is not a port: run() stops vsock service for it.
        if !vsock.isEmpty && vsock != [0] { line.vsockPorts = vsock }
        if noVsockBridge { line.vsockBridge = false }
        if syslog { line.syslog = true }
        if debug { line.debug = true }
        return line
    }

    /// The merged settings: defaults, then nfs.conf, then this command line.
    func settings(conf: NFSConf) throws -> NFSDSettings {
        let line = try commandLine()
        do {
            return try NFSDSettings(commandLine: line, conf: conf)
        } catch {
            throw ValidationError(error.message)
        }
    }

    public func run() throws {
        let paths = SystemPaths.fromEnvironment(ProcessEnvironment.current)
        let conf = NFSConf.load(paths: paths)
        let settings = try settings(conf: conf)
        let logger = Logger(syslog: settings.syslog, verbose: settings.debug)
        let controller = NFSDController(kernel: NFSDKernel(paths: paths), log: { logger.info($0) })
        let bridge = BridgeProcess(paths: paths)
        do {
            if vsock == [0] {
                try stopVsock(controller: controller, bridge: bridge, logger: logger)
                return
            }
            if BridgeServicePolicy.stopsBridgeBeforeStart(settings) {
                bridge.clearWanted()
                if let unverified = bridge.unverified { logger.always("rpc.nfsd: " + unverified.notice) }
                if bridge.stop() { logger.info("stopped nfs-vsock-bridge") }
            }
            // What ran before this run marks anything.
            let running = BridgeServicePolicy.RunningBridge(pid: bridge.runningPID, wantedPorts: bridge.wantedPorts)
            let report = try controller.start(settings)
            if BridgeServicePolicy.clearsWanted(after: report) { bridge.clearWanted() }
            logger.say(BridgeServicePolicy.serverLines(report, threads: settings.threads))
            if let bridged = BridgeServicePolicy.Bridged(report) {
                try serve(bridged, running: running, conf: conf, controller: controller, bridge: bridge, logger: logger)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            logger.error("rpc.nfsd: \(error)")
            throw ExitCode.failure
        }
    }

    /// Serves the ports the kernel left to the bridge, as BridgeServicePolicy decides.
    func serve(_ bridged: BridgeServicePolicy.Bridged, running: BridgeServicePolicy.RunningBridge, conf: NFSConf,
               controller: NFSDController, bridge: BridgeProcess, logger: Logger) throws {
        do {
            try bridge.markWanted(ports: bridged.ports, target: bridged.target)
        } catch {
            logger.error("rpc.nfsd: \(error)")
        }
        switch bridged.decide(underSystemd: BridgeProcess.underSystemd(ProcessEnvironment.current), running: running) {
        case .servedBySystemd:
            logger.say([bridged.servedBySystemdLine])
        case .keep(let pid):
            logger.say([bridged.keptLine(pid: pid)])
        case .start(let stopping):
            // A bridge serving other ports gives them up first.
            if let old = stopping, bridge.stop() {
                logger.say([BridgeServicePolicy.Bridged.stoppedLine(served: old)])
                try? bridge.markWanted(ports: bridged.ports, target: bridged.target)
            }
            if let unverified = bridge.unverified { logger.always("rpc.nfsd: " + unverified.notice) }
            do {
                let user = try conf.resolve("vsock", "user", as: .text, default: BridgeServicePolicy.defaultUser)
                guard Privileges.account(user) != nil else { throw BridgeServicePolicy.Bridged.missingUser(user) }
                let started = try bridge.start(ports: bridged.ports, target: bridged.target)
                logger.say([bridged.startedLine(pid: started.pid, user: user, log: "\(started.log)")])
            } catch {
                bridge.clearWanted()
                let failure = bridged.afterFailedStart("\(error)")
                switch failure.cleanup {
                case .stopBridgeInstance: _ = controller.stopBridgeInstance()
                case .stopServer: try? controller.stop()
                case .none: break
                }
                logger.say([failure.line])
                throw ExitCode.failure
            }
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
        let kernel = controller.kernel
        logger.say(BridgeServicePolicy.stopVsockLines(
            stoppedBridgePID: stoppedBridge ? pid : nil, stoppedInstance: stoppedInstance, threads: kernel.threads,
            portlist: kernel.portlist, underSystemd: BridgeProcess.underSystemd(ProcessEnvironment.current)))
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

    func say(_ lines: [BridgeServicePolicy.Line]) {
        for line in lines {
            switch line {
            case .verbose(let text): notice(text)
            case .always(let text): always(text)
            case .error(let text): error(text)
            }
        }
    }

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
