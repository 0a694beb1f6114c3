/// rpc.nfsd's record of the bridge it started (/run/nfs-vsock-bridge.pid):
/// `<pid> <start time>\n`, the start time being field 22 of /proc/PID/stat
/// (ProcessIdentity), so that a pid the kernel has since handed to another
/// process is never taken for the bridge and signalled. rpc.nfsd before
/// this record wrote the pid alone.
public struct BridgePIDFile: Sendable, Equatable {
    public var pid: Int32
    /// nil in a pid-only file from an older rpc.nfsd.
    public var processStart: UInt64?

    public init(pid: Int32, processStart: UInt64?) {
        self.pid = pid
        self.processStart = processStart
    }

    public var text: String { processStart.map { "\(pid) \($0)\n" } ?? "\(pid)\n" }

    /// nil when `text` is not a pid file (empty, not numbers, a pid below 1).
    public static func parse(_ text: String) -> BridgePIDFile? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        guard (1...2).contains(words.count), let pid = Int32(words[0]), pid > 0 else { return nil }
        guard words.count == 2 else { return BridgePIDFile(pid: pid, processStart: nil) }
        guard let start = UInt64(words[1]) else { return nil }
        return BridgePIDFile(pid: pid, processStart: start)
    }

    public enum Verdict: Sendable, Equatable {
        /// The pid runs and started when the record says: it is the bridge.
        case running(Int32)
        /// The pid runs but the record has no start time: it may be the
        /// bridge or a process that got the pid since. Never signalled.
        case unverified(Int32)
        /// No record, or its process is gone, or the pid now belongs to a
        /// process that started at another time.
        case notRunning

        public var runningPID: Int32? {
            if case .running(let pid) = self { return pid }
            return nil
        }

        public var unverifiedPID: Int32? {
            if case .unverified(let pid) = self { return pid }
            return nil
        }
    }

    /// The record checked against `startTimeNow`, the start time of the
    /// process that has `pid` now (nil: no such process).
    public func verdict(startTimeNow: UInt64?) -> Verdict {
        guard let startTimeNow else { return .notRunning }
        guard let processStart else { return .unverified(pid) }
        return processStart == startTimeNow ? .running(pid) : .notRunning
    }
}

/// A pid-only pid file whose pid runs: what rpc.nfsd and `status` say
/// instead of signalling it.
public struct UnverifiedPIDFile: Sendable, Equatable {
    public var path: String
    public var pid: Int32

    public init(path: String, pid: Int32) {
        self.path = path
        self.pid = pid
    }

    public var notice: String {
        "\(path) names pid \(pid) without its start time (an older rpc.nfsd wrote it): not verified, so not "
            + "signalled, as the pid may belong to another process by now; if it is nfs-vsock-bridge, stop it by hand "
            + "and remove the file"
    }
}
