#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin

/// Opens the bridge's listening sockets, or takes them from systemd socket
/// activation (`ListenStream=vsock::2049`, or a hybrid-vsock Unix path).
public enum BridgeListeners {
    public static func open(_ configuration: BridgeConfiguration) throws(SystemError) -> [Bridge.Listener] {
        var listeners: [Bridge.Listener] = []
        for port in configuration.vsockPorts {
            let fd = try VsockAddress(cid: VsockAddress.anyCID, port: port).listen()
            listeners.append(.vsock(fd: fd, port: port))
        }
        for unix in configuration.unixListeners {
            listeners.append(.unix(fd: try listenUnix(unix.path), path: unix.path, cid: unix.cid))
        }
        return listeners
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
        var listeners: [Bridge.Listener] = []
        for fd in systemdFirstFD..<(systemdFirstFD + count) {
            var storage = [UInt8](repeating: 0, count: 128)
            var length = socklen_t(storage.count)
            let status = storage.withUnsafeMutableBytes { raw in
                // SAFETY: raw is large enough for any address family used here.
                getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
            }
            guard status == 0 else { throw SystemError("getsockname", "systemd socket \(fd)", errno: errno) }
            if let address = VsockAddress(bytes: Array(storage.prefix(Int(length)))) {
                listeners.append(.vsock(fd: fd, port: address.port))
                continue
            }
            let family = Int32(UInt16(storage[0]) | UInt16(storage[1]) << 8)
            if family == AF_UNIX {
                let path = String(decoding: storage[2..<Int(length)].prefix { $0 != 0 }, as: UTF8.self)
                guard let unix = configuration.unixListeners.first(where: { $0.path == path }) else {
                    throw SystemError("configure", "systemd socket \(path): no --unix \(path)=CID names its VM", errno: EINVAL)
                }
                listeners.append(.unix(fd: fd, path: path, cid: unix.cid))
                continue
            }
            throw SystemError("configure", "systemd socket \(fd) is neither AF_VSOCK nor AF_UNIX", errno: EAFNOSUPPORT)
        }
        return listeners
    }

    static func listenUnix(_ path: String) throws(SystemError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SystemError("bind", path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket(AF_UNIX)", path, errno: errno) }
        // A socket file left by an earlier run would make bind fail.
        var info = stat()
        if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                // SAFETY: a complete sockaddr_un.
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if bound != 0 || listen(fd, 64) != 0 {
            let error = errno
            close(fd)
            throw SystemError(bound != 0 ? "bind" : "listen", path, errno: error)
        }
        return fd
    }
}
