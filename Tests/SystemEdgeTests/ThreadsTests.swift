#if canImport(Glibc)
import Glibc
#endif
import SystemEdge
import Testing

@Suite("PosixThread: the one place threads are created")
struct ThreadsTests {
    /// Runs `start` with a closure that writes `byte` into a pipe, and
    /// returns what the pipe then holds (read blocks until the thread ran).
    private func ranBody(writing byte: UInt8, _ start: (@escaping @Sendable () -> Void) throws -> Void) throws -> UInt8 {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        let (readFD, writeFD) = (fds[0], fds[1])
        defer { close(readFD); close(writeFD) }
        try start {
            var value = byte
            _ = write(writeFD, &value, 1)
        }
        var read: UInt8 = 0
        #expect(Glibc.read(readFD, &read, 1) == 1)
        return read
    }

    @Test("a joinable thread runs its body before join returns")
    func joinable() throws {
        let byte = try ranBody(writing: 7) { body in
            let thread = try PosixThread.start(detached: false, body).get()
            #expect(pthread_join(thread, nil) == 0)
        }
        #expect(byte == 7)
    }

    @Test("a detached thread runs its body")
    func detached() throws {
        var started = false
        let byte = try ranBody(writing: 9) { body in started = DetachedThread.start(body) }
        #expect(started && byte == 9)
    }
}
