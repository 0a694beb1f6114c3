#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin

/// mount.vsock: mounts a host export over vsock on a stock guest kernel.
/// Checks vsock and the host first, starts the loopback relay in a child
/// process that outlives this one (it exits after umount), then mounts
/// NFSv4 through the relay with mount(2) - no nfs-utils needed in the guest.
public enum MountVsock {
    public static let usage = """
        usage: mount.vsock [CID]:/export DIR [-o options] [-v] [-f] [-n]
               mount -t vsock 2:/export DIR        (fstab: 2:/export DIR vsock defaults 0 0)
        CID is the host's vsock CID (default 2). Options: vsock_port=N (default 2049), cid=N,
        and NFS options (ro, soft, vers=4.2, ...); NFSv4.1 over the relay by default, vers=4
        tries 4.2 then 4.1. NFSv4.0 (vers=4.0, minorversion=0) is refused: the host serves
        only NFSv4.1 and 4.2 to vsock guests.
        The relay listens on 127.0.0.1 at the highest free port below
        net.ipv4.ip_unprivileged_port_start (at most 1023), so only root can take its place;
        it forwards from a privileged vsock port only connections from a port below 1024
        whose socket root owns. lo is brought up if it is down.

        """

    public static func main(_ arguments: [String]) -> Int32 {
        if arguments.contains("-h") || arguments.contains("--help") {
            Console.out(usage)
            return 0
        }
        let request: MountVsockRequest
        do {
            request = try MountVsockRequest.parse(arguments)
        } catch {
            Console.err("mount.vsock: \(error)\n\(usage)")
            return 1
        }
        return run(request, arguments: arguments)
    }

    static func fail(_ message: String, status: Int32 = 32) -> Int32 {
        Console.err("mount.vsock: \(message)\n")
        return status
    }

    static func run(_ request: MountVsockRequest, arguments: [String]) -> Int32 {
        guard geteuid() == 0 else { return fail("must be run as root", status: 1) }
        if request.verbose {
            Console.err("mount.vsock: called as mount.vsock \(arguments.joined(separator: " "))\n")
        }
        let relay = VsockRelay(cid: request.cid, port: request.vsockPort)
        // 1. vsock and the host, before anything else starts.
        guard Socket.supported(family: AF_VSOCK) else {
            return fail(MountVsockProblem.noVsockSocket(errno: errno))
        }
        do {
            close(try relay.connectHost(privileged: false))
        } catch {
            return fail(MountVsockProblem.hostUnreachable(errno: error.errno, cid: request.cid, port: request.vsockPort))
        }
        if request.fake { return 0 }
        guard let directory = FileSystem.realPath(request.directory), FileSystem.isDirectory(directory) else {
            return fail("mount point \(request.directory) does not exist")
        }

        // 2. The relay on guest loopback: lo must be up (a freshly booted
        // minimal guest has it down), and the port one only root may bind.
        do {
            if try NetworkNamespace.bringLoopbackUp(), request.verbose {
                Console.err("mount.vsock: \(MountVsockProblem.loopbackBroughtUp)\n")
            }
        } catch {
            return fail(MountVsockProblem.loopbackDown(error))
        }
        let sysctlText: String?
        do {
            sysctlText = try FileSystem.readIfExists(RelayPortChoice.sysctlPath).map { String(decoding: $0, as: UTF8.self) }
        } catch {
            return fail("cannot read \(RelayPortChoice.sysctl) (\(error))")
        }
        let ports = RelayPortChoice.unprivilegedPortStart(sysctlText: sysctlText).map { RelayPortChoice.candidates(unprivilegedPortStart: $0) } ?? []
        if ports.isEmpty {
            return fail(MountVsockProblem.noPrivilegedPort(sysctlValue: sysctlText ?? ""))
        }
        let listener: Int32
        let relayPort: UInt16
        do {
            (listener, relayPort) = try RelayListener.open(ports: ports)
        } catch {
            return fail(MountVsockProblem.relayListenFailed(error))
        }

        // 3. The relay process outlives mount(8), under a keeper that
        // starts it again if it dies (RelayKeeper): fork before any thread.
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return fail("pipe: \(SystemError.describe(errno))") }
        let child = fork()
        if child < 0 { return fail("fork: \(SystemError.describe(errno))") }
        if child == 0 {
            close(ends[0])
            setsid()
            let null = open("/dev/null", O_RDWR)
            if null >= 0 { dup2(null, 0); dup2(null, 1); dup2(null, 2) }
            _ = chdir("/")
            RelayKeeper.run(relay: relay, listener: listener, directory: directory, export: request.export,
                            relayPort: relayPort, report: ends[1])
        }
        close(ends[1])
        close(listener)
        var relayPID: pid_t = 0
        if read(ends[0], &relayPID, MemoryLayout<pid_t>.size) != MemoryLayout<pid_t>.size { relayPID = child }
        close(ends[0])

        // 4. Mount through the relay; a bare vers=4 tries 4.2, then 4.1,
        // while the kernel answers that the version is not available (as
        // mount.nfs negotiates: the kernel itself would take it as 4.0).
        var error: Int32 = 0
        for options in request.mountOptionAttempts(relayPort: relayPort) {
            let (flags, data) = MountFlags.split(options + ",clientaddr=127.0.0.1")
            if request.verbose {
                Console.err("mount.vsock: relay 127.0.0.1:\(relayPort) -> vsock \(request.cid):\(request.vsockPort) (pid \(relayPID)) kept by pid \(child); mount -t nfs4 -o \(data) 127.0.0.1:\(request.export) \(directory)\n")
            }
            if mount("127.0.0.1:\(request.export)", directory, "nfs4", flags, data) == 0 { return 0 }
            error = errno
            if error != EPROTONOSUPPORT && error != EINVAL { break }
        }
        kill(child, SIGTERM)
        var status: Int32 = 0
        waitpid(child, &status, 0)
        return fail(MountVsockProblem.mountFailed(errno: error, export: request.export, cid: request.cid))
    }
}

/// What mount.vsock says when a step fails: the cause in words a guest's
/// administrator can act on (pure, so every message is tested).
enum MountVsockProblem {
    static func noVsockSocket(errno: Int32) -> String {
        "no vsock support in this guest kernel (socket(AF_VSOCK): \(SystemError.describe(errno))): "
            + "load it (modprobe vmw_vsock_virtio_transport) and give the VM a vsock device"
    }

    static func hostUnreachable(errno: Int32, cid: UInt32, port: UInt32) -> String {
        let reason = SystemError.describe(errno)
        switch errno {
        case ECONNREFUSED, ECONNRESET:
            return "the host (CID \(cid)) is not listening on vsock port \(port) (\(reason)): "
                + "start nfs-vsock-bridge there (rpc.nfsd --vsock \(port) does), or give its port with -o vsock_port=N"
        case ENODEV, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL, EAFNOSUPPORT:
            return "no vsock device in this guest to reach CID \(cid) (\(reason)): give the VM a vsock device "
                + "(virtio-vsock) and load its driver (modprobe vmw_vsock_virtio_transport)"
        case ETIMEDOUT:
            return "vsock CID \(cid) did not answer on port \(port) (\(reason)): the host is CID 2 as a guest sees it"
        default:
            return "cannot reach vsock CID \(cid) port \(port): \(reason)"
        }
    }

    static let loopbackBroughtUp = "the loopback interface lo was down: brought it up (the relay listens on 127.0.0.1)"

    static func loopbackDown(_ error: SystemError) -> String {
        "cannot bring the loopback interface lo up (\(error)): the relay listens on 127.0.0.1; "
            + "bring it up (ip link set lo up) and mount again"
    }

    /// The sysctl leaves no port that only root may bind (or does not read
    /// as a number: `value` is its text).
    static func noPrivilegedPort(sysctlValue value: String) -> String {
        let shown = value.filter { !$0.isWhitespace }
        return "\(RelayPortChoice.sysctl) is \(shown.isEmpty ? "empty" : shown) in this guest: no port is left that only root may bind, "
            + "and the relay needs one (on any other port a guest user could serve this mount once the relay is gone); "
            + "set it back to 1024 (sysctl -w \(RelayPortChoice.sysctl)=1024)"
    }

    static func relayListenFailed(_ error: SystemError) -> String {
        if error.errno == EADDRINUSE {
            return "no free privileged port for the relay on 127.0.0.1 (\(error)): each mount.vsock mount has a relay on one"
        }
        return "cannot listen on guest loopback for the relay (\(error))"
    }

    static func mountFailed(errno: Int32, export: String, cid: UInt32) -> String {
        let reason = SystemError.describe(errno)
        switch errno {
        case EACCES, EPERM:
            return "the host refused \(export) to this guest (\(reason)): its /etc/exports needs a vsock:<CID> or vsock:* "
                + "rule for this guest, and a secure export (the default) needs a privileged port (no noresvport)"
        case ENOENT:
            return "the host has no export \(export) for this guest (\(reason)): NFSv4 shows a guest only the exports "
                + "its CID may mount (exportfs -v on the host lists them)"
        default:
            return "mounting \(export) over vsock CID \(cid) failed: \(reason)"
        }
    }
}

/// Generic mount options become mount(2) flags; the rest is NFS data.
enum MountFlags {
    static func split(_ options: String) -> (UInt, String) {
        var flags: UInt = 0
        var data: [String] = []
        let table: [String: (UInt, Bool)] = [
            "ro": (UInt(MS_RDONLY), true), "rw": (UInt(MS_RDONLY), false),
            "nosuid": (UInt(MS_NOSUID), true), "suid": (UInt(MS_NOSUID), false),
            "nodev": (UInt(MS_NODEV), true), "dev": (UInt(MS_NODEV), false),
            "noexec": (UInt(MS_NOEXEC), true), "exec": (UInt(MS_NOEXEC), false),
            "noatime": (UInt(MS_NOATIME), true), "atime": (UInt(MS_NOATIME), false),
            "nodiratime": (UInt(MS_NODIRATIME), true), "relatime": (UInt(MS_RELATIME), true),
            "sync": (UInt(MS_SYNCHRONOUS), true), "async": (UInt(MS_SYNCHRONOUS), false),
        ]
        for option in options.split(separator: ",").map(String.init) {
            if let (flag, set) = table[option] {
                if set { flags |= flag } else { flags &= ~flag }
            } else {
                data.append(option)
            }
        }
        return (flags, data.joined(separator: ","))
    }
}
