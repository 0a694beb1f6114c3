#if canImport(Glibc)
import Glibc
#endif
@testable import MountProtocol
import SystemEdge
import Testing

/// Bytes written out by hand from RFC 1813 section 5 and RFC 1094 appendix A.
@Suite struct MountCodecTests {
    private func words(_ values: UInt32...) -> [UInt8] {
        values.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    }

    @Test func mountres3OK() {
        let encoded = MountCodec.encodeMount(.ok(fileHandle: [1, 2, 3, 4, 5], flavors: [1, 390003]), version: 3)
        #expect(encoded.bytes == words(0, 5) + [1, 2, 3, 4, 5, 0, 0, 0] + words(2, 1, 390003))
        #expect(encoded.notes.isEmpty)
    }

    @Test(arguments: [(MountStatus.access, UInt32(13)), (.nametoolong, 63), (.serverfault, 10006), (.notsupp, 10004), (.noent, 2)])
    func mountres3Error(status: MountStatus, wire: UInt32) {
        #expect(MountCodec.encodeMount(.error(status), version: 3).bytes == words(wire))
    }

    @Test func fhstatusPadsTheHandleTo32Bytes() {
        let encoded = MountCodec.encodeMount(.ok(fileHandle: [0xaa, 0xbb], flavors: [1]), version: 1)
        #expect(encoded.bytes == words(0) + [0xaa, 0xbb] + [UInt8](repeating: 0, count: 30))
    }

    @Test(arguments: [(MountStatus.access, UInt32(13)), (.serverfault, 5), (.notsupp, 5), (.nametoolong, 63)])
    func fhstatusErrorsAreVersion1Numbers(status: MountStatus, wire: UInt32) {
        #expect(MountCodec.encodeMount(.error(status), version: 1).bytes == words(wire))
    }

    @Test func handlesTooLongForTheVersionAreRefusedNotCut() {
        let v1 = MountCodec.encodeMount(.ok(fileHandle: [UInt8](repeating: 7, count: 33), flavors: []), version: 1)
        #expect(v1.bytes == words(5))
        #expect(v1.notes.count == 1)
        let v3 = MountCodec.encodeMount(.ok(fileHandle: [UInt8](repeating: 7, count: 65), flavors: [1]), version: 3)
        #expect(v3.bytes == words(10006))
        #expect(v3.notes.count == 1)
        let fits = MountCodec.encodeMount(.ok(fileHandle: [UInt8](repeating: 7, count: 64), flavors: []), version: 3)
        #expect(fits.bytes == words(0, 64) + [UInt8](repeating: 7, count: 64) + words(0))
    }

    @Test func errorWithOKStatusBecomesServerfault() {
        let encoded = MountCodec.encodeMount(.error(.ok), version: 3)
        #expect(encoded.bytes == words(10006))
        #expect(!encoded.notes.isEmpty)
    }

    @Test func exportsList() {
        let encoded = MountCodec.encodeExports([("/a", ["g"]), ("/bc", [])])
        let expected = words(1, 2) + Array("/a".utf8) + [0, 0] + words(1, 1) + Array("g".utf8) + [0, 0, 0] + words(0)
            + words(1, 3) + Array("/bc".utf8) + [0] + words(0) + words(0)
        #expect(encoded.bytes == expected)
    }

    @Test func emptyListsAreOneFalse() {
        #expect(MountCodec.encodeExports([]).bytes == words(0))
        #expect(MountCodec.encodeMountList([]).bytes == words(0))
    }

    @Test func mountList() {
        let encoded = MountCodec.encodeMountList([("h", "/d")])
        #expect(encoded.bytes == words(1, 1) + [UInt8(ascii: "h"), 0, 0, 0] + words(2) + Array("/d".utf8) + [0, 0] + words(0))
    }

    @Test func entriesAClientCouldNotDecodeAreLeftOut() throws {
        let longName = String(repeating: "h", count: 256)
        let longPath = "/" + String(repeating: "p", count: 1024)
        let dump = MountCodec.encodeMountList([(longName, "/d"), ("h", longPath), ("ok", "/ok")])
        #expect(try MountCodec.decodeMountList(dump.bytes).map { "\($0.host):\($0.directory)" } == ["ok:/ok"])
        #expect(dump.notes.count == 2)
        let exports = MountCodec.encodeExports([(longPath, ["g"]), ("/e", [longName, "g"])])
        let decoded = try? MountCodec.decodeExports(exports.bytes)
        #expect(decoded?.map(\.directory) == ["/e"])
        #expect(decoded?.first?.groups == ["g"])
        #expect(exports.notes.count == 2)
    }

    @Test func roundTrips() throws {
        let exports = FakeMountService.exports
        let decoded = try MountCodec.decodeExports(MountCodec.encodeExports(exports).bytes)
        #expect(decoded.map(\.directory) == exports.map(\.directory))
        #expect(decoded.map(\.groups) == exports.map(\.groups))
        let result = MountResult.ok(fileHandle: Array(0..<64), flavors: [1, 6, 390005])
        #expect(try MountCodec.decodeMount(MountCodec.encodeMount(result, version: 3).bytes, version: 3) == result)
        #expect(try MountCodec.decodeMount(words(13), version: 1) == .error(.access))
    }

    @Test func pathArgument() {
        #expect(MountCodec.encodePath("/srv") == words(4) + Array("/srv".utf8))
        #expect(MountCodec.encodePath("/ab") == words(3) + Array("/ab".utf8) + [0])
    }

    /// The server's dirpath decoder (C glue, libtirpc's XDR) without a transport.
    @Test func dirpathArgumentFromBytes() {
        #expect(MountDispatcher.pathArgument(decoding: MountCodec.encodePath("/srv/vm5")) == .path("/srv/vm5"))
        #expect(MountDispatcher.pathArgument(decoding: words(1025) + [UInt8](repeating: 0x61, count: 1028)) == .tooLong(length: 1025))
        #expect(MountDispatcher.pathArgument(decoding: words(8) + Array("/srv".utf8)) == .garbage)
        #expect(MountDispatcher.pathArgument(decoding: words(3) + [0x2f, 0, 0x61, 0]) == .unusable)
        #expect(MountDispatcher.pathArgument(decoding: []) == .garbage)
    }

    @Test(arguments: [
        [UInt8](),                       // nothing
        [0, 0, 0, 1],                    // "more" and then nothing
        [0, 0, 0, 1, 0, 0, 0, 9, 0x2f],  // string shorter than announced
        [0, 0, 0, 2],                    // boolean 2
        [0, 0, 0, 0, 0, 0, 0, 0],        // bytes after the end
    ])
    func malformedListsThrow(bytes: [UInt8]) {
        #expect(throws: XDRDecodingError.self) { try MountCodec.decodeExports(bytes) }
    }

    // Found by fuzz-mount-xdr: a v1 reply with v3's NOTSUPP (10004) or
    // SERVERFAULT (10006) decoded, though fhstatus cannot carry them (the
    // server side writes both as EIO), so decoding and encoding disagreed.
    @Test(arguments: [UInt32(10004), 10006])
    func version3OnlyStatusesAreNotVersion1(status: UInt32) throws {
        #expect(throws: XDRDecodingError.self) { try MountCodec.decodeMount(self.words(status), version: 1) }
        #expect(try MountCodec.decodeMount(words(status), version: 3) == .error(MountStatus(rawValue: Int32(status))!))
    }

    @Test func v3HandleOverTheLimitDoesNotDecode() {
        #expect(throws: XDRDecodingError.self) {
            try MountCodec.decodeMount(self.words(0, 65) + [UInt8](repeating: 0, count: 68) + self.words(0), version: 3)
        }
    }
}

@Suite struct SocketAddressTests {
    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:db8::5", "2001:db8::5"),
        ("::ffff:0:192.0.2.1", "::ffff:0:c000:201"), // not v4-mapped (RFC 2765 translated)
    ])
    func numericTextAndUnmapping(input: String, host: String) throws {
        let address = try #require(SocketAddress(numericHost: input, port: 635))
        #expect(address.numericHost == host)
        #expect(address.ipPort == 635)
    }

    @Test(arguments: ["localhost", "", "1.2.3", "::g"])
    func onlyNumericAddresses(input: String) {
        #expect(SocketAddress(numericHost: input, port: 1) == nil)
    }

    @Test func rpcbindEntriesOfADualStackEndpoint() throws {
        let local = SocketAddress.anyInet6(port: 20048)
        let entries = RpcbindEntry.entries(for: local, transport: .tcp, versions: [1, 3], dualStack: true)
        #expect(entries.map { "\($0.version) \($0.netid) \($0.address.description)" } == [
            "1 tcp6 [::]:20048", "1 tcp 0.0.0.0:20048", "3 tcp6 [::]:20048", "3 tcp 0.0.0.0:20048",
        ])
        let v4 = try #require(SocketAddress(numericHost: "127.0.0.1", port: 700))
        #expect(RpcbindEntry.entries(for: v4, transport: .udp, versions: [3], dualStack: false).map(\.description)
            == ["(mountd v3, udp, 127.0.0.1:700)"])
    }
}
