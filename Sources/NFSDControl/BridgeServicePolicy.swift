#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin

/// What rpc.nfsd does about nfs-vsock-bridge around a start or a
/// `--vsock 0`, and what it says. Pure: it is given what was asked and what
/// runs, and answers with decisions and lines; NfsdControlCommand does the
/// system calls and prints.
public enum BridgeServicePolicy {
    /// A line for rpc.nfsd's log (standard error, or syslog with -s).
    public enum Line: Sendable, Equatable {
        /// Only with -d.
        case verbose(String)
        /// Always: where the server and vsock are served, what changed.
        case always(String)
        case error(String)
    }

    /// The default user nfs-vsock-bridge runs as ([vsock] user).
    public static let defaultUser = "nfs-vsock-bridge"

    /// `rpc.nfsd 0` stops the bridge along with the server.
    public static func stopsBridgeBeforeStart(_ settings: NFSDSettings) -> Bool { settings.threads == 0 }

    /// After a start that bridges nothing, on a server this run started,
    /// no bridge is wanted any more (a running server's bridge stays
    /// wanted: only --vsock 0 or rpc.nfsd 0 give it up).
    public static func clearsWanted(after report: NFSDController.Report) -> Bool {
        report.vsockForBridge.isEmpty && !report.alreadyRunning
    }

    /// What a start says about the host's nfsd, before the bridge.
    public static func serverLines(_ report: NFSDController.Report, threads: Int) -> [Line] {
        var lines: [Line] = []
        if threads > 0 && !report.alreadyRunning {
            lines.append(.verbose("nfsd: \(report.threads) threads; listening on \(report.listeners.joined(separator: ", "))"))
            // Where the server can be reached, whether or not -d is given.
            lines += report.listeners.map { .always("rpc.nfsd: listening on \($0)") }
            if report.listeners.isEmpty { lines.append(.always("rpc.nfsd: no IP listener: IP clients are not served")) }
        }
        if report.alreadyRunning {
            lines.append(.always("rpc.nfsd: the server is running; " + (report.changed.isEmpty ? "nothing changed" : "changed: " + report.changed.joined(separator: "; "))))
            if !report.left.isEmpty { lines.append(.always("rpc.nfsd: left as it was: " + report.left.joined(separator: "; "))) }
        }
        lines += report.vsockServedByKernel.map { .always("rpc.nfsd: vsock port \($0): served by the kernel") }
        return lines
    }

    /// What `rpc.nfsd --vsock 0` says once it has stopped what it could.
    public static func stopVsockLines(stoppedBridgePID: pid_t?, stoppedInstance: Bool, threads: Int, portlist: [String],
                                      underSystemd: Bool) -> [Line] {
        var stopped: [String] = []
        if let pid = stoppedBridgePID { stopped.append("nfs-vsock-bridge (pid \(pid))") }
        if stoppedInstance { stopped.append("the nfsd for vsock guests and network namespace \(BridgeNamespace.name)") }
        let remaining = threads > 0
            ? "IP service is left as it was (\(threads) threads; \(portlist.joined(separator: ", ")))"
            : "no IP service was running"
        var lines: [Line] = [.always("rpc.nfsd: " + (stopped.isEmpty ? "vsock was not served; nothing changed; " : "vsock is no longer served: stopped \(stopped.joined(separator: " and ")); ") + remaining)]
        if underSystemd {
            lines.append(.always("rpc.nfsd: nfs-vsock-bridge.socket still holds its vsock ports: systemctl stop nfs-vsock-bridge.socket"))
        }
        return lines
    }

    /// What runs of the bridge before this run touches it.
    public struct RunningBridge: Sendable, Equatable {
        /// The verified pid of a running bridge.
        public var pid: pid_t?
        /// The ports the bridge was last wanted for (the .wanted marker).
        public var wantedPorts: [UInt32]?

        public init(pid: pid_t?, wantedPorts: [UInt32]?) {
            self.pid = pid
            self.wantedPorts = wantedPorts
        }
    }

    /// How the bridge is to serve the ports a start left to it.
    public enum Decision: Sendable, Equatable {
        /// systemd's nfs-vsock-bridge.socket serves them: nothing to start.
        case servedBySystemd
        /// The running bridge already serves exactly these ports, with the
        /// guests' nfsd kept: it stays, and so do its guests' connections.
        case keep(pid: pid_t)
        /// Start a bridge; on a running server, one that served the ports
        /// named is stopped first (its guests reconnect).
        case start(stopping: [UInt32]?)
    }

    /// What becomes of the server when the bridge cannot be started.
    public enum Cleanup: Sendable, Equatable {
        /// The guests' nfsd this run started goes; IP clients keep their server.
        case stopBridgeInstance
        /// The running server and its guests' nfsd stay.
        case none
        /// The server this run started is stopped.
        case stopServer
    }

    /// The bridge half of a start: the ports the kernel could not take.
    public struct Bridged: Sendable, Equatable {
        public var ports: [UInt32]
        public var instance: NFSDController.BridgeInstance
        public var serverWasRunning: Bool
        public var instanceKept: Bool

        /// Nil when the start needs no bridge.
        public init?(_ report: NFSDController.Report) {
            guard !report.vsockForBridge.isEmpty, let instance = report.bridgeInstance else { return nil }
            ports = report.vsockForBridge
            self.instance = instance
            serverWasRunning = report.alreadyRunning
            instanceKept = report.bridgeInstanceKept
        }

        /// The guests' nfsd's listener: the bridge's --target.
        public var target: String { instance.listener }

        public func decide(underSystemd: Bool, running: RunningBridge) -> Decision {
            if underSystemd { return .servedBySystemd }
            if instanceKept, let pid = running.pid, let wanted = running.wantedPorts, wanted.sorted() == ports.sorted() {
                return .keep(pid: pid)
            }
            return .start(stopping: serverWasRunning ? running.wantedPorts : nil)
        }

        var portsText: String { ports.map(String.init).joined(separator: ", ") }

        var through: String {
            let versions = instance.versions.map(\.rawValue).joined(separator: " and ")
            return "through its own nfsd (tcp \(target) in network namespace \(BridgeNamespace.name), NFSv\(versions); NFSv4.0 is off for guests: its callbacks would have nfsd connect out from this host; \(instance.connectionLimit))"
        }

        public var servedBySystemdLine: Line {
            .always("rpc.nfsd: vsock port \(portsText): the kernel has no AF_VSOCK transport; served by nfs-vsock-bridge.socket (systemd) \(through)")
        }

        public func keptLine(pid: pid_t) -> Line {
            .always("rpc.nfsd: vsock port \(portsText): served by nfs-vsock-bridge (pid \(pid)) \(through); left running, its guests keep their connections")
        }

        public static func stoppedLine(served ports: [UInt32]) -> Line {
            .always("rpc.nfsd: stopped nfs-vsock-bridge, which served vsock port \(ports.map(String.init).joined(separator: ", ")) (its guests reconnect)")
        }

        public func startedLine(pid: pid_t, user: String, log: String) -> Line {
            .always("rpc.nfsd: vsock port \(portsText): the kernel has no AF_VSOCK transport; served by nfs-vsock-bridge (pid \(pid), user \(user)) \(through); its log: \(log)")
        }

        /// Why the bridge cannot start as `user`: no such account.
        public static func missingUser(_ user: String) -> SystemError {
            SystemError("getpwnam", "\(user), the user nfs-vsock-bridge runs as (create it: useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \(user); or set [vsock] user)", errno: ENOENT)
        }

        /// The bridge did not start: what to undo, and what to say.
        public func afterFailedStart(_ error: String) -> (cleanup: Cleanup, line: Line) {
            let prefix = "rpc.nfsd: cannot start nfs-vsock-bridge for vsock port \(portsText): \(error); "
            if serverWasRunning {
                return (instanceKept ? .none : .stopBridgeInstance, .error(prefix + "vsock is not served, IP service is left as it was"))
            }
            return (.stopServer, .error(prefix + "the server was stopped"))
        }
    }
}
