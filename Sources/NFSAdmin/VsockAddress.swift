#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// struct sockaddr_vm, built byte by byte so that every field, svm_flags
/// and the padding included, is exactly what the kernel expects:
/// family u16, reserved u16, port u32, cid u32, flags u8, zero[3].
public struct VsockAddress: Sendable, Hashable, CustomStringConvertible {
    public static let anyCID: UInt32 = 0xFFFF_FFFF
    public static let anyPort: UInt32 = 0xFFFF_FFFF
    public static let size = 16

    public var cid: UInt32
    public var port: UInt32

    public init(cid: UInt32, port: UInt32) {
        self.cid = cid
        self.port = port
    }

    public var description: String { "vsock:\(cid == Self.anyCID ? "*" : String(cid)):\(port)" }

    /// The 16 bytes of the sockaddr_vm, native byte order.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        withUnsafeBytes(of: UInt16(AF_VSOCK)) { out.replaceSubrange(0..<2, with: $0) }
        withUnsafeBytes(of: port) { out.replaceSubrange(4..<8, with: $0) }
        withUnsafeBytes(of: cid) { out.replaceSubrange(8..<12, with: $0) }
        return out
    }

    /// Reads a sockaddr_vm; nil if it is not AF_VSOCK.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= 12 else { return nil }
        let family = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        guard family == UInt16(AF_VSOCK) else { return nil }
        func u32(_ offset: Int) -> UInt32 {
            bytes[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        self.init(cid: u32(8), port: u32(4))
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    public func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        let raw = bytes
        return raw.withUnsafeBytes { buffer in
            // SAFETY: the buffer holds a complete 16-byte sockaddr_vm; the
            // kernel reads it by length only, so alignment of the family is enough.
            body(buffer.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(Self.size))
        }
    }
}

extension VsockAddress {
    /// An AF_VSOCK stream socket bound to this address and listening.
    public func listen(backlog: Int32 = 64) throws(SystemError) -> Int32 {
        let fd = socket(AF_VSOCK, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket(AF_VSOCK)", description, errno: errno) }
        let bound = withSockaddr { address, length in bind(fd, address, length) }
        if bound != 0 || Glibc.listen(fd, backlog) != 0 {
            let error = errno
            close(fd)
            throw SystemError(bound != 0 ? "bind" : "listen", description, errno: error)
        }
        return fd
    }
}
