#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin

/// The file descriptors the bridge must be able to hold to serve its caps:
/// two per connection (the guest's socket and its own to nfsd), its
/// listeners, and a reserve (the status file, the log, the change pipe, a
/// connection being refused). A bridge whose limit is below that would
/// meet EMFILE in accept() with every guest waiting behind it, so it
/// raises its limit at start, or refuses to start.
public struct DescriptorBudget: Sendable, Equatable {
    public static let reserve = 64
    public let maxConnections: Int
    public let needed: UInt64

    public init(maxConnections: Int, listeners: Int) {
        self.maxConnections = maxConnections
        needed = UInt64(2 * maxConnections + listeners + Self.reserve)
    }

    /// The limits to set, given the current soft and hard RLIMIT_NOFILE
    /// (RLIM_INFINITY is UInt64.max): nil when the soft limit already
    /// holds the budget. The hard limit is raised only when it must be
    /// (which needs CAP_SYS_RESOURCE: a bridge rpc.nfsd starts as root).
    public func limits(soft: UInt64, hard: UInt64) -> (soft: UInt64, hard: UInt64)? {
        guard soft < needed else { return nil }
        return (needed, max(hard, needed))
    }

    /// Why the bridge does not start when its limits cannot be raised.
    public func refusal(soft: UInt64, hard: UInt64, error: SystemError) -> String {
        "max-connections \(maxConnections) needs \(needed) file descriptors, and the limit is \(Self.text(soft)) (hard \(Self.text(hard))), which cannot be raised (\(error)): raise LimitNOFILE= of the unit (or ulimit -n), or lower max-connections"
    }

    static func text(_ limit: UInt64) -> String { limit == UInt64.max ? "unlimited" : String(limit) }

    /// Raises this process's RLIMIT_NOFILE to the budget; returns what
    /// changed, for the log (nil: nothing needed).
    public func apply() throws(BridgeConfiguration.Problem) -> String? {
        var current = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &current) == 0 else {
            throw BridgeConfiguration.Problem("\(SystemError.current("getrlimit", "RLIMIT_NOFILE"))")
        }
        let soft = UInt64(current.rlim_cur), hard = UInt64(current.rlim_max)
        guard let wanted = limits(soft: soft, hard: hard) else { return nil }
        var raised = rlimit(rlim_cur: rlim_t(wanted.soft), rlim_max: rlim_t(wanted.hard))
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 else {
            throw BridgeConfiguration.Problem(refusal(soft: soft, hard: hard, error: SystemError.current("setrlimit", "RLIMIT_NOFILE \(wanted.soft)")))
        }
        return "open files limit raised from \(Self.text(soft)) to \(wanted.soft) (max-connections \(maxConnections))"
    }
}
