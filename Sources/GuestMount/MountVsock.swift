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
        and NFS options (ro, soft, vers=4.2, ...); NFSv4.1 over the relay by default.

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
        return run(request)
    }

    static func fail(_ message: String, status: Int32 = 32) -> Int32 {
        Console.err("mount.vsock: \(message)\n")
        return status
    }

    static func run(_ request: MountVsockRequest) -> Int32 {
        guard geteuid() == 0 else { return fail("must be run as root", status: 1) }
        let relay = VsockRelay(cid: request.cid, port: request.vsockPort)
        // 1. vsock and the host, before anything else starts.
        let probe = socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue), 0)
        if probe < 0 {
            return fail("no vsock device in this guest (\(String(cString: strerror(errno)))): load the virtio vsock transport (modprobe vmw_vsock_virtio_transport) or give the VM a vsock device")
        }
        close(probe)
        do {
            close(try relay.connectHost(privileged: false))
        } catch {
            switch error.errno {
            case ECONNREFUSED, ECONNRESET:
                return fail("the host (CID \(request.cid)) is not listening on vsock port \(request.vsockPort): start nfs-vsock-bridge there, or rpc.nfsd --vsock \(request.vsockPort)")
            default:
                return fail("cannot reach vsock CID \(request.cid) port \(request.vsockPort): \(error)")
            }
        }
        if request.fake { return 0 }

        // 2. The relay on guest loopback.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                // SAFETY: a complete sockaddr_in, also big enough for getsockname.
                bind(listener, generic, length) == 0 && listen(listener, 64) == 0 && getsockname(listener, generic, &length) == 0
            }
        }
        guard listener >= 0, listening else { return fail("cannot listen on guest loopback: \(String(cString: strerror(errno)))") }
        let relayPort = UInt16(bigEndian: address.sin_port)
        guard let directory = FileSystem.realPath(request.directory), FileSystem.isDirectory(directory) else {
            return fail("mount point \(request.directory) does not exist")
        }

        // 3. The relay process outlives mount(8): fork before any thread.
        let child = fork()
        if child < 0 { return fail("fork: \(String(cString: strerror(errno)))") }
        if child == 0 {
            setsid()
            let null = open("/dev/null", O_RDWR)
            if null >= 0 { dup2(null, 0); dup2(null, 1); dup2(null, 2) }
            _ = chdir("/")
            relay.serve(listener: listener, directory: directory, relayPort: relayPort)
            _exit(0)
        }
        close(listener)

        // 4. Mount through the relay.
        let (flags, data) = MountFlags.split(request.mountOptions(relayPort: relayPort) + ",clientaddr=127.0.0.1")
        if request.verbose {
            Console.err("mount.vsock: relay 127.0.0.1:\(relayPort) -> vsock \(request.cid):\(request.vsockPort) (pid \(child)); mount -t nfs4 -o \(data) 127.0.0.1:\(request.export) \(directory)\n")
        }
        if mount("127.0.0.1:\(request.export)", directory, "nfs4", flags, data) != 0 {
            let error = errno
            kill(child, SIGTERM)
            var status: Int32 = 0
            waitpid(child, &status, 0)
            switch error {
            case EACCES, EPERM:
                return fail("the host refused \(request.export) to this guest (CID rules in its /etc/exports: vsock:<cid>, vsock:*)")
            case ENOENT:
                return fail("the host has no export \(request.export) for this guest")
            default:
                return fail("mounting \(request.export) over vsock CID \(request.cid) failed: \(String(cString: strerror(error)))")
            }
        }
        return 0
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
