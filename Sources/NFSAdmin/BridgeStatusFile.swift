#if canImport(Glibc)
import Glibc
#endif
import NFSExports

/// The bridge's status file (/run/nfs-vsock-bridge/status under the
/// movable root): written by nfs-vsock-bridge, read by nfsd-control.
public struct BridgeStatusFile: Sendable {
    public var path: String

    public init(path: String) { self.path = path }

    public init(paths: SystemPaths) { self.init(path: paths.bridgeStatus) }

    public enum Reading: Sendable, Equatable {
        /// No file: no bridge has published a status (or it stopped cleanly).
        case absent
        /// The bridge named in the file runs.
        case running(BridgeStatus)
        /// The file names a process that is gone (killed without cleanup).
        case stale(BridgeStatus)
        case unreadable(String)
    }

    /// Reads the file and checks that its bridge still runs; `isRunning`
    /// is replaceable for tests.
    public func read(isRunning: (_ pid: Int32, _ processStart: UInt64) -> Bool = ProcessIdentity.runs) -> Reading {
        let bytes: [UInt8]?
        do {
            bytes = try FileSystem.readIfExists(path)
        } catch {
            return .unreadable("\(error)")
        }
        guard let bytes else { return .absent }
        do {
            let status = try BridgeStatus.parse(String(decoding: bytes, as: UTF8.self))
            return isRunning(status.pid, status.processStart) ? .running(status) : .stale(status)
        } catch {
            return .unreadable("\(path): \(error)")
        }
    }

    /// Replaces the file atomically when the content changed; creates its
    /// directory (mode 0755) first.
    public func write(_ status: BridgeStatus) throws(SystemError) {
        let directory = PathName.directory(of: path)
        if !FileSystem.isDirectory(directory) {
            if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw SystemError.current("mkdir", directory) }
        }
        try FileSystem.replaceIfChanged(path, with: Array(status.text.utf8))
    }

    public func remove() { unlink(path) }
}

/// A process named by pid and start time, so that a reused pid is not
/// mistaken for the process that wrote a file.
public enum ProcessIdentity {
    /// Field 22 of /proc/PID/stat: start time in clock ticks after boot.
    public static func startTime(of pid: Int32) -> UInt64? {
        guard let bytes = try? FileSystem.readIfExists("/proc/\(pid)/stat") else { return nil }
        // The command name (field 2) may hold spaces and ')': skip past the last ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        // fields[0] is field 3 (state), so field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
    }

    /// True when `pid` runs and, if `processStart` is known (non-zero),
    /// started at that time.
    public static func runs(_ pid: Int32, _ processStart: UInt64) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard processStart != 0, let actual = startTime(of: pid) else { return true }
        return actual == processStart
    }
}
