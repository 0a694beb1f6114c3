#if canImport(Glibc)
import Glibc
#endif
import CLinux
import SystemEdge
import Testing

/// The sockaddr bytes `withSockaddr` passes.
private func encoded(_ address: SocketAddress) -> [UInt8] {
    address.withSockaddr { pointer, length in
        Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: Int(length)))
    }
}

private func decoded(_ bytes: [UInt8]) -> SocketAddress? {
    bytes.withUnsafeBytes { SocketAddress(bytes: $0) }
}

@Suite struct SocketAddressRoundTripTests {
    @Test("every family comes back as it went out", arguments: [
        SocketAddress.inet(address: 0x7F00_0001, port: 2049),
        .inet(address: 0, port: 0),
        .inet(address: 0xFFFF_FFFF, port: 65535),
        .inet6(high: 0, low: 1, port: 20048, scopeID: 0),
        .inet6(high: 0xFE80_0000_0000_0000, low: 0x1, port: 635, scopeID: 7),
        .inet6(high: 0, low: 0xFFFF_C000_0201, port: 1, scopeID: 0),
        .vsock(cid: 3, port: 2049),
        .vsock(cid: SocketAddress.anyCID, port: SocketAddress.anyVsockPort),
        .unix(UnixSocketPath(path: "/run/nfs-vsock/vm1.sock")!),
        .unix(UnixSocketPath(abstract: Array("nfs-vsock".utf8))!),
        .unix(UnixSocketPath(abstract: [])!),
        .unix(.unnamed),
    ])
    func roundTrip(address: SocketAddress) {
        #expect(decoded(encoded(address)) == address)
        // The same through sockaddr_storage, as accept(2) leaves it.
        var storage = sockaddr_storage()
        let bytes = encoded(address)
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        #expect(SocketAddress(storage: storage, length: socklen_t(bytes.count)) == address)
    }

    @Test("the lengths and byte order the kernel expects")
    func inetLayout() {
        let v4 = encoded(.inet(address: 0x7F00_0001, port: 2049))
        #expect(v4.count == MemoryLayout<sockaddr_in>.size)
        #expect(Array(v4[0..<2]) == [UInt8(AF_INET), 0])
        #expect(Array(v4[2..<8]) == [0x08, 0x01, 127, 0, 0, 1])
        #expect(v4[8...].allSatisfy { $0 == 0 })
        let v6 = encoded(.inet6(high: 0x2001_0DB8_0000_0000, low: 5, port: 635, scopeID: 0))
        #expect(v6.count == MemoryLayout<sockaddr_in6>.size)
        #expect(Array(v6[2..<4]) == [0x02, 0x7B])
        #expect(Array(v6[4..<8]) == [0, 0, 0, 0]) // flow label
        #expect(Array(v6[8..<24]) == [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [5])
    }

    @Test("the vsock sockaddr is zeroed except family, port and CID")
    func vsockLayout() {
        let bytes = encoded(.vsock(cid: SocketAddress.anyCID, port: 2049))
        #expect(bytes.count == 16)
        #expect(bytes[0] == 40 && bytes[1] == 0)
        #expect(bytes[2] == 0 && bytes[3] == 0) // svm_reserved1
        #expect(Array(bytes[4..<8]) == [0x01, 0x08, 0, 0])
        #expect(Array(bytes[8..<12]) == [0xff, 0xff, 0xff, 0xff])
        #expect(bytes[12...].allSatisfy { $0 == 0 }) // svm_flags and svm_zero
        // Reserved bytes set by someone else are not part of the address.
        var dirty = bytes
        dirty[2] = 9; dirty[12] = 1; dirty[15] = 7
        #expect(decoded(dirty) == .vsock(cid: SocketAddress.anyCID, port: 2049))
        #expect(encoded(decoded(dirty)!) == bytes)
    }

    @Test("IPv4-mapped IPv6 stays IPv6 and prints as IPv4")
    func mapped() throws {
        let mapped = try #require(SocketAddress(numericHost: "::ffff:192.0.2.1", port: 635))
        #expect(mapped == .inet6(high: 0, low: 0xFFFF_C000_0201, port: 635, scopeID: 0))
        #expect(mapped.isIPv4Mapped)
        #expect(mapped.family == AF_INET6)
        #expect(mapped.numericHost == "192.0.2.1")
        #expect(mapped.description == "[192.0.2.1]:635")
        #expect(decoded(encoded(mapped)) == mapped)
        let translated = try #require(SocketAddress(numericHost: "::ffff:0:192.0.2.1", port: 1))
        #expect(!translated.isIPv4Mapped)
        #expect(translated.numericHost == "::ffff:0:c000:201")
    }

    @Test("text", arguments: [
        (SocketAddress.inet(address: 0x7F00_0001, port: 20048), "127.0.0.1:20048"),
        (.anyInet(port: 2049), "0.0.0.0:2049"),
        (.anyInet6(port: 20048), "[::]:20048"),
        (.inet6(high: 0x2001_0DB8_0000_0000, low: 5, port: 1, scopeID: 0), "[2001:db8::5]:1"),
        (.vsock(cid: SocketAddress.anyCID, port: 2049), "vsock:*:2049"),
        (.vsock(cid: 3, port: 1023), "vsock:3:1023"),
        (.unix(UnixSocketPath(path: "/run/a.sock")!), "/run/a.sock"),
        (.unix(UnixSocketPath(abstract: Array("x\u{1}\\".utf8))!), "@x\\x01\\x5c"),
        (.unix(.unnamed), "(unnamed)"),
    ])
    func text(address: SocketAddress, expected: String) {
        #expect(address.description == expected)
    }

    @Test("numeric hosts only", arguments: ["localhost", "", "1.2.3", "::g", "01.2.3.4", "fe80::1%eth0"])
    func numericOnly(input: String) {
        #expect(SocketAddress(numericHost: input, port: 1) == nil)
    }
}

@Suite struct UnixSocketPathLimitTests {
    @Test("a path fills sun_path less its NUL; one byte more is refused")
    func pathLimit() throws {
        #expect(UnixSocketPath.capacity == 108)
        let longest = "/" + String(repeating: "a", count: 106)
        let path = try #require(UnixSocketPath(path: longest))
        let address = SocketAddress.unix(path)
        #expect(address.length == socklen_t(MemoryLayout<sockaddr_un>.size))
        let bytes = encoded(address)
        #expect(bytes[2 + 107] == 0)
        #expect(decoded(bytes) == address)
        #expect(UnixSocketPath(path: longest + "a") == nil)
        #expect(UnixSocketPath(path: "") == nil)
        #expect(UnixSocketPath(path: "/a\u{0}b") == nil)
    }

    @Test("an abstract name takes sun_path less its leading NUL, and its length is exact")
    func abstractLimit() throws {
        let name = [UInt8](repeating: 0x41, count: 107)
        let path = try #require(UnixSocketPath(abstract: name))
        #expect(path.isAbstract && path.pathname == nil && path.abstractName == name)
        let address = SocketAddress.unix(path)
        #expect(address.length == 110)
        #expect(decoded(encoded(address)) == address)
        #expect(UnixSocketPath(abstract: name + [0x41]) == nil)
        // Names with NULs inside are names all the same.
        let odd = try #require(UnixSocketPath(abstract: [1, 0, 2]))
        #expect(SocketAddress.unix(odd).length == 2 + 4)
        #expect(decoded(encoded(.unix(odd))) == .unix(odd))
    }

    @Test("a path the kernel returns ends at its NUL, whatever the length says")
    func kernelPath() {
        // getsockname on Linux counts the NUL; some callers pass the whole struct.
        let bytes: [UInt8] = [UInt8(AF_UNIX), 0] + Array("/tmp/s".utf8) + [0, 0x55, 0x55]
        #expect(decoded(bytes) == .unix(UnixSocketPath(path: "/tmp/s")!))
        #expect(decoded([UInt8(AF_UNIX), 0]) == .unix(.unnamed))
    }
}

@Suite struct SocketAddressDecodingRefusalTests {
    @Test("a length short of the family's sockaddr is refused", arguments: [
        (SocketAddress.inet(address: 0x7F00_0001, port: 1), MemoryLayout<sockaddr_in>.size),
        (.inet6(high: 0, low: 1, port: 1, scopeID: 0), MemoryLayout<sockaddr_in6>.size),
        (.vsock(cid: 3, port: 2049), MemoryLayout<sockaddr_vm>.size),
    ])
    func truncated(address: SocketAddress, size: Int) {
        let bytes = encoded(address)
        #expect(bytes.count == size)
        for length in 0..<size {
            #expect(decoded(Array(bytes.prefix(length))) == nil, "length \(length)")
        }
        #expect(decoded(bytes) == address)
    }

    @Test("too long for sockaddr_un, no family at all, or a family not read here")
    func refused() {
        #expect(decoded([]) == nil)
        #expect(decoded([UInt8(AF_UNIX)]) == nil)
        #expect(decoded([UInt8(AF_UNIX), 0] + [UInt8](repeating: 0x61, count: 109)) == nil)
        #expect(decoded([UInt8(AF_PACKET), 0] + [UInt8](repeating: 0, count: 18)) == nil)
        var storage = sockaddr_storage()
        #expect(SocketAddress(storage: storage, length: socklen_t(MemoryLayout<sockaddr_storage>.size + 1)) == nil)
        storage.ss_family = sa_family_t(AF_INET)
        #expect(SocketAddress(storage: storage, length: 4) == nil)
    }
}

@Suite struct SocketAddressKernelTests {
    @Test("bind, getsockname, connect, accept and getpeername through the one way in and out")
    func loopback() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        let bound = SocketAddress.inet(address: 0x7F00_0001, port: 0).withSockaddr { bind(listener, $0, $1) }
        try #require(bound == 0 && listen(listener, 4) == 0)
        let local = try #require(SocketAddress.local(of: listener))
        guard case .inet(0x7F00_0001, let port) = local, port != 0 else {
            Issue.record("bound to \(local)")
            return
        }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        try #require(local.withSockaddr { connect(client, $0, $1) } == 0)
        let (connection, peer) = SocketAddress.accept(listener)
        try #require(connection >= 0)
        defer { close(connection) }
        #expect(peer == SocketAddress.local(of: client))
        #expect(SocketAddress.peer(of: client) == local)
    }

    @Test("a unix socket's bound path comes back from getsockname")
    func unixPath() throws {
        let path = "/tmp/systemedge-\(getpid()).sock"
        unlink(path)
        defer { unlink(path) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        let address = SocketAddress.unix(try #require(UnixSocketPath(path: path)))
        try #require(address.withSockaddr { bind(fd, $0, $1) } == 0)
        #expect(SocketAddress.local(of: fd) == address)
        let abstract = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(abstract) }
        let name = SocketAddress.unix(try #require(UnixSocketPath(abstract: Array("systemedge-\(getpid())".utf8))))
        try #require(name.withSockaddr { bind(abstract, $0, $1) } == 0)
        #expect(SocketAddress.local(of: abstract) == name)
    }

    @Test("a failed call leaves no address and its errno")
    func failedCall() {
        let (fd, peer) = SocketAddress.accept(-1)
        #expect(fd == -1 && peer == nil && errno == EBADF)
        #expect(SocketAddress.local(of: -1) == nil)
    }
}
