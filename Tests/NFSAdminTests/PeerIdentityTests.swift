import Glibc
import Testing
@testable import NFSAdmin

@Suite("peer credentials")
struct PeerIdentityTests {
    @Test("SO_PEERCRED names the process at the other end of a Unix socket")
    func peerCredentials() throws {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let peer = try PeerCredentials(of: fds[0])
        #expect(peer == PeerCredentials(pid: getpid(), uid: geteuid(), gid: getegid()))
    }

    @Test("SO_PEERCRED on a descriptor that is no socket is an error naming the call")
    func notASocket() {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(throws: SystemError("getsockopt(SO_PEERCRED)", "fd \(fds[0])", errno: ENOTSOCK)) {
            try PeerCredentials(of: fds[0])
        }
    }
}
