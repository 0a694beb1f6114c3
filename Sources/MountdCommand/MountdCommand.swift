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

    @Option(name: [.customShort("t"), .customLong("num-threads")], help: "Accepted for compatibility and ignored: name lookups run on up to 32 worker threads, made as needed.")
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
        let settings: Settings
        do {
            settings = try Settings(self, conf: conf)
        } catch {
            throw ValidationError(error.description)
        }
        let paths = SystemPaths(root: base.root.isEmpty ? "/" : base.root, stateDirectory: settings.stateDirectory)
        let options = settings.options
        let debugging = settings.debug
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
        if settings.offersV3 { mountVersions.append(3) }
        if settings.offersV2 { mountVersions.append(1) }
        var server: MountRPCServer? = nil
        if !mountVersions.isEmpty {
            server = MountRPCServer(
                service: MountdMountService(daemon: daemon, reverseLookup: settings.reverseLookup),
                versions: mountVersions, port: settings.port,
                tcp: true, udp: settings.udp, registerWithRpcbind: true,
                log: { log.notice($0) })
        }
        guard daemon.serve(mount: server) else { throw ExitCode.failure }
    }

    /// The command line merged with nfs.conf's [mountd] (and [nfsd]
    /// vers2/vers3, [vsock] loopback-block): the command line wins.
    struct Settings {
        var stateDirectory: String?
        var options = MountdDaemon.Options()
        var debug: Bool
        var reverseLookup: Bool
        var port: UInt16
        var udp: Bool
        var offersV3: Bool
        var offersV2: Bool

        init(_ command: MountdCommand, conf: NFSConf) throws(NFSConf.Problem) {
            stateDirectory = try conf.resolve("mountd", "state-directory-path", as: .text, commandLine: command.stateDirectory)
            options.manageGids = try conf.resolve("mountd", "manage-gids", as: .boolean, commandLine: command.manageGids ? true : nil, default: false)
            options.ttl = try conf.resolve("mountd", "ttl", as: .integer(atLeast: 1), default: options.ttl)
            options.vsockMapping = try conf.resolve("vsock", "loopback-block", as: .loopbackBlock, default: options.vsockMapping)
            // Any debug kind, as nfs-utils takes a list of them.
            debug = try conf.resolve("mountd", "debug", as: .text, commandLine: command.debug) != nil
            reverseLookup = try conf.resolve("mountd", "reverse-lookup", as: .boolean, commandLine: command.reverseLookup ? true : nil, default: false)
            port = try conf.resolve("mountd", "port", as: NFSConfType.integer(0...65535).map { UInt16($0) }, commandLine: command.port, default: 0)
            udp = try conf.resolve("mountd", "udp", as: .boolean, commandLine: command.noUDP ? false : nil, default: true)
            // MOUNT for NFS version 3 (v3) and 2 (v1): -N/-V, then [nfsd]
            // vers3/vers2; v3 by default.
            func offers(_ version: String) throws(NFSConf.Problem) -> Bool {
                let named: Bool? = command.disable.contains(version) ? false : command.enable.contains(version) ? true : nil
                return try conf.resolve("nfsd", "vers" + version, as: .boolean, commandLine: named, default: version == "3")
            }
            offersV3 = try offers("3")
            offersV2 = try offers("2")
        }
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

