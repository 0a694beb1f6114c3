#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor, in swift-system's shape (`FileDescriptor(rawValue:)`,
/// `open`, `read(into:)`, `writeAll`, `close`), with the project's
/// SystemError, which names the call and what it was called on, where
/// swift-system's Errno has only the number. Opening always adds
/// O_CLOEXEC: no descriptor of the tools leaks into what they spawn.
/// A value, not an owner: whoever opened it closes it (`closeAfter`).
public struct FileDescriptor: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// open(2) of `path` with `flags` | O_CLOEXEC; `call` names the call
    /// in the error ("open(O_CREAT|O_EXCL|O_NOFOLLOW)").
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0, call: String = "open") throws(SystemError) -> FileDescriptor {
        FileDescriptor(rawValue: try SystemCall.check(call, path) { Glibc.open(path, flags | O_CLOEXEC, mode) })
    }

    /// close(2), once; not retried on EINTR (Linux has closed it by then).
    public func close() { _ = Glibc.close(rawValue) }

    /// Runs `body`, then closes the descriptor, whether `body` threw or not.
    public func closeAfter<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        defer { close() }
        return try body()
    }

    /// One read(2), EINTR retried: how many bytes it read, 0 at the end.
    public func read(into buffer: UnsafeMutableRawBufferPointer, for subject: String) throws(SystemError) -> Int {
        try SystemCall.check("read", subject) { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
    }

    /// One read(2) into the whole of `buffer`.
    public func read(into buffer: inout [UInt8], for subject: String) throws(SystemError) -> Int {
        try buffer.withUnsafeMutableBytes { raw in Result { () throws(SystemError) in try read(into: raw, for: subject) } }.get()
    }

    /// Everything up to the end.
    public func readAll(for subject: String) throws(SystemError) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try read(into: &buffer, for: subject)
            if count == 0 { return result }
            result.append(contentsOf: buffer[0..<count])
        }
    }

    /// One write(2), EINTR retried: how many bytes it took.
    public func write(_ bytes: UnsafeRawBufferPointer, for subject: String) throws(SystemError) -> Int {
        try SystemCall.check("write", subject) { Glibc.write(rawValue, bytes.baseAddress, bytes.count) }
    }

    /// Writes all of `bytes`, in as many write(2)s as it takes.
    public func writeAll(_ bytes: [UInt8], for subject: String) throws(SystemError) {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(SystemError) in
                var offset = 0
                while offset < raw.count {
                    offset += try write(UnsafeRawBufferPointer(rebasing: raw[offset...]), for: subject)
                }
            }
        }.get()
    }

    /// Writes `bytes` in one write(2), as the kernel's cache channels and
    /// /proc files require (they read a message per write); a short write
    /// is EIO.
    public func writeMessage(_ bytes: [UInt8], for subject: String) throws(SystemError) {
        let written = try bytes.withUnsafeBytes { raw in Result { () throws(SystemError) in try write(raw, for: subject) } }.get()
        if written != bytes.count { throw SystemError("write", subject, errno: EIO) }
    }
}
