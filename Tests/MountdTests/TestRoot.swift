import Glibc
import NFSAdmin
import NFSExports
import Testing
import TestSupport

/// A fresh directory that stands for "/" (SystemPaths' movable root), with
/// FIFOs where the kernel's cache channels would be: a channel opened
/// O_RDWR on a FIFO takes one write(2) per reply as the kernel does, and
/// the test reads what arrived through a reader descriptor of its own.
final class TestRoot {
    let path: String
    let paths: SystemPaths
    private var readers: [String: Int32] = [:]
    private let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory(prefix: "mountd-tests")
        path = directory.path
        paths = directory.paths
    }

    deinit { readers.values.forEach { _ = close($0) } }

    /// The file's text, nil if it is not there.
    func text(_ relative: String) throws -> String? {
        try FileSystem.readIfExists(path + relative).map { String(decoding: $0, as: UTF8.self) }
    }

    func makeDirectory(_ relative: String) throws {
        try FileSystem.makeDirectories(path + relative, mode: 0o755)
    }

    func write(_ relative: String, _ text: String) throws {
        try makeDirectory(PathName.directory(of: relative))
        try FileSystem.replaceIfChanged(path + relative, with: Array(text.utf8))
    }

    /// A FIFO at the cache's channel path, and a reader for it.
    @discardableResult
    func channelFIFO(_ cache: String) throws -> Int32 {
        let channel = paths.cacheChannel(cache)
        try FileSystem.makeDirectories(PathName.directory(of: channel), mode: 0o755)
        guard mkfifo(channel, 0o600) == 0 else { throw SystemError("mkfifo", channel, errno: errno) }
        let reader = open(channel, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard reader >= 0 else { throw SystemError("open", channel, errno: errno) }
        readers[cache] = reader
        return reader
    }

    /// What has arrived in the cache's FIFO so far.
    func drain(_ cache: String) -> [UInt8] {
        guard let fd = readers[cache] else { return [] }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { raw in
                // SAFETY: raw is the whole buffer, valid for the call.
                read(fd, raw.baseAddress, raw.count)
            }
            if count <= 0 { return out }
            out += buffer[0..<count]
        }
    }

    /// The replies that arrived, waiting up to `seconds` for `count` lines.
    func replies(_ cache: String, count: Int = 1, seconds: Double = 10) -> [String] {
        var text = ""
        let deadline = monotonicSeconds() + seconds
        while true {
            text += String(decoding: drain(cache), as: UTF8.self)
            let lines = text.split(separator: "\n").map(String.init)
            if lines.count >= count || monotonicSeconds() > deadline { return lines }
            usleep(5_000)
        }
    }
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
