import Glibc
import NFSAdmin
import SystemEdge

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
public func loopbackAddress(port: UInt16 = 0) -> SocketAddress { .inet(address: 0x7F00_0001, port: port) }

/// A TCP listener on 127.0.0.1 with an ephemeral port.
public func tcpListener() -> (fd: Int32, port: UInt16) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    _ = loopbackAddress().withSockaddr { bind(fd, $0, $1) }
    _ = listen(fd, 16)
    return (fd, localPort(fd))
}

/// The port a TCP or UDP socket is bound to (getsockname); 0 if none.
public func localPort(_ fd: Int32) -> UInt16 { SocketAddress.local(of: fd)?.ipPort ?? 0 }
