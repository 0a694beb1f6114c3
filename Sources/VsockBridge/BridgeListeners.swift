#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import SystemEdge

/// Opens the bridge's listening sockets, or takes them from systemd socket
/// activation (`ListenStream=vsock::2049`, or a hybrid-vsock Unix path).
public enum BridgeListeners {
    /// Hybrid-vsock sockets are created mode 0600 and owned by their VM's
    /// VMM (see `listenUnix`); the listener set is checked first
    /// (`BridgeConfiguration.checkUnixListeners`).
    public static func open(_ configuration: BridgeConfiguration) throws(SystemError) -> [Bridge.Listener] {
        try check(configuration)
        var listeners: [Bridge.Listener] = []
        do throws(SystemError) {
            for port in configuration.vsockPorts {
                let fd = try SocketAddress.vsock(cid: SocketAddress.anyCID, port: port).listen()
                listeners.append(.vsock(fd: fd, port: port))
            }
            for unix in configuration.unixListeners {
                let fd = try listenUnix(unix.path, owner: unix.vmmUID)
                listeners.append(.unix(fd: fd, path: unix.path, cid: unix.cid))
            }
            // Two spellings of one file (a symbolic link, "..") pass the
            // textual check, and the later listener has replaced the
            // earlier's socket: both paths now lead to the later one.
            var seen: [SocketFile: String] = [:]
            for path in configuration.unixListeners.map(\.path) {
                guard let file = SocketFile(path: path) else { continue }
                if let earlier = seen.updateValue(path, forKey: file) {
                    throw SystemError("configure", "hybrid-vsock sockets \(earlier) and \(path) are the same file: one socket carries one VM", errno: EINVAL)
                }
            }
        } catch {
            for listener in listeners {
                switch listener {
                case .vsock(let fd, _): close(fd)
                case .unix(let fd, let path, _): close(fd); unlink(path)
                }
            }
            throw error
        }
        return listeners
    }

    /// The refusals of `BridgeConfiguration.checkUnixListeners`, as a
    /// listener error.
    private static func check(_ configuration: BridgeConfiguration) throws(SystemError) {
        do {
            try configuration.checkUnixListeners()
        } catch {
            throw SystemError("configure", error.message, errno: EINVAL)
        }
    }

    /// The first descriptor systemd passes (SD_LISTEN_FDS_START).
    public static let systemdFirstFD: Int32 = 3

    /// Sockets passed by systemd: `count` descriptors from fd 3 on, as
    /// sd_listen_fds(3) reports them (the caller asks libsystemd, so that
    /// this module, which the guest helper links, needs no libsystemd).
    /// vsock ones serve every guest; a Unix one needs its CID from the
    /// configuration, by path.
    public static func fromSystemd(_ configuration: BridgeConfiguration, count: Int32) throws(SystemError) -> [Bridge.Listener] {
        guard count > 0 else { return [] }
        try check(configuration)
        var listeners: [Bridge.Listener] = []
        let configured = configuration.unixListenersByPath
        var passed: [String: Int32] = [:]
        for fd in systemdFirstFD..<(systemdFirstFD + count) {
            let (status, address) = SocketAddress.receiving({ getsockname(fd, $0, $1) }, succeeded: { $0 == 0 })
            guard status == 0 else { throw SystemError.current("getsockname", "systemd socket \(fd)") }
            if case .vsock(_, let port)? = address {
                listeners.append(.vsock(fd: fd, port: port))
                continue
            }
            if case .unix(let socketPath)? = address {
                // An abstract or unnamed socket has no path to look up.
                let path = socketPath.pathname ?? ""
                guard let unix = configured[BridgeConfiguration.pathKey(path)] else {
                    throw SystemError("configure", "systemd socket \(path): no --unix (or [vsock] unix =) \(path)=CID[:USER] names its VM", errno: EINVAL)
                }
                if let earlier = passed.updateValue(fd, forKey: BridgeConfiguration.pathKey(unix.path)) {
                    throw SystemError("configure", "systemd sockets \(earlier) and \(fd) are both \(path): one socket carries one VM", errno: EINVAL)
                }
                listeners.append(.unix(fd: fd, path: path, cid: unix.cid))
                continue
            }
            throw SystemError("configure", "systemd socket \(fd) is neither AF_VSOCK nor AF_UNIX", errno: EAFNOSUPPORT)
        }
        return listeners
    }

    /// Held around umask(2) changes (tests read the umask under it too).
    static let umaskLock = ThreadLock<Void>(())

    /// A listening Unix socket at `path`, mode 0600 from the start and
    /// owned by `owner` (the VMM's uid), so that only the VMM (and root)
    /// can connect. Changing the owner takes root; a bridge that is not
    /// root can only create sockets for its own uid.
    /// The address of the Unix socket at `path` (NUL-terminated in place).
    static func unixAddress(_ path: String) throws(SystemError) -> SocketAddress {
        guard let socketPath = UnixSocketPath(path: path) else {
            throw SystemError("bind", path, errno: ENAMETOOLONG)
        }
        return .unix(socketPath)
    }

    static func listenUnix(_ path: String, owner: UInt32) throws(SystemError) -> Int32 {
        let address = try unixAddress(path)
        let us = geteuid()
        guard us == 0 || owner == us else {
            throw SystemError("fchownat", "\(path) to the VMM's uid \(owner): the bridge runs as uid \(us), not root (start it as root, or as the VMM's user)", errno: EPERM)
        }
        let fd = try Socket.open(family: AF_UNIX, for: path)
        // A socket file left by an earlier run would make bind fail.
        var info = stat()
        if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        // bind(2) creates the file with 0777 less the umask: 0177 makes it
        // 0600 at once, with no moment where it is wider. The umask is the
        // process's: a file another thread creates meanwhile gets at most
        // 0600 too, never more; the lock keeps two of these from restoring
        // each other's 0177.
        let (bound, bindError) = umaskLock.withLock { _ in
            let before = umask(0o177)
            defer { umask(before) }
            let bound = address.bind(fd)
            return (bound, errno)
        }
        guard bound == 0 else {
            close(fd)
            throw SystemError("bind", path, errno: bindError)
        }
        func fail(_ call: String, _ subject: String, _ error: Int32) -> SystemError {
            close(fd)
            unlink(path)
            return SystemError(call, subject, errno: error)
        }
        // A default ACL on the directory replaces the umask.
        guard lstat(path, &info) == 0 else { throw fail("lstat", path, errno) }
        guard (info.st_mode & S_IFMT) == S_IFSOCK, info.st_mode & 0o077 == 0 else {
            throw fail("bind", "\(path): created with mode 0\(String(info.st_mode & 0o7777, radix: 8)), not 0600 (a default ACL on its directory?)", EPERM)
        }
        if owner != us {
            // Not following a symbolic link that replaced the socket.
            guard fchownat(AT_FDCWD, path, owner, gid_t.max, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw fail("fchownat", "\(path) to uid \(owner)", errno)
            }
        }
        guard Socket.listen(fd, backlog: 64) == 0 else { throw fail("listen", path, errno) }
        return fd
    }
}

/// A file's device and inode, to tell whether two paths are one file.
struct SocketFile: Hashable {
    var device: UInt64
    var inode: UInt64

    /// nil if nothing is at `path`.
    init?(path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
