#if canImport(Glibc)
import Glibc
#endif

/// What a reload (SIGHUP, `systemctl reload`) touches in a running bridge:
/// its listeners, its descriptor limit and its live limits. Behind a
/// protocol so that `BridgeReload.run`'s decisions are tested without
/// sockets.
public protocol BridgeReloadEffects {
    /// The listeners being served now.
    var serving: [Bridge.Listener] { get }
    /// Stops accepting on a listener (its connections stay).
    func stop(_ listener: Bridge.Listener)
    /// Opens an AF_VSOCK port and serves it.
    func openVsock(_ port: UInt32) throws -> Void
    /// Raises RLIMIT_NOFILE for this many connections, up to the hard limit
    /// set at start; what it did, or nil when the limit already holds.
    func raiseDescriptors(maxConnections: Int, listeners: Int) throws -> String?
    /// Applies the limits to new connections; what changed.
    func apply(_ configuration: BridgeConfiguration) -> [String]
}

/// The log lines a reload leaves, by level.
public struct BridgeReloadOutcome: Equatable, Sendable {
    public var notice: String
    public var errors: [String] = []
    public var warnings: [String] = []
}

public enum BridgeReload {
    /// A reload with the configuration read again (`read`, from nfs.conf
    /// and the command line): new limits apply to new connections, vsock
    /// ports are opened or stopped, and no open connection is dropped. The
    /// target, the guest block and the user stay (a restart changes them);
    /// a new hybrid-vsock socket needs root to hand it to its VMM, which the
    /// bridge gave up, so it needs a restart too; systemd's listeners are
    /// systemd's to change. `guestsMaxConnections` is the guests' nfsd's
    /// max_connections (nil or 0: none), which rpc.nfsd sets and the bridge
    /// cannot.
    public static func run(current: BridgeConfiguration, read: BridgeConfiguration, listenersFromSystemd: Bool,
                           guestsMaxConnections: Int?, effects: some BridgeReloadEffects) -> BridgeReloadOutcome {
        var new = read
        var notes: [String] = []
        var outcome = BridgeReloadOutcome(notice: "")
        if (new.targetHost, new.targetPort) != (current.targetHost, current.targetPort) {
            notes.append("the target stays \(current.targetHost):\(current.targetPort) (restart the bridge to change it)")
        }
        // Against what was read at start, before the default port: under
        // systemd the bridge never took 2049 as its own.
        let systemdListenersChanged = listenersFromSystemd
            && (read.vsockPorts != current.vsockPorts || read.unixListeners != current.unixListeners)
        if new.vsockPorts.isEmpty && new.unixListeners.isEmpty { new.vsockPorts = [2049] }
        if listenersFromSystemd {
            new.vsockPorts = current.vsockPorts
            new.unixListeners = current.unixListeners
        } else {
            let changes = new.listenerChanges(serving: effects.serving)
            for listener in changes.stop {
                effects.stop(listener)
                notes.append("stopped listening on \(listener.name) (its open connections stay)")
            }
            for port in changes.openVsock {
                do {
                    try effects.openVsock(port)
                    notes.append("listening on vsock:*:\(port)")
                } catch {
                    outcome.errors.append("reload: cannot listen on vsock:*:\(port): \(error)")
                    new.vsockPorts.removeAll { $0 == port }
                }
            }
            for unix in changes.cannotOpen {
                outcome.errors.append("reload: not opening the hybrid-vsock socket \(unix.path) (CID \(unix.cid)): handing it to its VMM takes root, which the bridge gave up; restart the bridge")
                new.unixListeners.removeAll { $0 == unix }
            }
        }
        // More connections may need more descriptors: up to the hard limit
        // set at start; beyond it the old cap stays.
        if new.maxConnections > current.maxConnections {
            do {
                if let raised = try effects.raiseDescriptors(maxConnections: new.maxConnections, listeners: effects.serving.count) {
                    notes.append(raised)
                }
            } catch {
                outcome.errors.append("reload: \(error); max-connections stays \(current.maxConnections)")
                new.maxConnections = current.maxConnections
            }
        }
        let said = effects.apply(new) + notes
        outcome.notice = "reloaded: " + (said.isEmpty ? "nothing changed" : said.joined(separator: "; ")) + "; no connection dropped"
        if systemdListenersChanged {
            outcome.warnings.append("reload: the listeners are systemd's (nfs-vsock-bridge.socket): change them there")
        }
        if let limit = guestsMaxConnections, limit > 0, limit < new.maxConnections {
            outcome.warnings.append("max-connections \(new.maxConnections) is above the guests' nfsd's max_connections \(limit): run rpc.nfsd --vsock PORT again to raise it")
        }
        return outcome
    }
}

/// A running bridge's reload effects.
public struct LiveBridgeReload: BridgeReloadEffects {
    public let bridge: Bridge

    public init(bridge: Bridge) { self.bridge = bridge }

    public var serving: [Bridge.Listener] { bridge.listeners }

    public func stop(_ listener: Bridge.Listener) {
        bridge.stop(listener)
        if case .unix(_, let path, _) = listener { unlink(path) }
    }

    public func openVsock(_ port: UInt32) throws {
        var only = BridgeConfiguration()
        only.vsockPorts = [port]
        bridge.start(try BridgeListeners.open(only))
    }

    public func raiseDescriptors(maxConnections: Int, listeners: Int) throws -> String? {
        try DescriptorBudget(maxConnections: maxConnections, listeners: listeners).apply()
    }

    public func apply(_ configuration: BridgeConfiguration) -> [String] { bridge.reload(configuration) }
}
