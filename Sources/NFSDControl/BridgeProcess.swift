#if canImport(Glibc)
import Glibc
#endif
import CSystemd
import NFSAdmin
import NFSExports

/// Starts and stops nfs-vsock-bridge for rpc.nfsd when the kernel cannot
/// serve vsock itself. Under systemd the bridge's own units do this.
public struct BridgeProcess: Sendable {
    public var paths: SystemPaths

    public init(paths: SystemPaths) { self.paths = paths }

    public var pidFile: String { paths.underRoot("/run/nfs-vsock-bridge.pid") }
    public var logFile: String { paths.underRoot("/var/log/nfs-vsock-bridge.log") }
    /// Present while rpc.nfsd has left vsock ports to the bridge; the
    /// condition of nfs-vsock-bridge.socket (so that on a kernel that serves
    /// vsock itself the socket unit never takes the port).
    public var wantedFile: String { paths.underRoot("/run/nfs-vsock-bridge.wanted") }

    /// Records that the bridge should serve `ports`, forwarding to `target`.
    public func markWanted(ports: [UInt32], target: String) throws(SystemError) {
        let text = "ports=\(ports.map(String.init).joined(separator: ",")) target=\(target)\n"
        _ = try FileSystem.replaceIfChanged(wantedFile, with: Array(text.utf8))
    }

    public func clearWanted() { unlink(wantedFile) }

    /// The ports the last markWanted recorded (nil: none recorded).
    public var wantedPorts: [UInt32]? {
        guard let bytes = try? FileSystem.readIfExists(wantedFile) else { return nil }
        return Self.ports(inWanted: String(decoding: bytes, as: UTF8.self))
    }

    static func ports(inWanted text: String) -> [UInt32]? {
        for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) where field.hasPrefix("ports=") {
            let ports = field.dropFirst("ports=".count).split(separator: ",").compactMap { UInt32($0) }
            return ports.isEmpty ? nil : ports
        }
        return nil
    }

    /// On a running server: the bridge this tool started still runs and
    /// serves exactly `ports`, so it is left alone (its guests keep their
    /// connections).
    public func serves(_ ports: [UInt32]) -> pid_t? {
        guard let pid = runningPID, let wanted = wantedPorts, wanted.sorted() == ports.sorted() else { return nil }
        return pid
    }

    /// The pid file checked against the running processes.
    public var recorded: BridgePIDFile.Verdict {
        guard let bytes = try? FileSystem.readIfExists(pidFile),
              let record = BridgePIDFile.parse(String(decoding: bytes, as: UTF8.self))
        else { return .notRunning }
        return record.verdict(startTimeNow: ProcessIdentity.startTime(of: record.pid))
    }

    /// The running bridge's pid, only when the pid file's start time
    /// proves it is the bridge: the one pid this tool signals.
    public var runningPID: pid_t? { recorded.runningPID }

    /// Set when the pid file is an older pid-only one whose pid runs.
    public var unverified: UnverifiedPIDFile? { unverified(in: recorded) }

    public func unverified(in verdict: BridgePIDFile.Verdict) -> UnverifiedPIDFile? {
        verdict.unverifiedPID.map { UnverifiedPIDFile(path: pidFile, pid: $0) }
    }

    /// True when systemd runs this process (the bridge's units then own it).
    public static func underSystemd(_ environment: [String: String]) -> Bool {
        environment["INVOCATION_ID"] != nil
    }

    /// The bridge next to this executable, else from PATH.
    static func executable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if count > 0 {
            let own = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let sibling = PathName.directory(of: own) + "/nfs-vsock-bridge"
            if access(sibling, X_OK) == 0 { return sibling }
        }
        return "nfs-vsock-bridge"
    }

    /// Where the bridge's messages go when this tool starts it: the
    /// journal where journald runs (a stream the bridge's log marks with
    /// priorities, as under a unit; `journalctl -t nfs-vsock-bridge`), else
    /// /var/log/nfs-vsock-bridge.log (rotated by the logrotate snippet
    /// make install puts in /etc/logrotate.d).
    public enum LogTarget: Equatable, Sendable, CustomStringConvertible {
        case journal
        case file(String)

        public var description: String {
            switch self {
            case .journal: "the journal (journalctl -t nfs-vsock-bridge)"
            case .file(let path): path
            }
        }
    }

    /// The journal's stream socket, if journald runs here.
    var journalSocket: String { paths.underRoot("/run/systemd/journal/stdout") }

    /// A journal stream for the bridge, and JOURNAL_STREAM ("device:inode"
    /// of that stream) for its environment; nil without journald.
    func journalStream() -> (fd: Int32, variable: String)? {
        guard FileSystem.exists(journalSocket) else { return nil }
        let fd = sd_journal_stream_fd("nfs-vsock-bridge", LOG_INFO, 1)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            close(fd)
            return nil
        }
        return (fd, "JOURNAL_STREAM=\(info.st_dev):\(info.st_ino)")
    }

    /// Starts the bridge detached, logging to the journal or to
    /// /var/log/nfs-vsock-bridge.log (see LogTarget).
    public func start(ports: [UInt32], target: String) throws(SystemError) -> (pid: pid_t, log: LogTarget) {
        // The old bridge must have let go of its ports before the new one
        // binds them: stop() waits for it to exit (at most 5 s).
        stop()
        var arguments = [Self.executable()]
        for port in ports { arguments += ["--vsock", String(port)] }
        arguments += ["--target", target]
        var actions: [SystemCall.SpawnAction] = [.open(fd: 0, path: "/dev/null", flags: O_RDONLY, mode: 0)]
        var environment = ProcessEnvironment.current.filter { $0.key != "JOURNAL_STREAM" }.map { "\($0.key)=\($0.value)" }
        let journal = journalStream()
        defer { if let journal { close(journal.fd) } }
        let logTarget: LogTarget
        if let journal {
            actions += [.duplicate(journal.fd, to: 1), .duplicate(journal.fd, to: 2)]
            environment.append(journal.variable)
            logTarget = .journal
        } else {
            actions += [.open(fd: 1, path: logFile, flags: FileSystem.OpenFlags.childLog, mode: 0o640), .duplicate(1, to: 2)]
            logTarget = .file(logFile)
        }
        // The bridge leaves our session (POSIX_SPAWN_SETSID).
        let pid = try SystemCall.spawn(arguments, environment: environment, actions: actions, newSession: true, searchPath: true)
        // Our own child: its /proc entry stays until we reap it, exited or not.
        guard let processStart = ProcessIdentity.startTime(of: pid) else {
            kill(pid, SIGTERM)
            waitpid(pid, nil, 0)
            throw SystemError("read", "/proc/\(pid)/stat (the start time of nfs-vsock-bridge)", errno: ENOENT)
        }
        try FileSystem.replaceIfChanged(pidFile, with: Array(BridgePIDFile(pid: pid, processStart: processStart).text.utf8))
        // A bridge that cannot listen exits at once: say so now.
        usleep(300_000)
        var wstatus: Int32 = 0
        if waitpid(pid, &wstatus, WNOHANG) == pid {
            unlink(pidFile)
            throw SystemError("start", "nfs-vsock-bridge (see \(logTarget))", errno: ECHILD)
        }
        return (pid, logTarget)
    }

    /// Stops the bridge this tool started.
    @discardableResult
    public func stop() -> Bool {
        guard let pid = runningPID else { return false }
        kill(pid, SIGTERM)
        for _ in 0..<50 where kill(pid, 0) == 0 { usleep(100_000) }
        unlink(pidFile)
        return true
    }
}
