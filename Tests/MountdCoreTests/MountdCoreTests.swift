import Testing
import NFSExports
@testable import MountdCore

private let features = ExportFeatures(flags: ExportFlags(rawValue: 0x3ffff), perFlavorFlags: .perFlavor)

private func authority(_ text: String) -> ExportAuthority {
    let output = ExportsParser(features: features).parse(text, file: "etab")
    var diagnostics: [Diagnostic] = []
    return ExportAuthority(table: ExportTable(output.entries, diagnostics: &diagnostics), features: features)
}

private let noNames = StaticNameService()

private func fs(_ inode: UInt64, uuid: [UInt8]? = Array(repeating: 0xab, count: 16), major: UInt32 = 8, minor: UInt32 = 1) -> FilesystemInfo {
    FilesystemInfo(major: major, minor: minor, inode: inode, uuid: uuid, deviceless: false, isMountPoint: true)
}

@Suite("cache requests")
struct CacheRequestTests {
    @Test("auth.unix.ip addresses", arguments: [
        ("nfsd 192.168.1.5", "192.168.1.5"),
        ("nfsd 2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("nfsd vsock:5", "vsock:5"),
        ("nfsd ::ffff:10.0.0.1", "10.0.0.1"),
    ])
    func authUnixIP(line: String, client: String) throws {
        let request = try AuthUnixIPRequest.parse(line[...])
        #expect(request.serviceClass == "nfsd")
        #expect(request.client.description == client)
        #expect(CacheReply.authUnixIP(request, expiry: 100, domain: "a,b") == "nfsd \(request.addressText) 100 a,b\n")
        #expect(CacheReply.authUnixIP(request, expiry: 100, domain: nil) == "nfsd \(request.addressText) 100\n")
    }

    @Test("escaped paths and domains", arguments: [
        ("dom /srv/my\\040share", "dom", "/srv/my share"),
        ("a\\134b /x\\011y", "a\\b", "/x\ty"),
        ("* /", "*", "/"),
    ])
    func export(line: String, domain: String, path: String) throws {
        let request = try ExportRequest.parse(line[...])
        #expect(request.domain == domain && request.path == path)
        #expect(CacheReply.exportDenied(domain: domain, path: path, expiry: 5) == line + " 5\n")
    }

    @Test("every fsid type with its length", arguments: [(0, 8), (1, 4), (2, 12), (3, 8), (4, 8), (5, 8), (6, 16), (7, 24)])
    func fsidTypes(type: Int, length: Int) throws {
        let hex = String(repeating: "0a", count: length)
        let request = try FileHandleRequest.parse("dom \(type) \\x\(hex)"[...])
        #expect(request.fsid == Array(repeating: 0x0a, count: length))
        #expect(CacheReply.fileHandle(request, expiry: 7, path: "/srv/a b") == "dom \(type) \\x\(hex) 7 /srv/a\\040b\n")
        #expect(throws: CacheWords.Malformed.self) { try FileHandleRequest.parse("dom \(type) \\x\(hex)00"[...]) }
    }

    @Test("malformed lines are rejected, never trapped", arguments: [
        "", "nfsd", "nfsd 1.2.3", "nfsd vsock:x", "nfsd vsock:4294967295", "nfsd 1.2.3.4 extra",
        "dom relative/path", "dom 9 \\x00", "dom 1 \\x0", "dom 1 \\xzz000000", "dom x \\x00000000", "abc",
        "\\x", "dom 1 notbinary",
    ])
    func malformed(line: String) {
        let parsers: [(Substring) throws -> Void] = [
            { _ = try AuthUnixIPRequest.parse($0) }, { _ = try ExportRequest.parse($0) },
            { _ = try FileHandleRequest.parse($0) }, { _ = try GroupsRequest.parse($0) },
        ]
        var accepted = 0
        for parse in parsers where (try? parse(line[...])) != nil { accepted += 1 }
        #expect(accepted <= 1, "\(line) parsed as more than one request kind")
        if line.hasPrefix("nfsd") { #expect((try? AuthUnixIPRequest.parse(line[...])) == nil) }
    }

    @Test("auth.unix.gid")
    func groups() throws {
        #expect(try GroupsRequest.parse("1000"[...]).uid == 1000)
        #expect(CacheReply.groups(uid: 1000, expiry: 9, gids: [1000, 27]) == "1000 9 2 1000 27\n")
        #expect(CacheReply.groups(uid: 1000, expiry: 9, gids: nil) == "1000 9 0\n")
    }
}

@Suite("export authority")
struct ExportAuthorityTests {
    static let etab = """
        /srv/shared\t*(ro)
        /srv/vm/5\tvsock:5(rw,no_root_squash)
        /srv/vm/7\tvsock:7(rw)
        /srv/images\tvsock:*(ro)
        /srv/lan\t192.168.1.0/24(rw,sec=krb5p:sys)
        /srv/local\t127.0.0.1(rw,fsid=17)
        """

    @Test("domains name every matching client, sorted")
    func domains() {
        let a = authority(Self.etab)
        #expect(a.domain(for: .vsock(5), nameService: noNames) == "vsock:*,vsock:5")
        #expect(a.domain(for: .vsock(9), nameService: noNames) == "vsock:*")
        #expect(a.domain(for: .ip(IPAddress("192.168.1.4")!), nameService: noNames) == "*,192.168.1.0/24")
        #expect(a.domain(for: .ip(IPAddress("127.0.0.1")!), nameService: noNames) == "*,127.0.0.1")
        #expect(authority("/srv/x\tvsock:3(rw)\n").domain(for: .ip(IPAddress("10.0.0.1")!), nameService: noNames) == nil)
    }

    @Test("a guest sees its exports and the directories leading to them, nothing else")
    func pseudoIsolation() {
        let a = authority(Self.etab)
        let five = a.exports(forDomain: "vsock:*,vsock:5")
        #expect(Set(five.keys) == ["/srv/vm/5", "/srv/images"])
        #expect(a.pseudoPaths(exports: five) == ["/", "/srv", "/srv/vm"])
        let nine = a.exports(forDomain: "vsock:*")
        #expect(a.pseudoPaths(exports: nine) == ["/", "/srv"])
        // vsock:9 may not walk to /srv/vm (that leads only to other guests).
        #expect(a.export(domain: "vsock:*", path: "/srv/vm", info: { _ in fs(2) }) == .denied)
        #expect(a.export(domain: "vsock:*", path: "/srv/vm/5", info: { _ in fs(2) }) == .denied)
        #expect(a.export(domain: "vsock:*", path: "/srv/shared", info: { _ in fs(2) }) == .denied)
        guard case .pseudo(let pseudo) = a.export(domain: "vsock:*,vsock:5", path: "/srv/vm", info: { _ in fs(2) }) else {
            Issue.record("no pseudo answer"); return
        }
        #expect(pseudo.flags.contains(.v4Root) && pseudo.flags.contains(.readOnly))
        #expect(pseudo.uuid == Array(repeating: 0xab, count: 16))
    }

    @Test("an fsid=0 export is the NFSv4 root; nothing above it is pseudo")
    func fsidZeroRoot() {
        let a = authority("/export\t127.0.0.1(ro,fsid=0)\n/export/a/b\t127.0.0.1(rw)\n")
        let exports = a.exports(forDomain: "127.0.0.1")
        #expect(a.v4Root(exports: exports) == "/export")
        #expect(a.pseudoPaths(exports: exports) == ["/export/a"])
    }

    @Test("export answers carry flags, ids, fsid, secinfo and uuid")
    func answers() {
        let a = authority(Self.etab)
        guard case .export(let lan) = a.export(domain: "*,192.168.1.0/24", path: "/srv/lan", info: { _ in fs(2) }) else {
            Issue.record("no answer"); return
        }
        #expect(!lan.flags.contains(.readOnly))
        #expect(lan.security.map(\.flavor) == [390005, 1])
        #expect(lan.uuid == Array(repeating: 0xab, count: 16))
        let line = CacheReply.export(domain: "d", path: "/srv/lan", expiry: 9, export: lan)
        #expect(line.hasPrefix("d /srv/lan 9 \(lan.flags.rawValue) 65534 65534 0 secinfo 2 390005 "))
        #expect(line.hasSuffix(" uuid \\x" + String(repeating: "ab", count: 16) + "\n"))
        guard case .export(let local) = a.export(domain: "*,127.0.0.1", path: "/srv/local", info: { _ in fs(2) }) else {
            Issue.record("no answer"); return
        }
        #expect(local.fsid == 17 && local.uuid == nil && local.flags.contains(.fsid))
    }

    @Test("filehandle fsids resolve to the domain's own paths only")
    func fileHandles() throws {
        let a = authority(Self.etab)
        let info: (String) -> FilesystemInfo? = { path in
            switch path {
            case "/srv/vm/5": fs(500, uuid: Array(repeating: 5, count: 16))
            case "/srv/vm/7": fs(700, uuid: Array(repeating: 7, count: 16))
            case "/srv/local": fs(900, uuid: nil, major: 254, minor: 3)
            default: fs(2, uuid: Array(repeating: 1, count: 16))
            }
        }
        let uuid5 = String(repeating: "05", count: 16)
        let type6 = try FileHandleRequest.parse("vsock:*,vsock:5 6 \\x\(uuid5)"[...])
        #expect(a.path(for: type6, info: info) == "/srv/vm/5")
        let stolen = try FileHandleRequest.parse("vsock:*,vsock:7 6 \\x\(uuid5)"[...])
        #expect(a.path(for: stolen, info: info) == nil)
        let inode = "f401000000000000"  // 500, little-endian
        let type7 = try FileHandleRequest.parse("vsock:*,vsock:5 7 \\x\(inode)\(uuid5)"[...])
        #expect(a.path(for: type7, info: info) == "/srv/vm/5")
        let number = try FileHandleRequest.parse("*,127.0.0.1 1 \\x11000000"[...])
        #expect(a.path(for: number, info: info) == "/srv/local")
        let root = try FileHandleRequest.parse("vsock:* 1 \\x00000000"[...])
        #expect(a.path(for: root, info: info) == "/")
        let majorMinor = try FileHandleRequest.parse("*,127.0.0.1 2 \\x000000fe0000000384030000"[...])
        #expect(a.path(for: majorMinor, info: info) == "/srv/local")
    }
}

@Suite("export authority index")
struct ExportAuthorityIndexTests {
    /// The indexed lookups answer exactly what a scan of the whole table
    /// answers, on generated tables mixing every indexed and scanned form.
    @Test("indexed domains and exports equal a full scan")
    func equivalence() {
        var rng = SystemRandomNumberGenerator()
        let clients = ["10.0.0.1", "10.0.0.2", "10.0.0.0/24", "10.0.0.0/8", "*", "vsock:3", "vsock:4", "vsock:3-9", "vsock:*", "2001:db8::1", "2001:db8::/32"]
        for _ in 0..<200 {
            var text = ""
            for _ in 0..<Int.random(in: 1...30, using: &rng) {
                let path = "/srv/p\(Int.random(in: 0..<6, using: &rng))"
                text += "\(path)\t\(clients.randomElement(using: &rng)!)(\(Bool.random(using: &rng) ? "rw" : "ro"))\n"
            }
            let a = authority(text)
            let probes: [ClientIdentity] = [.ip(IPAddress("10.0.0.1")!), .ip(IPAddress("10.0.0.2")!), .ip(IPAddress("10.0.0.77")!),
                                            .ip(IPAddress("10.9.9.9")!), .ip(IPAddress("2001:db8::1")!), .vsock(3), .vsock(4), .vsock(5), .vsock(42)]
            for probe in probes {
                var names = Set<String>()
                for entry in a.table.entries where entry.client.matches(probe, nameService: noNames) { names.insert(entry.clientName) }
                let naive = names.isEmpty ? nil : names.sorted().joined(separator: ",")
                #expect(a.domain(for: probe, nameService: noNames) == naive, "\(probe) in\n\(text)")
                guard let domain = naive else { continue }
                var byPath: [String: ExportEntry] = [:]
                for entry in a.table.entries where names.contains(entry.clientName) {
                    if let existing = byPath[entry.path], existing.client.kind <= entry.client.kind { continue }
                    byPath[entry.path] = entry
                }
                #expect(a.exports(forDomain: domain) == byPath, "\(probe) in\n\(text)")
            }
        }
    }
}

@Suite("who a client is, by the nfsd that asks")
struct UpcallViewTests {
    let block = VsockLoopbackMapping.default

    @Test("at the host's nfsd a guest-block address is nobody; IP and kernel vsock clients are themselves", arguments: [
        ("127.128.0.5", nil as ClientAddress?), ("127.128.0.0", nil), ("127.0.0.1", .ip(IPAddress("127.0.0.1")!)),
        ("10.1.2.3", .ip(IPAddress("10.1.2.3")!)), ("::ffff:127.128.0.9", nil),
    ])
    func host(address: String, expected: ClientAddress?) {
        let view = UpcallView.host(guestBlocks: [block])
        switch view.identity(of: .ip(IPAddress(address)!)) {
        case .client(let client): #expect(client == expected)
        case .nobody(let reason):
            #expect(expected == nil)
            #expect(reason.contains("not the bridge's"))
        }
        #expect(view.identity(of: .vsock(7)) == .client(.vsock(7)))
    }

    @Test("in the bridge's namespace a block address is that guest; anything else is nobody", arguments: [
        ("127.128.0.5", ClientAddress.vsock(5) as ClientAddress?), ("127.128.0.1", .vsock(1)), ("127.128.0.0", nil),
        ("127.0.0.1", nil), ("10.1.2.3", nil),
    ])
    func bridge(address: String, expected: ClientAddress?) {
        switch UpcallView.bridge(block).identity(of: .ip(IPAddress(address)!)) {
        case .client(let client): #expect(client == expected)
        case .nobody: #expect(expected == nil)
        }
    }

    @Test("a block the bridge was not started with gives nothing (mountd and the bridge must agree)")
    func otherBlock() {
        let other = VsockLoopbackMapping("127.64.0.0/10")!
        guard let address = other.address(of: 5) else { Issue.record("no address"); return }
        #expect(UpcallView.bridge(block).identity(of: .ip(address)) != .client(.vsock(5)))
        #expect(UpcallView.bridge(other).identity(of: .ip(address)) == .client(.vsock(5)))
    }
}

@Suite("cache words")
struct CacheWordsTests {
    @Test("\\ooo above \\377 is text, as the kernel's qword_get reads it", arguments: [
        ("dom /srv/a\\777", "/srv/a\\777"),
        ("dom /srv/a\\400b", "/srv/a\\400b"),
        ("dom /srv/a\\377", "/srv/a\u{FFFD}"),
    ])
    func literalOctal(line: String, path: String) throws {
        #expect(try ExportRequest.parse(line[...]).path == path)
    }
}
