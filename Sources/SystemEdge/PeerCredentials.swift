#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Who is at the other end of a connected AF_UNIX socket: the process
/// that called connect(2), as the kernel recorded it then (SO_PEERCRED),
/// so the peer cannot change it afterwards.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// The credentials of `fd`'s peer.
    public init(of fd: Int32) throws(SystemError) {
        var credentials = nfsvsock_ucred()
        var length = socklen_t(MemoryLayout<nfsvsock_ucred>.size)
        try SystemCall.check("getsockopt(SO_PEERCRED)", "fd \(fd)") {
            // SAFETY: credentials is a whole struct ucred, `length` bytes.
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length)
        }
        guard Int(length) == MemoryLayout<nfsvsock_ucred>.size else {
            throw SystemError("getsockopt(SO_PEERCRED)", "fd \(fd): \(length) bytes", errno: EPROTO)
        }
        self.init(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
    }

    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}
