#if canImport(Glibc)
import Glibc
#endif
// struct sockaddr_vm and AF_VSOCK (linux/vm_sockets.h).
import CLinux

/// A socket address of the four families the tools use, and the one place
/// a `sockaddr` is written or read: `withSockaddr` on the way out (bind,
/// connect, sendto, libtirpc's netbuf), `init?(bytes:)` on the way in
/// (accept, getsockname, getpeername, recvfrom, getaddrinfo, xp_rtaddr).
///
/// Addresses and ports are held in host byte order.
public enum SocketAddress: Sendable, Hashable {
    /// AF_INET: the address as a 32-bit number (127.0.0.1 is 0x7F00_0001).
    case inet(address: UInt32, port: UInt16)
    /// AF_INET6: the address's 128 bits in two halves, network order
    /// (::1 is high 0, low 1). The flow label is always sent as 0.
    case inet6(high: UInt64, low: UInt64, port: UInt16, scopeID: UInt32)
    /// AF_VSOCK. Every other byte of the sockaddr_vm (svm_reserved1,
    /// svm_flags, svm_zero) is sent as 0: kernels since 5.11 reject
    /// unknown svm_flags bits.
    case vsock(cid: UInt32, port: UInt32)
    /// AF_UNIX: a path, an abstract name, or unnamed.
    case unix(UnixSocketPath)

    /// VMADDR_CID_ANY and VMADDR_PORT_ANY.
    public static let anyCID: UInt32 = 0xFFFF_FFFF
    public static let anyVsockPort: UInt32 = 0xFFFF_FFFF

    /// The wildcard IPv4 (0.0.0.0) or IPv6 (::) address.
    public static func anyInet(port: UInt16) -> SocketAddress { .inet(address: 0, port: port) }
    public static func anyInet6(port: UInt16) -> SocketAddress { .inet6(high: 0, low: 0, port: port, scopeID: 0) }

    /// AF_INET, AF_INET6, AF_VSOCK or AF_UNIX, for socket(2).
    public var family: Int32 {
        switch self {
        case .inet: AF_INET
        case .inet6: AF_INET6
        case .vsock: AF_VSOCK
        case .unix: AF_UNIX
        }
    }

    /// The port of an IPv4 or IPv6 address; nil for the others.
    public var ipPort: UInt16? {
        switch self {
        case .inet(_, let port), .inet6(_, _, let port, _): port
        case .vsock, .unix: nil
        }
    }

    /// Whether the address is ::ffff:a.b.c.d.
    public var isIPv4Mapped: Bool {
        if case .inet6(let high, let low, _, _) = self { return high == 0 && low >> 32 == 0xFFFF }
        return false
    }

    /// The length of the sockaddr `withSockaddr` passes.
    public var length: socklen_t {
        switch self {
        case .inet: socklen_t(MemoryLayout<sockaddr_in>.size)
        case .inet6: socklen_t(MemoryLayout<sockaddr_in6>.size)
        case .vsock: socklen_t(MemoryLayout<sockaddr_vm>.size)
        case .unix(let path): path.sockaddrLength
        }
    }
}

// MARK: - The way out

extension SocketAddress {
    /// Calls `body` with the address as a `sockaddr` and its length, valid
    /// only inside `body`. The bytes live in a local, writable
    /// sockaddr_storage zeroed first, so a C interface that takes a
    /// non-const pointer without writing through it (libtirpc's netbuf)
    /// may be given `UnsafeMutableRawPointer(mutating:)` of it.
    public func withSockaddr<R, E: Error>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(E) -> R) throws(E) -> R {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            // SAFETY: sockaddr_storage is large enough for, and aligned for,
            // every sockaddr below; each is written whole at offset 0.
            switch self {
            case .inet(let address, let port):
                var sin = sockaddr_in()
                sin.sin_family = sa_family_t(AF_INET)
                sin.sin_port = port.bigEndian
                sin.sin_addr.s_addr = address.bigEndian
                raw.storeBytes(of: sin, as: sockaddr_in.self)
            case .inet6(let high, let low, let port, let scopeID):
                var sin6 = sockaddr_in6()
                sin6.sin6_family = sa_family_t(AF_INET6)
                sin6.sin6_port = port.bigEndian
                sin6.sin6_scope_id = scopeID
                withUnsafeMutableBytes(of: &sin6.sin6_addr) { bytes in
                    withUnsafeBytes(of: high.bigEndian) { UnsafeMutableRawBufferPointer(rebasing: bytes[0..<8]).copyMemory(from: $0) }
                    withUnsafeBytes(of: low.bigEndian) { UnsafeMutableRawBufferPointer(rebasing: bytes[8..<16]).copyMemory(from: $0) }
                }
                raw.storeBytes(of: sin6, as: sockaddr_in6.self)
            case .vsock(let cid, let port):
                var svm = sockaddr_vm()
                svm.svm_family = sa_family_t(AF_VSOCK)
                svm.svm_port = port
                svm.svm_cid = cid
                raw.storeBytes(of: svm, as: sockaddr_vm.self)
            case .unix(let path):
                raw.storeBytes(of: sa_family_t(AF_UNIX), as: sa_family_t.self)
                let offset = UnixSocketPath.pathOffset
                UnsafeMutableRawBufferPointer(rebasing: raw[offset..<(offset + path.bytes.count)]).copyBytes(from: path.bytes)
            }
        }
        let length = self.length
        return try withUnsafeMutablePointer(to: &storage) { (pointer) throws(E) -> R in
            // SAFETY: sockaddr_storage may be read as a sockaddr (POSIX).
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (generic) throws(E) -> R in
                try body(UnsafePointer(generic), length)
            }
        }
    }
}

// MARK: - The way in

extension SocketAddress {
    /// Reads a sockaddr of `bytes.count` bytes (the length the kernel or
    /// library returned). nil for another family, or when the length is
    /// too short for the family's sockaddr (a unix address may end early:
    /// its length says how much of the path there is).
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= MemoryLayout<sa_family_t>.size, let base = bytes.baseAddress else { return nil }
        let family = Int32(bytes.loadUnaligned(as: sa_family_t.self))
        switch family {
        case AF_INET:
            guard bytes.count >= MemoryLayout<sockaddr_in>.size else { return nil }
            let sin = base.loadUnaligned(as: sockaddr_in.self)
            self = .inet(address: UInt32(bigEndian: sin.sin_addr.s_addr), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            guard bytes.count >= MemoryLayout<sockaddr_in6>.size else { return nil }
            let sin6 = base.loadUnaligned(as: sockaddr_in6.self)
            let (high, low) = withUnsafeBytes(of: sin6.sin6_addr) { address in
                (UInt64(bigEndian: address.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: address.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            self = .inet6(high: high, low: low, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
        case AF_VSOCK:
            guard bytes.count >= MemoryLayout<sockaddr_vm>.size else { return nil }
            let svm = base.loadUnaligned(as: sockaddr_vm.self)
            self = .vsock(cid: svm.svm_cid, port: svm.svm_port)
        case AF_UNIX:
            guard bytes.count <= MemoryLayout<sockaddr_un>.size else { return nil }
            guard let path = UnixSocketPath(sunPath: bytes[UnixSocketPath.pathOffset...]) else { return nil }
            self = .unix(path)
        default:
            return nil
        }
    }

    /// Reads the first `length` bytes of `storage` (see `init?(bytes:)`).
    public init?(storage: sockaddr_storage, length: socklen_t) {
        guard Int(length) <= MemoryLayout<sockaddr_storage>.size else { return nil }
        let decoded = withUnsafeBytes(of: storage) { SocketAddress(bytes: UnsafeRawBufferPointer(rebasing: $0.prefix(Int(length)))) }
        guard let decoded else { return nil }
        self = decoded
    }

    /// Runs `call` (accept, getsockname, getpeername, recvfrom) with room
    /// for any address and its length, and reads what it wrote. The
    /// address is nil when the call failed (`succeeded` says so) or wrote
    /// a family or length not read here.
    public static func receiving<R>(_ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> R,
                                    succeeded: (R) -> Bool) -> (result: R, address: SocketAddress?) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            // SAFETY: sockaddr_storage may be written as a sockaddr (POSIX).
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, &length) }
        }
        // save errno across the decoding for the caller.
        let error = errno
        defer { errno = error }
        guard succeeded(result) else { return (result, nil) }
        return (result, SocketAddress(storage: storage, length: length))
    }

    /// The address a socket is bound to (getsockname(2)); nil on failure,
    /// errno set.
    public static func local(of fd: Int32) -> SocketAddress? {
        receiving({ getsockname(fd, $0, $1) }, succeeded: { $0 == 0 }).address
    }

    /// The address of a socket's peer (getpeername(2)); nil on failure.
    public static func peer(of fd: Int32) -> SocketAddress? {
        receiving({ getpeername(fd, $0, $1) }, succeeded: { $0 == 0 }).address
    }

    /// Accepts a connection on `listener`: the new descriptor (-1 with
    /// errno set on failure) and the peer's address.
    public static func accept(_ listener: Int32) -> (fd: Int32, peer: SocketAddress?) {
        let (fd, peer) = receiving({ Glibc.accept(listener, $0, $1) }, succeeded: { $0 >= 0 })
        return (fd, peer)
    }
}

// MARK: - Text

extension SocketAddress: CustomStringConvertible {
    /// A numeric IPv4 or IPv6 address with a port ("127.0.0.1", "::1");
    /// nil for anything else. inet_pton(3) decides what is numeric.
    public init?(numericHost host: String, port: UInt16) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            self = .inet(address: UInt32(bigEndian: v4.s_addr), port: port)
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            let (high, low) = withUnsafeBytes(of: v6) { address in
                (UInt64(bigEndian: address.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: address.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            self = .inet6(high: high, low: low, port: port, scopeID: 0)
        } else {
            return nil
        }
    }

    /// inet_ntop(3)'s text of an IPv4 or IPv6 address, IPv4-mapped IPv6
    /// addresses as plain IPv4 ("192.0.2.1", not "::ffff:192.0.2.1"); nil
    /// for vsock and unix.
    public var numericHost: String? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch self {
        case .inet(let address, _):
            var v4 = in_addr(s_addr: address.bigEndian)
            _ = inet_ntop(AF_INET, &v4, &text, socklen_t(text.count))
        case .inet6(let high, let low, _, _):
            if isIPv4Mapped {
                let v4 = UInt32(truncatingIfNeeded: low)
                return [24, 16, 8, 0].map { String(v4 >> UInt32($0) & 0xFF) }.joined(separator: ".")
            }
            var v6 = in6_addr()
            withUnsafeMutableBytes(of: &v6) { bytes in
                withUnsafeBytes(of: high.bigEndian) { UnsafeMutableRawBufferPointer(rebasing: bytes[0..<8]).copyMemory(from: $0) }
                withUnsafeBytes(of: low.bigEndian) { UnsafeMutableRawBufferPointer(rebasing: bytes[8..<16]).copyMemory(from: $0) }
            }
            _ = inet_ntop(AF_INET6, &v6, &text, socklen_t(text.count))
        case .vsock, .unix:
            return nil
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "127.0.0.1:20048", "[::]:20048" ("[192.0.2.1]:635" for an IPv4-mapped one),
    /// "vsock:3:2049" ("vsock:*:2049" for any CID), the unix path (see
    /// `UnixSocketPath.description`).
    public var description: String {
        switch self {
        case .inet(_, let port): return "\(numericHost ?? ""):\(port)"
        case .inet6(_, _, let port, _): return "[\(numericHost ?? "")]:\(port)"
        case .vsock(let cid, let port): return "vsock:\(cid == Self.anyCID ? "*" : String(cid)):\(port)"
        case .unix(let path): return path.description
        }
    }
}

/// What an AF_UNIX address names: a file system path (up to 107 bytes, no
/// NUL), a name in the abstract namespace (a leading NUL, then up to 107
/// bytes of any value), or nothing (an unbound or autobound peer).
public struct UnixSocketPath: Sendable, Hashable, CustomStringConvertible {
    /// sun_path as sent: the path without its terminating NUL, or NUL and
    /// the abstract name, or empty.
    public let bytes: [UInt8]

    /// offsetof(struct sockaddr_un, sun_path) and sizeof(sun_path).
    static let pathOffset = MemoryLayout<sa_family_t>.size
    public static let capacity = MemoryLayout<sockaddr_un>.size - MemoryLayout<sa_family_t>.size

    public static let unnamed = UnixSocketPath(raw: [])

    private init(raw: [UInt8]) { bytes = raw }

    /// A file system path; nil when it is empty, holds a NUL, or leaves no
    /// room in sun_path for the terminating NUL (ENAMETOOLONG).
    public init?(path: String) {
        let raw = Array(path.utf8)
        guard !raw.isEmpty, raw.count < Self.capacity, !raw.contains(0) else { return nil }
        bytes = raw
    }

    /// A name in the abstract namespace (the leading NUL is added here);
    /// nil when longer than sun_path less that NUL.
    public init?(abstract name: [UInt8]) {
        guard name.count < Self.capacity else { return nil }
        bytes = [0] + name
    }

    /// sun_path's bytes as the kernel returned them (the sockaddr's length
    /// less the family): a path ends at its first NUL, an abstract name
    /// takes every byte.
    init?(sunPath: Slice<UnsafeRawBufferPointer>) {
        guard sunPath.count <= Self.capacity else { return nil }
        guard let first = sunPath.first else { self = .unnamed; return }
        if first == 0 {
            bytes = Array(sunPath)
        } else {
            bytes = Array(sunPath.prefix { $0 != 0 })
        }
    }

    public var isAbstract: Bool { bytes.first == 0 }

    /// The file system path; nil for an abstract or unnamed address.
    public var pathname: String? {
        guard let first = bytes.first, first != 0 else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The abstract name without its leading NUL; nil for the others.
    public var abstractName: [UInt8]? { isAbstract ? Array(bytes.dropFirst()) : nil }

    /// The length to pass: the whole sockaddr_un for a path (NUL-padded, as
    /// bind(2) has always been given it here), exactly the name for an
    /// abstract one (its length is part of the name), the family alone
    /// for an unnamed one.
    var sockaddrLength: socklen_t {
        if bytes.isEmpty { return socklen_t(Self.pathOffset) }
        if isAbstract { return socklen_t(Self.pathOffset + bytes.count) }
        return socklen_t(MemoryLayout<sockaddr_un>.size)
    }

    /// The path; "@name" for an abstract one (as ss(8) shows it, bytes
    /// outside printable ASCII as \xNN); "(unnamed)".
    public var description: String {
        if let pathname { return pathname }
        guard let name = abstractName else { return "(unnamed)" }
        return "@" + name.map { byte in
            (0x20..<0x7F).contains(byte) && byte != UInt8(ascii: "\\")
                ? String(UnicodeScalar(byte)) : "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }
}
