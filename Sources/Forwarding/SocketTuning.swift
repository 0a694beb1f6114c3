#if canImport(Glibc)
import Glibc
#endif
import CLinux
import SystemEdge

/// Socket options both ends of the vsock hop set, bridge and guest relay.
public enum SocketTuning {
    /// The receive window a vsock socket announces to its peer (the
    /// kernel's default is 256 KiB). An NFS READ or WRITE of rsize/wsize
    /// 256 KiB or 1 MiB is bigger than that, so the sender stalls mid-RPC
    /// until the reader has returned credit; 2 MiB lets a whole RPC and the
    /// next one's start travel at once. Memory is used only for bytes
    /// actually queued, and the forwarders stop reading when their own
    /// bounded buffers are full, so this does not defeat backpressure.
    public static let vsockBufferSize: UInt64 = 2 * 1024 * 1024

    /// Raises a vsock socket's buffer (the maximum first: the kernel clamps
    /// the size to it). For a listener, accepted sockets inherit it.
    /// Best effort: a transport that refuses keeps its default.
    public static func enlargeVsockBuffer(_ fd: Int32, to size: UInt64 = vsockBufferSize) {
        for option in [SO_VM_SOCKETS_BUFFER_MAX_SIZE, SO_VM_SOCKETS_BUFFER_SIZE] {
            Socket.setOption(fd, AF_VSOCK, Int32(option), size)
        }
    }

    /// Sends small segments at once: an NFS reply (or request) that
    /// reaches the forwarder in pieces must not wait for the peer's
    /// delayed ACK (Nagle) before its last piece goes out.
    public static func noDelay(_ fd: Int32) {
        Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, Int32(1))
    }
}
