import ArgumentParser
import MountProtocol
import Mountd
import NFSAdmin
import NFSExports

#if canImport(Glibc)
import Glibc
#endif

/// `rpc.mountd` / `mountd`: the kernel's export upcall daemon and the MOUNT
/// service.
public struct MountdCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rpc.mountd",
        abstract: "Answer the kernel NFS server's export upcalls and serve the MOUNT protocol (also installed as mountd).",
        discussion: """
            Answers /proc/net/rpc/{auth.unix.ip,nfsd.export,nfsd.fh} (and auth.unix.gid with -g) from /var/lib/nfs/etab, which exportfs writes; reloads when etab changes or on SIGHUP; stops on SIGTERM. IP clients, and vsock guests (vsock:N), are matched as exports(5) says: a lone * never matches a guest. Settings come from the [mountd] section of /etc/nfs.conf (and nfs.conf.d); the command line wins.
            """)

    @Flag(name: [.customShort("F"), .long], help: "Stay in the foreground (systemd runs it this way).")
    var foreground = false

    @Option(name: [.customShort("p"), .long], help: "Port for the MOUNT service (default: any).")
    var port: UInt16?

    @Option(name: [.customShort("N"), .customLong("no-nfs-version")], help: ArgumentHelp("Do not offer MOUNT for this NFS version (2, 3; 4 has no MOUNT).", valueName: "vers"))
    var disable: [String] = []

    @Option(name: [.customShort("V"), .customLong("nfs-version")], help: ArgumentHelp("Offer MOUNT for this NFS version.", valueName: "vers"))
    var enable: [String] = []

    @Option(name: [.customShort("t"), .customLong("num-threads")], help: "Worker threads for name lookups (default 1, accepted for compatibility).")
    var threads: Int?

    @Flag(name: [.customShort("g"), .customLong("manage-gids")], help: "Answer auth.unix.gid: take users' groups from this server's group database.")
    var manageGids = false

    @Option(name: [.customShort("d"), .long], help: ArgumentHelp("Debug output (all, auth, call, general, parse).", valueName: "kind"))
    var debug: String?

    @Flag(name: [.customShort("r"), .customLong("reverse-lookup")], help: "Name clients by their reverse DNS name in the mount list.")
    var reverseLookup = false

    @Flag(name: [.customShort("u"), .customLong("no-udp")], help: "Do not offer MOUNT over UDP.")
    var noUDP = false

    @Option(name: [.customShort("s"), .customLong("state-directory-path")], help: ArgumentHelp("Directory of etab and rmtab (default /var/lib/nfs).", valueName: "dir"))
    var stateDirectory: String?

    public init() {}

    public func run() throws {
        let environment = ProcessEnvironment.current
        let base = SystemPaths.fromEnvironment(environment)
        let conf = NFSConf.load(paths: base)
        let state = stateDirectory ?? conf.string("mountd", "state-directory-path")
        let paths = SystemPaths(root: base.root.isEmpty ? "/" : base.root, stateDirectory: state)
        var options = MountdDaemon.Options()
        options.manageGids = manageGids || conf.bool("mountd", "manage-gids") == true
        if let ttl = conf.int("mountd", "ttl"), ttl > 0 { options.ttl = ttl }
        if let block = conf.value("vsock", "loopback-block") {
            switch VsockLoopbackMapping.parse(block.text) {
            case .success(let mapping): options.vsockMapping = mapping
            case .failure(let problem): throw ValidationError("\(block.file):\(block.line): [vsock] loopback-block: \(problem)")
            }
        }
        let debugging = debug != nil || conf.string("mountd", "debug") != nil
        let log = DaemonLog(name: "mountd", environment: environment, debug: debugging)

        if !foreground { try Self.daemonize() }

        let daemon = MountdDaemon(paths: paths, options: options, log: log)
        do {
            try daemon.prepare()
        } catch {
            log.error("cannot open the kernel's cache channels: \(error) (is the nfsd module loaded and /proc/fs/nfsd mounted? rpc.nfsd does both)")
            throw ExitCode.failure
        }
        // MOUNT serves NFSv3 (v3) and NFSv2 (v1) clients; an NFSv4-only
        // server registers nothing and needs no rpcbind.
        var mountVersions: [UInt32] = []
        if offers("3", conf: conf) { mountVersions.append(3) }
        if offers("2", conf: conf) { mountVersions.append(1) }
        var server: MountRPCServer? = nil
        if !mountVersions.isEmpty {
            server = MountRPCServer(
                service: MountdMountService(daemon: daemon, reverseLookup: reverseLookup || conf.bool("mountd", "reverse-lookup") == true),
                versions: mountVersions, port: port ?? conf.int("mountd", "port").map { UInt16(clamping: $0) } ?? 0,
                tcp: true, udp: !noUDP && conf.bool("mountd", "udp") != false, registerWithRpcbind: true,
                log: { log.notice($0) })
        }
        guard daemon.serve(mount: server) else { throw ExitCode.failure }
    }

    /// Whether MOUNT for NFS version `version` ("2" or "3") is offered:
    /// the command line, then [nfsd] vers2/vers3 in nfs.conf; v3 by default.
    func offers(_ version: String, conf: NFSConf) -> Bool {
        if disable.contains(version) { return false }
        if enable.contains(version) { return true }
        if let configured = conf.bool("nfsd", "vers" + version) { return configured }
        return version == "3"
    }

    /// Classic detach: fork (the parent exits), new session, / as cwd,
    /// standard streams on /dev/null. Done before any thread starts.
    static func daemonize() throws {
        let pid = fork()
        if pid < 0 { throw ExitCode.failure }
        if pid > 0 { Glibc.exit(0) }
        setsid()
        _ = chdir("/")
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            dup2(null, 0)
            dup2(null, 1)
            dup2(null, 2)
            if null > 2 { close(null) }
        }
    }
}

