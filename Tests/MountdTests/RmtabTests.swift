import Glibc
import NFSAdmin
import Testing
@testable import Mountd

private func pairs(_ store: RmtabStore) -> [String] {
    store.entries().map { "\($0.host) \($0.directory)" }
}

@Suite("rmtab: host:path:0x<count>, as nfs-utils keeps it")
struct RmtabTests {
    @Test("a mount is recorded, a second one of the same pair counted, in nfs-utils' format")
    func add() throws {
        let root = try TestRoot()
        let store = RmtabStore(path: root.paths.rmtab)
        try root.makeDirectory("/var/lib/nfs")
        #expect(store.entries().isEmpty)
        store.add(host: "192.168.1.5", path: "/srv/a")
        store.add(host: "192.168.1.5", path: "/srv/a")
        store.add(host: "client.example", path: "/srv/b")
        #expect(try root.text("/var/lib/nfs/rmtab") == "192.168.1.5:/srv/a:0x00000002\nclient.example:/srv/b:0x00000001\n")
        #expect(pairs(store) == ["192.168.1.5 /srv/a", "client.example /srv/b"])
    }

    @Test("an IPv6 host and a path with colons read back whole")
    func colons() throws {
        let root = try TestRoot()
        try root.write("/var/lib/nfs/rmtab", "2001:db8::1:/srv/a:b:0x0000000a\n")
        let store = RmtabStore(path: root.paths.rmtab)
        #expect(pairs(store) == ["2001:db8::1 /srv/a:b"])
        // The count survives a rewrite.
        store.add(host: "10.0.0.1", path: "/x")
        #expect(try root.text("/var/lib/nfs/rmtab") == "2001:db8::1:/srv/a:b:0x0000000a\n10.0.0.1:/x:0x00000001\n")
    }

    @Test("unmount removes the pair; unmount-all every path of the host")
    func remove() throws {
        let root = try TestRoot()
        try root.write("/var/lib/nfs/rmtab", """
            h1:/a:0x00000001
            h1:/b:0x00000003
            h2:/a:0x00000001

            """)
        let store = RmtabStore(path: root.paths.rmtab)
        store.remove(host: "h1", path: "/a")
        #expect(pairs(store) == ["h1 /b", "h2 /a"])
        store.remove(host: "h1", path: nil)
        #expect(pairs(store) == ["h2 /a"])
        store.remove(host: "nobody", path: nil)
        #expect(store.entries().count == 1)
    }

    @Test("lines that are not host:/path are skipped; an unreadable count is 1")
    func malformed() throws {
        let root = try TestRoot()
        try root.write("/var/lib/nfs/rmtab", "garbage\nh:/p:0xzz\nno-path:0x00000001\n\nh2:/q:0x00000002\n")
        let store = RmtabStore(path: root.paths.rmtab)
        #expect(pairs(store) == ["h /p", "h2 /q"])
        store.add(host: "h", path: "/p")
        #expect(try root.text("/var/lib/nfs/rmtab") == "h:/p:0x00000002\nh2:/q:0x00000002\n")
    }
}

@Suite("filesystem UUIDs as the 16 bytes nfsd.export's uuid= carries")
struct UUIDBytesTests {
    @Test("libblkid's UUID text to bytes", arguments: [
        ("0123abcd-4567-89ef-0123-456789abcdef",
         [0x01, 0x23, 0xab, 0xcd, 0x45, 0x67, 0x89, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef] as [UInt8]?),
        ("0123ABCD456789EF0123456789ABCDEF",
         [0x01, 0x23, 0xab, 0xcd, 0x45, 0x67, 0x89, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]),
        // vfat's short serial: repeated to 16 bytes.
        ("ABCD-1234", [0xab, 0xcd, 0x12, 0x34, 0xab, 0xcd, 0x12, 0x34, 0xab, 0xcd, 0x12, 0x34, 0xab, 0xcd, 0x12, 0x34]),
        // 6 bytes: repeated, then cut to 16.
        ("112233445566", [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x11, 0x22, 0x33, 0x44]),
        // Longer than 16 bytes: the first 16.
        ("00112233445566778899aabbccddeeff0011",
         [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]),
        ("1234-56", nil),      // fewer than 8 digits
        ("123456789", nil),    // odd
        ("", nil),
        ("not-hex-at-all", nil),
    ])
    func bytes(text: String, bytes: [UInt8]?) {
        #expect(FilesystemProbe.uuidBytes(text) == bytes)
    }

    @Test("a directory under the root: its device and inode, and not a mount point")
    func probe() throws {
        let root = try TestRoot()
        try root.makeDirectory("/srv/a")
        let probe = FilesystemProbe(paths: root.paths)
        let info = try #require(probe.info("/srv/a"))
        var st = stat()
        #expect(stat(root.path + "/srv/a", &st) == 0)
        #expect(info.inode == UInt64(st.st_ino))
        #expect(!info.isMountPoint)
        #expect(info.uuid == nil || info.uuid?.count == 16)
        #expect(probe.info("/srv/missing") == nil)
    }
}
