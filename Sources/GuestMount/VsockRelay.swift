#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import NFSExports
import Synchronization
import VsockBridge

/// The guest side of NFS over vsock for stock kernels: a relay listening on
/// guest loopback TCP that forwards each connection to the host's vsock
/// port. It lives as long as the mount that uses it.
public final class VsockRelay: Sendable {
    public let cid: UInt32
    public let port: UInt32
    private let active = Mutex(0)

    public init(cid: UInt32, port: UInt32) {
        self.cid = cid
        self.port = port
    }

    /// Connects to the host, from a privileged vsock port when asked (the
    /// NFS client used one), so the host's `secure` check sees the truth.
    public func connectHost(privileged: Bool) throws(SystemError) -> Int32 {
        let target = VsockAddress(cid: cid, port: port)
        let candidates: [UInt32] = privileged ? Array((512...1023).reversed()) : []
        for local in candidates + [VsockAddress.anyPort] {
            let fd = socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemError("socket(AF_VSOCK)", target.description, errno: errno) }
            SocketTuning.enlargeVsockBuffer(fd)
            if local != VsockAddress.anyPort {
                let bound = VsockAddress(cid: VsockAddress.anyCID, port: local).withSockaddr { bind(fd, $0, $1) }
                if bound != 0 {
                    let error = errno
                    close(fd)
                    if error == EADDRINUSE { continue }
                    // No privilege to bind (EACCES): fall back to an
                    // unprivileged port; the host decides what that means.
                    break
                }
            }
            let connected = target.withSockaddr { Glibc.connect(fd, $0, $1) }
            if connected == 0 { return fd }
            let error = errno
            close(fd)
            if error == EADDRINUSE { continue }
            throw SystemError("connect", target.description, errno: error)
        }
        let fd = socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket(AF_VSOCK)", target.description, errno: errno) }
        SocketTuning.enlargeVsockBuffer(fd)
        if target.withSockaddr({ Glibc.connect(fd, $0, $1) }) != 0 {
            let error = errno
            close(fd)
            throw SystemError("connect", target.description, errno: error)
        }
        return fd
    }

    /// Serves `listener` until the mount of `directory` through
    /// `relayPort` is gone and no connection is open.
    public func serve(listener: Int32, directory: String, relayPort: UInt16) {
        DetachedThread.start { [self] in acceptLoop(listener) }
        let watch = MountWatch(directory: directory, port: relayPort)
        var seen = false
        var waited = 0
        while true {
            let mounted = watch.isMounted()
            if mounted { seen = true }
            let open = active.withLock { $0 }
            if seen && !mounted && open == 0 { return }
            // Never mounted within two minutes: the mount failed elsewhere.
            if !seen && waited >= 120 && open == 0 { return }
            watch.waitForChange(timeoutSeconds: 1)
            waited += 1
        }
    }

    private func acceptLoop(_ listener: Int32) {
        while true {
            var peer = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let connection = withUnsafeMutablePointer(to: &peer) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &length) }
            }
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                sleep(1)
                continue
            }
            let privileged = UInt16(bigEndian: peer.sin_port) < 1024
            SocketTuning.noDelay(connection)
            active.withLock { $0 += 1 }
            DetachedThread.start { [self] in
                defer {
                    close(connection)
                    active.withLock { $0 -= 1 }
                }
                guard let host = try? connectHost(privileged: privileged) else { return }
                defer { close(host) }
                _ = Forwarder(bufferSize: 256 * 1024, idleTimeout: 0, halfOpenTimeout: 30).run(connection, host)
            }
        }
    }
}

/// Whether the relay's mount is still there: /proc/self/mounts lists the
/// directory with an NFS mount through the relay's port.
struct MountWatch {
    let directory: String
    let port: UInt16

    func isMounted() -> Bool {
        guard let bytes = try? FileSystem.readIfExists("/proc/self/mounts") else { return false }
        // /proc/self/mounts escapes the same bytes as the cache channels.
        let escaped = CacheText.word(directory)
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4, fields[1] == escaped, fields[2].hasPrefix("nfs") else { continue }
            if fields[3].split(separator: ",").contains("port=\(port)") { return true }
        }
        return false
    }

    /// Waits until the mount table changes (POLLPRI on /proc/self/mounts)
    /// or the timeout passes.
    func waitForChange(timeoutSeconds: Int32) {
        let fd = open("/proc/self/mounts", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { sleep(UInt32(timeoutSeconds)); return }
        defer { close(fd) }
        var pfd = pollfd(fd: fd, events: Int16(POLLPRI | POLLERR), revents: 0)
        _ = poll(&pfd, 1, timeoutSeconds * 1000)
    }
}

