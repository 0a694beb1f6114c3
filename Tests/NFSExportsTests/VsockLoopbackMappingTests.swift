import Testing
@testable import NFSExports

@Suite("vsock loopback mapping")
struct VsockLoopbackMappingTests {
    let mapping = VsockLoopbackMapping.default

    @Test("CID <-> address is a bijection on the usable CIDs", arguments: [VsockCID(1), 2, 3, 4, 255, 256, 65_535, 1_000_000, 8_388_607])
    func roundTrip(cid: VsockCID) {
        guard let address = mapping.address(of: cid) else { Issue.record("no address for \(cid)"); return }
        #expect(mapping.resolve(address) == .guest(cid))
        #expect(mapping.identity(of: address) == .vsock(cid))
    }

    @Test("the hypervisor's CID and out-of-range CIDs have no address")
    func unmappable() {
        for cid: VsockCID in [0, 8_388_608, ClientSpec.maxCID] { #expect(mapping.address(of: cid) == nil) }
        #expect(mapping.address(of: 3)?.description == "127.128.0.3")
    }

    @Test("addresses in the block that are no guest get nothing; others stay IP", arguments: [
        ("127.128.0.0", VsockLoopbackMapping.Resolution.invalid),
        ("127.128.0.2", .guest(2)),
        ("127.128.1.0", .guest(256)),
        ("127.255.255.255", .guest(8_388_607)),
        ("127.0.0.1", .notVsock),
        ("127.127.255.255", .notVsock),
        ("10.0.0.1", .notVsock),
        ("::1", .notVsock),
        ("::ffff:127.128.0.9", .guest(9)),
    ])
    func resolution(text: String, expected: VsockLoopbackMapping.Resolution) {
        #expect(mapping.resolve(IPAddress(text)!) == expected)
    }

    @Test("IP rules never match a bridged guest: it is matched as vsock:CID")
    func ipRulesNeverMatch() {
        let output = ExportsParser(features: .assumedWithoutKernel).parse(
            "/srv/world *(rw)\n/srv/lo 127.0.0.0/8(rw)\n/srv/guest vsock:9(rw)\n", file: "t")
        var diagnostics: [Diagnostic] = []
        let table = ExportTable(output.entries, diagnostics: &diagnostics)
        let address = mapping.address(of: 9)!
        guard let client = mapping.identity(of: address) else { Issue.record("no identity"); return }
        let visible = table.exports(for: ClientIdentity(address: client), nameService: StaticNameService())
        #expect(visible.map(\.path) == ["/srv/guest"])
    }

    @Test("configurable blocks", arguments: [
        ("127.128.0.0/9", true), ("127.200.0.0/16", true), ("127.0.0.0/8", false), ("10.0.0.0/16", false),
        ("127.128.0.1/9", false), ("127.1.0.0/25", false), ("127.1.0.0", false),
        ("127.0.0.0/9", false), ("127.0.0.0/16", false), ("127.0.0.0/24", false), ("127.0.1.0/24", true),
    ])
    func blocks(text: String, valid: Bool) {
        #expect((VsockLoopbackMapping(text) != nil) == valid)
    }

    @Test("a block that holds 127.0.0.1 is refused with the reason", arguments: [
        ("127.0.0.0/9", "holds 127.0.0.0/24"), ("127.128.0.1/9", "not aligned: 127.128.0.0/9"), ("10.0.0.0/16", "inside 127.0.0.0/8"),
    ])
    func refusals(text: String, reason: String) {
        guard case .failure(let problem) = VsockLoopbackMapping.parse(text) else { Issue.record("accepted \(text)"); return }
        #expect(problem.message.contains(reason), "\(problem)")
    }
}
