import Glibc
import NFSAdmin

/// A fresh directory under /tmp, removed with all it holds when the value
/// goes away. As a root it stands for "/" (SystemPaths' movable root).
public final class TemporaryDirectory {
    public let path: String
    public var paths: SystemPaths { SystemPaths(root: path) }

    public init(prefix: String) throws(SystemError) {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in
            // SAFETY: buffer is the NUL-terminated template, writable, for the call.
            mkdtemp(buffer.baseAddress!)
        }
        guard let made else { throw SystemError("mkdtemp", "/tmp", errno: errno) }
        path = String(cString: made)
    }

    deinit { _ = system("rm -rf '\(path)'") }
}

/// 127.0.0.1:`port` (0: any).
public func loopbackAddress(port: UInt16 = 0) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    address.sin_port = port.bigEndian
    return address
}

/// A TCP listener on 127.0.0.1 with an ephemeral port.
public func tcpListener() -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = loopbackAddress()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            // SAFETY: $0 is the sockaddr_in above, for the three calls.
            _ = bind(fd, $0, length)
            _ = listen(fd, 16)
            _ = getsockname(fd, $0, &length)
        }
    }
    return (fd, UInt16(bigEndian: address.sin_port))
}

/// Calls `body` with `address` as a sockaddr and its length.
public func withSockaddr<T>(_ address: sockaddr_in, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    var address = address
    return withUnsafePointer(to: &address) { pointer in
        // SAFETY: a complete sockaddr_in, for the call.
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// The address a socket is bound to (getsockname).
public func localAddress(_ fd: Int32) -> sockaddr_in {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return address
}
