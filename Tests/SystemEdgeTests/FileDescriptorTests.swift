#if canImport(Glibc)
import Glibc
#endif
import SystemEdge
import Testing

@Suite("FileDescriptor: open, read, write, close")
struct FileDescriptorTests {
    /// A pipe's two ends.
    private func pipeEnds() throws -> (read: FileDescriptor, write: FileDescriptor) {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        return (FileDescriptor(rawValue: ends[0]), FileDescriptor(rawValue: ends[1]))
    }

    private func temporaryPath() -> String {
        "/tmp/fd-test.\(getpid()).\(UInt64.random(in: .min ... .max))"
    }

    @Test("writeAll then readAll carry more than a pipe holds, in many calls, byte for byte")
    func roundTrip() throws {
        let (reader, writer) = try pipeEnds()
        defer { reader.close() }
        // 300 KiB: more than the 64 KiB pipe and the 64 KiB read buffer.
        let bytes = (0..<(300 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        let done = PosixThread.start(detached: false) {
            try? writer.writeAll(bytes, for: "pipe")
            writer.close()
        }
        let thread = try done.get()
        let read = try reader.readAll(for: "pipe")
        pthread_join(thread, nil)
        #expect(read == bytes)
    }

    @Test("open adds O_CLOEXEC and fails naming the call and the path")
    func open() throws {
        let path = temporaryPath()
        let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600, call: "open(O_CREAT|O_EXCL)")
        defer { unlink(path) }
        #expect(fcntl(fd.rawValue, F_GETFD) & FD_CLOEXEC != 0)
        try fd.closeAfter { () throws(SystemError) in try fd.writeMessage(Array("one message\n".utf8), for: path) }
        let again = #expect(throws: SystemError.self) {
            try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600, call: "open(O_CREAT|O_EXCL)")
        }
        #expect(again == SystemError("open(O_CREAT|O_EXCL)", path, errno: EEXIST))
        let reader = try FileDescriptor.open(path, O_RDONLY)
        let content = try reader.closeAfter { () throws(SystemError) in try reader.readAll(for: path) }
        #expect(String(decoding: content, as: UTF8.self) == "one message\n")
    }

    @Test("a failed write is thrown naming the call and the subject")
    func writeFails() throws {
        let readOnly = try FileDescriptor.open("/dev/null", O_RDONLY)
        let error = #expect(throws: SystemError.self) {
            try readOnly.closeAfter { () throws(SystemError) in try readOnly.writeAll([1, 2, 3], for: "/dev/null") }
        }
        #expect(error == SystemError("write", "/dev/null", errno: EBADF))
    }
}
