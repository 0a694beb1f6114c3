import FuzzSupport
import MountdCore
import NFSExports

/// The kernel's cache upcall lines as mountd reads them from
/// /proc/net/rpc/<cache>/channel. The first byte picks the cache, the rest
/// is the line (trimmed as CacheChannel.read trims it). Checks:
///  - every word re-encoded (CacheText) decodes to itself;
///  - a request mountd accepts, written back in the channel encoding,
///    parses to the same request, and mountd's reply starts with the
///    request's own words, decoded unchanged;
///  - auth.unix.ip: no address of the guest block gets an IP identity, at
///    the host's nfsd or the bridge's, and a vsock address stays that CID.
@main
enum FuzzCacheUpcall {
    static func main() { FuzzHarness.run(fuzzOne) }
}

private let caches = ["auth.unix.ip", "nfsd.export", "nfsd.fh", "auth.unix.gid"]
private let block = VsockLoopbackMapping.default
private let expiry = 1_800_000_000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var bytes = FuzzHarness.bytes(data, size)
    guard let selector = bytes.first else { return 0 }
    bytes.removeFirst()
    while let last = bytes.last, last == 0x0A || last == 0 { bytes.removeLast() }
    let line = String(decoding: bytes, as: UTF8.self)

    if let words = try? CacheWords.split(line[...]) {
        for word in words {
            let encoded = word.text.map(CacheText.word) ?? CacheText.hexWord(word.binary ?? [])
            let decoded = try? CacheWords.split(encoded[...])
            if decoded != [word] { FuzzHarness.fail("word \(word) encodes as \(encoded.debugDescription), decodes as \(String(describing: decoded))") }
        }
    }

    switch caches[Int(selector) % caches.count] {
    case "auth.unix.ip":
        guard let request = try? AuthUnixIPRequest.parse(line[...]) else { break }
        let again = CacheText.word(request.serviceClass) + " " + CacheText.word(request.addressText)
        expectSame(try? AuthUnixIPRequest.parse(again[...]), request, again)
        let reply = CacheReply.authUnixIP(request, expiry: expiry, domain: "vsock:* 5")
        expectWords(reply, [.text(request.serviceClass), .text(request.addressText), .text("\(expiry)"), .text("vsock:* 5")])
        checkIdentity(request.client)
    case "nfsd.export":
        guard let request = try? ExportRequest.parse(line[...]) else { break }
        let again = CacheText.word(request.domain) + " " + CacheText.word(request.path)
        expectSame(try? ExportRequest.parse(again[...]), request, again)
        expectWords(CacheReply.exportDenied(domain: request.domain, path: request.path, expiry: expiry),
                    [.text(request.domain), .text(request.path), .text("\(expiry)")])
    case "nfsd.fh":
        guard let request = try? FileHandleRequest.parse(line[...]) else { break }
        let again = CacheText.word(request.domain) + " \(request.fsidType) " + CacheText.hexWord(request.fsid)
        expectSame(try? FileHandleRequest.parse(again[...]), request, again)
        expectWords(CacheReply.fileHandle(request, expiry: expiry, path: "/srv/a b"),
                    [.text(request.domain), .text("\(request.fsidType)"), .binary(request.fsid), .text("\(expiry)"), .text("/srv/a b")])
    default:
        guard let request = try? GroupsRequest.parse(line[...]) else { break }
        expectSame(try? GroupsRequest.parse("\(request.uid)"[...]), request, "\(request.uid)")
        expectWords(CacheReply.groups(uid: request.uid, expiry: expiry, gids: [0, 100]),
                    ["\(request.uid)", "\(expiry)", "2", "0", "100"].map { CacheWords.Word.text($0) })
    }
    return 0
}

private func expectSame<T: Equatable>(_ reparsed: T?, _ request: T, _ text: String) {
    if reparsed != request { FuzzHarness.fail("\(request) written as \(text.debugDescription) parses as \(String(describing: reparsed))") }
}

private func expectWords(_ reply: String, _ words: [CacheWords.Word]) {
    guard reply.hasSuffix("\n"), reply.utf8.filter({ $0 == 0x0A }).count == 1 else {
        FuzzHarness.fail("reply \(reply.debugDescription) is not one line")
    }
    let decoded = try? CacheWords.split(reply.dropLast())
    if decoded != words { FuzzHarness.fail("reply \(reply.debugDescription) decodes as \(String(describing: decoded)), not \(words)") }
}

private func checkIdentity(_ client: ClientAddress) {
    for view in [UpcallView.host(guestBlocks: [block]), .bridge(block)] {
        let identity = view.identity(of: client)
        switch (client, identity) {
        case (.vsock(let cid), _):
            if identity != .client(.vsock(cid)) { FuzzHarness.fail("vsock:\(cid) at \(view) is \(identity)") }
        case (.ip(let address), .client(.ip)):
            if block.contains(address) { FuzzHarness.fail("guest-block address \(address) got an IP identity at \(view)") }
            if case .bridge = view { FuzzHarness.fail("\(address) got an IP identity at \(view)") }
        case (.ip(let address), .client(.vsock(let cid))):
            if case .host = view { FuzzHarness.fail("\(address) became vsock:\(cid) at \(view)") }
            if block.address(of: cid) != address.unmapped { FuzzHarness.fail("\(address) became vsock:\(cid) at \(view)") }
        case (.ip, .nobody):
            break
        }
    }
}
