import NFSAdmin
import NFSExports

/// An NFS protocol version rpc.nfsd can switch: 3, 4 (all of v4), 4.0,
/// 4.1, 4.2. NFSv2 is gone from current kernels and is always switched off.
public enum NFSVersion: String, Sendable, Hashable, CaseIterable, Comparable {
    case v3 = "3"
    case v4 = "4"
    case v4_0 = "4.0"
    case v4_1 = "4.1"
    case v4_2 = "4.2"

    public static func < (a: NFSVersion, b: NFSVersion) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    public static let minorVersions: [NFSVersion] = [.v4_0, .v4_1, .v4_2]

    /// Accepts "3", "4", "4.0", "4.1", "4.2" (and "4.0" spelled "4.0" only).
    public init?(argument: String) {
        self.init(rawValue: argument)
    }
}

/// Everything rpc.nfsd is asked to set up, merged from nfs.conf's [nfsd]
/// section and the command line (the command line wins). Pure.
public struct NFSDSettings: Sendable, Equatable {
    public var threads: Int = 8
    public var port: UInt16 = 2049
    /// Addresses or names to listen on; empty means every address.
    public var hosts: [String] = []
    /// Explicit version switches; versions not mentioned keep the default
    /// (3, 4, 4.0, 4.1, 4.2 on).
    public var versions: [NFSVersion: Bool] = [:]
    public var tcp = true
    public var udp = false
    public var leaseTime: Int? = nil
    public var graceTime: Int? = nil
    public var vsockPorts: [UInt32] = []
    /// Where the kernel has no AF_VSOCK transport, serve --vsock ports
    /// through nfs-vsock-bridge (false: fail as before the bridge existed).
    public var vsockBridge = true
    /// The loopback block bridged guests' addresses come from ([vsock]
    /// loopback-block); recorded in the bridge's namespace for the bridge
    /// and mountd.
    public var guestBlock = VsockLoopbackMapping.default
    /// The bridge's cap on connections in total ([vsock] max-connections,
    /// the bridge's own default when unset): the guests' nfsd must hold
    /// that many without closing any (guestMaxConnections).
    public var bridgeMaxConnections = 1024
    public var syslog = false
    public var debug = false

    public init() {}

    public func isEnabled(_ version: NFSVersion) -> Bool {
        if let explicit = versions[version] { return explicit }
        // A minor version follows "4" unless switched itself.
        if NFSVersion.minorVersions.contains(version), let four = versions[.v4] { return four }
        return true
    }

    public typealias Problem = NFSExports.Problem

    /// What the rpc.nfsd command line asked for: nil (or no entry) for
    /// what it did not name.
    public struct CommandLine: Sendable, Equatable {
        public var threads: Int?
        public var port: UInt16?
        public var hosts: [String]?
        public var versions: [NFSVersion: Bool] = [:]
        public var tcp: Bool?
        public var udp: Bool?
        public var leaseTime: Int?
        public var graceTime: Int?
        public var vsockPorts: [UInt32]?
        public var vsockBridge: Bool?
        public var syslog: Bool?
        public var debug: Bool?

        public init() {}

        /// -N and -V, in that order: -N 4 switches off every NFSv4 minor
        /// version too, and a -V names one back.
        public mutating func switchVersions(off: [NFSVersion], on: [NFSVersion]) {
            for version in off {
                versions[version] = false
                if version == .v4 { NFSVersion.minorVersions.forEach { versions[$0] = false } }
            }
            for version in on { versions[version] = true }
        }
    }

    /// Defaults, then nfs.conf's [nfsd] (and [vsock] loopback-block and
    /// max-connections), then the command line, which wins.
    public init(commandLine: CommandLine = CommandLine(), conf: NFSConf) throws(Problem) {
        self.init()
        do {
            threads = try conf.resolve("nfsd", "threads", as: .integer(0...8192), commandLine: commandLine.threads, default: threads)
            port = try conf.resolve("nfsd", "port", as: NFSConfType.integer(1...65535).map { UInt16($0) }, commandLine: commandLine.port, default: port)
            hosts = try conf.resolve("nfsd", "host", as: .words, commandLine: commandLine.hosts, default: hosts)
            for version in NFSVersion.allCases {
                if let value = try conf.resolve("nfsd", "vers" + version.rawValue, as: .boolean, commandLine: commandLine.versions[version]) {
                    versions[version] = value
                }
            }
            tcp = try conf.resolve("nfsd", "tcp", as: .boolean, commandLine: commandLine.tcp, default: tcp)
            udp = try conf.resolve("nfsd", "udp", as: .boolean, commandLine: commandLine.udp, default: udp)
            leaseTime = try conf.resolve("nfsd", "lease-time", as: .integer(10...3600), commandLine: commandLine.leaseTime)
            graceTime = try conf.resolve("nfsd", "grace-time", as: .integer(10...3600), commandLine: commandLine.graceTime)
            vsockPorts = try conf.resolve("nfsd", "vsock", as: .vsockPorts, commandLine: commandLine.vsockPorts, default: vsockPorts)
            vsockBridge = try conf.resolve("nfsd", "vsock-bridge", as: .boolean, commandLine: commandLine.vsockBridge, default: vsockBridge)
            guestBlock = try conf.resolve("vsock", "loopback-block", as: .loopbackBlock, default: guestBlock)
            bridgeMaxConnections = try conf.resolve("vsock", "max-connections", as: .integer(1...1_000_000), default: bridgeMaxConnections)
            debug = try conf.resolve("nfsd", "debug", as: .boolean, commandLine: commandLine.debug, default: debug)
            syslog = try conf.resolve("nfsd", "syslog", as: .boolean, commandLine: commandLine.syslog, default: syslog)
        } catch {
            throw Problem(message: error.description)
        }
    }

    /// Connections the guests' nfsd closes none below (its
    /// max_connections). Left at 0, Linux 6.1 (and 6.12 before its 2025
    /// stable updates) allows (threads + 3) x 20 and, past that, closes
    /// its oldest connection for each new one: 220 guests' connections
    /// with 8 threads. Later kernels count only connections that have
    /// presented no file handle yet (64 by default), and the newest have
    /// no max_connections at all. The bridge opens one nfsd
    /// connection per guest connection, up to its max-connections; the
    /// margin covers connections the bridge has closed and nfsd has not
    /// yet reaped.
    public var guestMaxConnections: Int { Self.guestMaxConnections(bridge: bridgeMaxConnections) }
    public static func guestMaxConnections(bridge: Int) -> Int { bridge + closingMargin }
    public static let closingMargin = 64

    /// Where the host's nfsd listens: the -H / host= addresses; with none
    /// given, every address, except that a server asked for vsock listens
    /// on 127.0.0.1 only (vsock guests never need the network; -H opens
    /// whatever the administrator names). nil stands for every address.
    public var listenHosts: [String?] {
        if !hosts.isEmpty { return hosts }
        return vsockPorts.isEmpty ? [nil] : ["127.0.0.1"]
    }

    /// The versions of the nfsd instance that serves bridged guests: the
    /// NFSv4 minor versions 1 and 2 that are on, never NFSv3 (the bridge
    /// carries no MOUNT or NLM) and never NFSv4.0, whose callbacks have the
    /// server connect out to an address the client names. Nil when neither
    /// 4.1 nor 4.2 is on.
    public var bridgeVersions: [NFSVersion]? {
        let versions = [NFSVersion.v4_1, .v4_2].filter(isEnabled)
        return versions.isEmpty ? nil : versions
    }

    /// Checks that the settings describe a server that can exist.
    public func validate() throws(Problem) {
        if threads > 0 {
            if !NFSVersion.allCases.contains(where: isEnabled) {
                throw Problem(message: "every NFS version is switched off: enable at least one with -V")
            }
            if !tcp && !udp && vsockPorts.isEmpty {
                throw Problem(message: "no transport left: -T and -U switch off TCP and UDP, and no --vsock port is given")
            }
            if udp && !isEnabled(.v3) && !tcp && vsockPorts.isEmpty {
                throw Problem(message: "NFSv4 needs TCP (or --vsock): UDP alone serves only NFSv3")
            }
        }
    }
}

/// The exact text written to each /proc/fs/nfsd file.
public enum NFSDProcText {
    /// versions: "-2 +3 +4 +4.0 +4.1 +4.2 \n" (nfs-utils' layout: major
    /// versions, then v4 minor versions, each with its sign and a space).
    public static func versions(_ settings: NFSDSettings) -> String {
        var text = "-2 "
        text += (settings.isEnabled(.v3) ? "+" : "-") + "3 "
        let anyFour = settings.isEnabled(.v4) || NFSVersion.minorVersions.contains(where: settings.isEnabled)
        text += (anyFour ? "+" : "-") + "4 "
        if anyFour {
            for minor in NFSVersion.minorVersions {
                text += (settings.isEnabled(minor) ? "+" : "-") + minor.rawValue + " "
            }
        }
        return text + "\n"
    }

    /// versions for the bridge's nfsd instance: "-2 -3 +4 -4.0 +4.1 +4.2 \n".
    public static func bridgeVersions(_ minors: [NFSVersion]) -> String {
        var text = "-2 -3 +4 "
        for minor in NFSVersion.minorVersions {
            text += (minors.contains(minor) ? "+" : "-") + minor.rawValue + " "
        }
        return text + "\n"
    }

    public static func number(_ value: Int) -> String { "\(value)\n" }

    /// portlist: a listening socket handed over by descriptor.
    public static func portlist(fd: Int32) -> String { "\(fd)\n" }
}
