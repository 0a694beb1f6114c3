#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import SystemEdge

/// Keeps the bridge's status file current for `nfsd-control status`:
/// rewrites it (temporary file + rename, only when the content changed)
/// soon after a connection opens, closes or is refused, and once a second
/// while bytes move; at most five times a second under churn.
public final class BridgeStatusPublisher: Sendable {
    let bridge: Bridge
    let file: BridgeStatusFile
    let log: DaemonLog
    private let pid: Int32
    private let processStart: UInt64
    private let started: Int
    /// Whether publishing has stopped, and the last write error logged;
    /// the lock also keeps `stop()` from racing a write.
    private let state = ThreadLock<(stopped: Bool, lastError: String?)>((false, nil))

    public init(bridge: Bridge, file: BridgeStatusFile, log: DaemonLog) {
        self.bridge = bridge
        self.file = file
        self.log = log
        pid = getpid()
        processStart = ProcessIdentity.startTime(of: getpid()) ?? 0
        started = time(nil)
    }

    /// The status as of `now` (seconds since the epoch).
    public func snapshot(now: Int) -> BridgeStatus {
        let configuration = bridge.configuration
        var status = BridgeStatus(
            pid: pid, processStart: processStart, started: started,
            target: "\(configuration.targetHost):\(configuration.targetPort)",
            loopbackBlock: "\(configuration.mapping)",
            maxPerGuest: configuration.maxConnectionsPerGuest, maxConnections: configuration.maxConnections,
            idleTimeout: configuration.idleTimeout,
            listeners: bridge.listeners.map { listener in
                switch listener {
                case .vsock(_, let port): .vsock(port: port)
                case .unix(_, let path, let cid): .unix(path: path, cid: cid)
                }
            },
            guests: bridge.guestStatus(now: now))
        status.maxUnprivilegedPerGuest = configuration.maxUnprivilegedPerGuest
        return status
    }

    /// Writes the file now (unless stopped); a failure is logged once
    /// until the next success, and the bridge keeps forwarding.
    public func publish() {
        state.withLock { state in
            guard !state.stopped else { return }
            do {
                try file.write(snapshot(now: time(nil)))
                if state.lastError != nil { log.notice("status file \(file.path) written again") }
                state.lastError = nil
            } catch {
                let message = "\(error)"
                if state.lastError != message { log.warning("cannot write the status file: \(message)") }
                state.lastError = message
            }
        }
    }

    /// Publishes until `stop()`, on a thread of its own: after a change
    /// (connection, refusal, listener, reload), and once a second while
    /// bytes move. A second in which nothing happened costs one sum over
    /// the open connections' meters, not the status of every guest (with
    /// a thousand guests, building and comparing it each second took a
    /// few percent of a CPU under emulation with every guest quiet).
    public func start() {
        publish()
        DetachedThread.start { [self] in
            var carried = bridge.bytesCarried
            while !state.withLock({ $0.stopped }) {
                let changed = bridge.waitForChange(timeoutMilliseconds: 1000)
                let now = bridge.bytesCarried
                guard changed || now != carried else { continue }
                carried = now
                usleep(200_000)
                publish()
            }
        }
    }

    /// Removes the file: a bridge that stops cleanly leaves no status.
    public func stop() {
        state.withLock { state in
            state.stopped = true
            file.remove()
        }
    }
}
