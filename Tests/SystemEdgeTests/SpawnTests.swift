#if canImport(Glibc)
import Glibc
#endif
import SystemEdge
import Testing

private func exitStatus(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return (status >> 8) & 0xff
}

@Suite struct SpawnTests {
    @Test func runsAProgramWithItsArguments() throws {
        #expect(exitStatus(try SystemCall.spawn(["/bin/sh", "-c", "exit 3"])) == 3)
    }

    @Test func searchesPathOnlyWhenAsked() throws {
        #expect(exitStatus(try SystemCall.spawn(["sh", "-c", "exit 4"], searchPath: true)) == 4)
        #expect(throws: SystemError("spawn", "no-such-program-here", errno: ENOENT)) {
            try SystemCall.spawn(["no-such-program-here"])
        }
    }

    @Test func givesTheChildItsEnvironmentActionsAndSession() throws {
        var template = Array("/tmp/spawn-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let directory = String(cString: try #require(made))
        defer { unlink(directory + "/out"); rmdir(directory) }
        let pid = try SystemCall.spawn(
            ["/bin/sh", "-c", "echo \"$GREETING\"; echo err >&2; [ \"$(cut -d' ' -f6 /proc/$$/stat)\" = $$ ] && echo leader"],
            environment: ["GREETING=hello", "PATH=/usr/bin:/bin"],
            actions: [.open(fd: 0, path: "/dev/null", flags: O_RDONLY, mode: 0),
                      .open(fd: 1, path: directory + "/out", flags: O_WRONLY | O_CREAT | O_APPEND, mode: 0o600),
                      .duplicate(1, to: 2)],
            newSession: true)
        #expect(exitStatus(pid) == 0)
        let fd = open(directory + "/out", O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = read(fd, &buffer, buffer.count)
        #expect(String(decoding: buffer[0..<max(count, 0)], as: UTF8.self) == "hello\nerr\nleader\n")
    }
}
