#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin
import SystemEdge

/// One /proc/net/rpc/<cache>/channel: one request per read, one reply per
/// write. Reopened when it goes away (module unloaded, server restarted).
///
/// A channel of another network namespace (the vsock bridge's) is opened
/// from inside it: the same path names the calling thread's namespace's
/// cache, so it is never reopened from outside.
final class CacheChannel: @unchecked Sendable {
    let cache: String
    let path: String
    /// The pinned network namespace the channel belongs to; nil: mountd's own.
    let namespace: String?
    /// The descriptor, behind a lock: lookup workers write replies while
    /// the poll thread may close and reopen the channel, and a reply must
    /// never land in a descriptor number that was reused meanwhile. A
    /// ThreadLock: the race test runs under ThreadSanitizer.
    private let descriptor = ThreadLock<Int32>(-1)
    /// Read only by the poll thread.
    private var buffer = [UInt8](repeating: 0, count: 32768)
    /// write(2); a test passes a slower one to widen the time between
    /// taking the descriptor and writing to it.
    private let writeReply: @Sendable (Int32, UnsafeRawBufferPointer) -> Int

    init(cache: String, paths: SystemPaths, namespace: String? = nil,
         write: @escaping @Sendable (Int32, UnsafeRawBufferPointer) -> Int = { fd, raw in Glibc.write(fd, raw.baseAddress, raw.count) }) {
        self.cache = cache
        self.path = paths.cacheChannel(cache)
        self.namespace = namespace
        writeReply = write
    }

    var fd: Int32 { descriptor.withLock { $0 } }
    var isOpen: Bool { fd >= 0 }
    /// How the log names it.
    var name: String { namespace.map { "\(path) (network namespace \($0))" } ?? path }

    /// Opens the channel; returns the errno on failure.
    @discardableResult
    func open() -> Int32? {
        descriptor.withLock { fd -> Int32? in
            if fd >= 0 { return nil }
            let path = self.path
            func openChannel() throws(SystemError) -> FileDescriptor { try FileDescriptor.open(path, O_RDWR | O_NONBLOCK) }
            do throws(SystemError) {
                let opened = if let namespace { try NetworkNamespace.withEntered(namespace, openChannel) } else { try openChannel() }
                fd = opened.rawValue
                return nil
            } catch {
                return error.errno
            }
        }
    }

    func close() {
        descriptor.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    enum ReadResult {
        case request(String)
        case nothing
        case failed(Int32)
    }

    func read() -> ReadResult {
        let fd = self.fd
        guard fd >= 0 else { return .failed(EBADF) }
        let count: Int
        do {
            count = try FileDescriptor(rawValue: fd).read(into: &buffer, for: path)
        } catch {
            return error.errno == EAGAIN ? .nothing : .failed(error.errno)
        }
        if count == 0 { return .nothing }
        var end = count
        while end > 0 && (buffer[end - 1] == 0x0A || buffer[end - 1] == 0) { end -= 1 }
        return .request(String(decoding: buffer[0..<end], as: UTF8.self))
    }

    /// Writes one reply in one write(2); returns the errno on failure.
    @discardableResult
    func reply(_ text: String) -> Int32? {
        let bytes = Array(text.utf8)
        return descriptor.withLock { fd -> Int32? in
            guard fd >= 0 else { return EBADF }
            // SAFETY: raw covers the whole reply, valid for the call.
            let written = bytes.withUnsafeBytes { raw in writeReply(fd, raw) }
            if written < 0 { return errno }
            return written == bytes.count ? nil : EIO
        }
    }
}
