#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address as the kernel and libtirpc take it.
struct SocketAddress: @unchecked Sendable {
    // @unchecked: sockaddr_storage is a plain C value (no pointers).
    private(set) var storage = sockaddr_storage()
    private(set) var length: socklen_t = 0

    var family: Int32 { Int32(storage.ss_family) }

    /// A numeric IPv4 or IPv6 address ("127.0.0.1", "::1"); nil otherwise.
    init?(numeric host: String, port: UInt16) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = v4
            self.init(copying: sin)
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_addr = v6
            self.init(copying: sin6)
        } else {
            return nil
        }
    }

    /// The wildcard address of a family (0.0.0.0 or ::).
    static func any(family: Int32, port: UInt16) -> SocketAddress {
        if family == AF_INET6 {
            var sin6 = sockaddr_in6() // zeroed: in6addr_any
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            return SocketAddress(copying: sin6)
        }
        var sin = sockaddr_in() // zeroed: INADDR_ANY
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        return SocketAddress(copying: sin)
    }

    /// Copies a sockaddr of `length` bytes (an accepted peer, getsockname, xp_rtaddr).
    init?(_ address: UnsafeRawPointer, length: Int) {
        guard length >= MemoryLayout<sa_family_t>.size, length <= MemoryLayout<sockaddr_storage>.size else { return nil }
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length)) }
        self.length = socklen_t(length)
        guard family == AF_INET || family == AF_INET6 else { return nil }
    }

    private init<T>(copying address: T) {
        withUnsafeBytes(of: address) { source in
            withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) }
        }
        length = socklen_t(MemoryLayout<T>.size)
    }

    /// The bound address of a socket.
    static func local(of fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        return withUnsafeBytes(of: storage) { bytes -> SocketAddress? in
            guard let base = bytes.baseAddress else { return nil }
            return SocketAddress(base, length: Int(length))
        }
    }

    var port: UInt16 {
        withUnsafeBytes(of: storage) { bytes in
            family == AF_INET6
                ? UInt16(bigEndian: bytes.load(as: sockaddr_in6.self).sin6_port)
                : UInt16(bigEndian: bytes.load(as: sockaddr_in.self).sin_port)
        }
    }

    /// Numeric text of the host; IPv4-mapped IPv6 addresses come out as IPv4.
    var host: String {
        withUnsafeBytes(of: storage) { bytes -> String in
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            if family == AF_INET6 {
                var v6 = bytes.load(as: sockaddr_in6.self).sin6_addr
                let raw = withUnsafeBytes(of: v6) { Array($0) }
                if raw[0..<10].allSatisfy({ $0 == 0 }) && raw[10] == 0xff && raw[11] == 0xff {
                    return raw[12...].map(String.init).joined(separator: ".")
                }
                _ = inet_ntop(AF_INET6, &v6, &text, socklen_t(text.count))
            } else {
                var v4 = bytes.load(as: sockaddr_in.self).sin_addr
                _ = inet_ntop(AF_INET, &v4, &text, socklen_t(text.count))
            }
            return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// "127.0.0.1:20048" or "[::]:20048", for messages.
    var description: String { family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Runs `body` with a sockaddr pointer valid only inside it.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        try withUnsafePointer(to: storage) { pointer in
            // SAFETY: sockaddr_storage is laid out to be read as any sockaddr.
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }

    /// Same, writable (libtirpc's netbuf takes a mutable pointer).
    mutating func withMutableSockaddr<R>(_ body: (UnsafeMutablePointer<sockaddr>) throws -> R) rethrows -> R {
        try withUnsafeMutablePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0) }
        }
    }
}
