#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin

/// One /proc/net/rpc/<cache>/channel: one request per read, one reply per
/// write. Reopened when it goes away (module unloaded, server restarted).
final class CacheChannel: @unchecked Sendable {
    let cache: String
    let path: String
    /// Written only by the poll thread; replies from lookup workers read it.
    private(set) var fd: Int32 = -1
    private var buffer = [UInt8](repeating: 0, count: 32768)

    init(cache: String, paths: SystemPaths) {
        self.cache = cache
        self.path = paths.cacheChannel(cache)
    }

    var isOpen: Bool { fd >= 0 }

    /// Opens the channel; returns the errno on failure.
    @discardableResult
    func open() -> Int32? {
        if fd >= 0 { return nil }
        let opened = Glibc.open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        if opened < 0 { return errno }
        fd = opened
        return nil
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    enum ReadResult {
        case request(String)
        case nothing
        case failed(Int32)
    }

    func read() -> ReadResult {
        guard fd >= 0 else { return .failed(EBADF) }
        let count = buffer.withUnsafeMutableBytes { raw in
            // SAFETY: raw is the whole 32 KiB buffer, valid for the call.
            Glibc.read(fd, raw.baseAddress, raw.count)
        }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return .nothing }
            return .failed(errno)
        }
        if count == 0 { return .nothing }
        var end = count
        while end > 0 && (buffer[end - 1] == 0x0A || buffer[end - 1] == 0) { end -= 1 }
        return .request(String(decoding: buffer[0..<end], as: UTF8.self))
    }

    /// Writes one reply in one write(2); returns the errno on failure.
    @discardableResult
    func reply(_ text: String) -> Int32? {
        let descriptor = fd
        guard descriptor >= 0 else { return EBADF }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { raw in
            // SAFETY: raw covers the whole reply.
            Glibc.write(descriptor, raw.baseAddress, raw.count)
        }
        if written < 0 { return errno }
        return written == bytes.count ? nil : EIO
    }
}
