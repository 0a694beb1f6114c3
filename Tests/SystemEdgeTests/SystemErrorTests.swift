#if canImport(Glibc)
import Glibc
#endif
import SystemEdge
import Testing

@Suite struct SystemErrorTests {
    @Test func describesAnErrnoAsStrerrorDoes() {
        #expect(SystemError.describe(EACCES) == "Permission denied")
        #expect(SystemError("open", "/x", errno: ENOENT).description == "open /x: No such file or directory")
    }

    @Test func currentTakesTheErrnoAFailedCallLeft() {
        #expect(close(-1) == -1)
        #expect(SystemError.current("close", "fd -1") == SystemError("close", "fd -1", errno: EBADF))
    }

    @Test func checkReturnsTheResultOrThrowsTheErrno() throws {
        #expect(try SystemCall.check("getpid", "") { getpid() } == getpid())
        #expect(throws: SystemError("close", "fd -1", errno: EBADF)) { try SystemCall.check("close", "fd -1") { close(-1) } }
    }
}
