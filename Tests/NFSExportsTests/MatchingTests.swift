import Testing
@testable import NFSExports

private let features = ExportFeatures(flags: ExportFlags(rawValue: 0x3ffff), perFlavorFlags: .perFlavor)

private func table(_ text: String) -> ExportTable {
    let output = ExportsParser(features: features).parse(text, file: "t")
    var diagnostics = output.diagnostics
    return ExportTable(output.entries, diagnostics: &diagnostics)
}

private let names = StaticNameService(
    hosts: ["alpha": [IPAddress("192.168.1.10")!], "beta.example.com": [IPAddress("192.168.1.11")!]],
    netgroups: ["trusted": ["beta.example.com"]])

private func client(_ address: String, _ hostNames: [String] = []) -> ClientIdentity {
    .ip(IPAddress(address)!, names: hostNames)
}

@Suite("matching")
struct MatchingTests {
    static let exports = """
        /srv/a *(ro) 192.168.1.0/24(rw) alpha(rw,no_root_squash) *.example.com(ro,all_squash) @trusted(rw,async)
        /srv/vm vsock:5(rw) vsock:10-20(ro) vsock:*(ro,all_squash)
        /srv/v6 2001:db8::/32(rw) [ab]*.example.com(ro)
        /srv/world *(rw)
        """

    @Test("the most specific client class wins", arguments: [
        ("192.168.1.10", [], "/srv/a", "alpha"),
        ("192.168.1.99", [], "/srv/a", "192.168.1.0/24"),
        ("10.0.0.1", ["gamma.example.com"], "/srv/a", "*.example.com"),
        ("10.0.0.2", ["beta.example.com"], "/srv/a", "*.example.com"),
        ("10.9.9.9", [], "/srv/a", "*"),
        ("2001:db8::5", [], "/srv/v6", "2001:db8::/32"),
        ("10.0.0.2", ["a1.example.com"], "/srv/v6", "[ab]*.example.com"),
        ("::ffff:192.168.1.10", [], "/srv/a", "alpha"),
    ])
    func ipClients(address: String, hostNames: [String], path: String, expected: String) {
        let entry = table(Self.exports).entry(for: client(address, hostNames), path: path, nameService: names)
        #expect(entry?.clientName == expected)
    }

    @Test("netgroups match by host name")
    func netgroup() {
        let t = table("/srv/n @trusted(rw)\n")
        #expect(t.entry(for: client("10.0.0.2", ["beta.example.com"]), path: "/srv/n", nameService: names) != nil)
        #expect(t.entry(for: client("10.0.0.3", ["other"]), path: "/srv/n", nameService: names) == nil)
    }

    @Test("vsock guests match only vsock rules", arguments: [
        (VsockCID(5), "/srv/vm", "vsock:5"),
        (VsockCID(15), "/srv/vm", "vsock:10-20"),
        (VsockCID(21), "/srv/vm", "vsock:*"),
    ])
    func vsockClients(cid: VsockCID, path: String, expected: String) {
        #expect(table(Self.exports).entry(for: .vsock(cid), path: path, nameService: names)?.clientName == expected)
    }

    @Test("vsock:* and ranges mean guests (CIDs 3 and up); CIDs 1 and 2 only by name", arguments: [
        (VsockCID(1), "vsock:1"), (2, "vsock:2"), (3, "vsock:*"), (4, "vsock:1-99"), (99, "vsock:1-99"), (100, "vsock:*"),
    ])
    func reservedCIDs(cid: VsockCID, expected: String) {
        let t = table("""
            /srv/any vsock:*(ro)
            /srv/range vsock:1-99(ro)
            /srv/one vsock:1(ro)
            /srv/two vsock:2(ro)

            """)
        let visible = t.exports(for: .vsock(cid), nameService: names).map(\.clientName)
        switch cid {
        case 1: #expect(visible == ["vsock:1"])
        case 2: #expect(visible == ["vsock:2"])
        default:
            #expect(visible.contains("vsock:*") && !visible.contains("vsock:1") && !visible.contains("vsock:2"))
            #expect(visible.contains("vsock:1-99") == (cid <= 99))
        }
        #expect(visible.contains(expected))
    }

    @Test("a lone * never matches a vsock guest, and vsock rules never match IP clients")
    func separation() {
        let t = table(Self.exports)
        for cid: VsockCID in [3, 5, 100, ClientSpec.maxCID] {
            #expect(t.entry(for: .vsock(cid), path: "/srv/world", nameService: names) == nil)
            #expect(t.entry(for: .vsock(cid), path: "/srv/a", nameService: names) == nil)
        }
        #expect(t.entry(for: client("127.0.0.1"), path: "/srv/vm", nameService: names) == nil)
        #expect(t.exports(for: .vsock(5), nameService: names).map(\.path) == ["/srv/vm"])
    }

    @Test("host patterns", arguments: [
        ("*.example.com", "a.example.com", true),
        ("*.example.com", "example.com", false),
        ("host?", "host1", true),
        ("host?", "host12", false),
        ("[ab]*", "beta", true),
        ("[!ab]*", "beta", false),
        ("[a-c]x", "bx", true),
        ("*.EXAMPLE.com", "a.example.COM", true),
    ])
    func patterns(pattern: String, name: String, expected: Bool) {
        #expect(HostPattern.matches(pattern: pattern, name: name) == expected)
    }

    @Test("duplicates: the first entry wins and the second is reported")
    func duplicates() {
        let output = ExportsParser(features: features).parse("/srv/a h(rw)\n/srv/a h(ro)\n", file: "t")
        var diagnostics: [Diagnostic] = []
        let t = ExportTable(output.entries, diagnostics: &diagnostics)
        #expect(t.entries.count == 1)
        #expect(!t.entries[0].options.isReadOnly)
        #expect(diagnostics.count == 1 && diagnostics[0].location.line == 2)
    }
}

@Suite("addresses")
struct AddressTests {
    @Test("IPv6 parsing and the kernel's uncompressed form", arguments: [
        ("2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::1", "0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
        ("::", "0000:0000:0000:0000:0000:0000:0000:0000", "::"),
        ("fe80::1:2:3:4", "fe80:0000:0000:0000:0001:0002:0003:0004", "fe80::1:2:3:4"),
        ("::ffff:10.1.2.3", "0000:0000:0000:0000:0000:ffff:0a01:0203", "::ffff:a01:203"),
        ("1:2:3:4:5:6:7:8", "0001:0002:0003:0004:0005:0006:0007:0008", "1:2:3:4:5:6:7:8"),
    ])
    func ipv6(text: String, kernel: String, compressed: String) {
        let address = IPAddress(text)
        #expect(address?.kernelText == kernel)
        #expect(address?.description == compressed)
    }

    @Test("malformed addresses are rejected", arguments: [
        "1.2.3", "1.2.3.4.5", "256.1.1.1", "1::2::3", ":1:2", "1:2:3:4:5:6:7:8:9", "12345::", "1.2.3.-4", "",
    ])
    func malformed(text: String) {
        #expect(IPAddress(text) == nil)
    }
}
