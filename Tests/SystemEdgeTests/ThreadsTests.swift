#if canImport(Glibc)
import Glibc
#endif
import SystemEdge
import Testing

@Suite("PosixThread: the one place threads are created")
struct ThreadsTests {
    @Test("a joinable thread runs its body before join returns")
    func joinable() throws {
        let pipeFDs = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { pipeFDs.deallocate() }
        #expect(pipe(pipeFDs) == 0)
        let (readFD, writeFD) = (pipeFDs[0], pipeFDs[1])
        defer { close(readFD); close(writeFD) }
        let thread = try PosixThread.start(detached: false) {
            var byte: UInt8 = 7
            _ = write(writeFD, &byte, 1)
        }.get()
        #expect(pthread_join(thread, nil) == 0)
        var byte: UInt8 = 0
        #expect(read(readFD, &byte, 1) == 1 && byte == 7)
    }

    @Test("a detached thread runs its body")
    func detached() throws {
        let pipeFDs = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { pipeFDs.deallocate() }
        #expect(pipe(pipeFDs) == 0)
        let (readFD, writeFD) = (pipeFDs[0], pipeFDs[1])
        defer { close(readFD); close(writeFD) }
        #expect(DetachedThread.start {
            var byte: UInt8 = 9
            _ = write(writeFD, &byte, 1)
        })
        var byte: UInt8 = 0
        #expect(read(readFD, &byte, 1) == 1 && byte == 9)
    }
}
