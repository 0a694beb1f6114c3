import FuzzSupport
@testable import MountProtocol

/// MOUNT protocol XDR from the network. The first byte picks what the rest
/// is: the dirpath argument of MNT/UMNT as mountd's server decodes it
/// (through the C glue and libtirpc's XDR), or a MNT v1/v3, DUMP or EXPORT
/// result as the client decodes it. Checks: what decodes, re-encoded by
/// MountCodec, decodes to the same value and is as long as the input (the
/// only freedom XDR leaves is the content of padding bytes).
@main
enum FuzzMountXDR {
    static func main() { FuzzHarness.run(fuzzOne) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var bytes = FuzzHarness.bytes(data, size)
    guard let selector = bytes.first else { return 0 }
    bytes.removeFirst()
    switch selector % 5 {
    case 0: dirpath(bytes)
    case 1: mountResult(bytes, version: 1)
    case 2: mountResult(bytes, version: 3)
    case 3:
        guard let list = try? MountCodec.decodeMountList(bytes) else { return 0 }
        let encoded = MountCodec.encodeMountList(list)
        let again = try? MountCodec.decodeMountList(encoded.bytes)
        guard let again, again.map(\.host) == list.map(\.host), again.map(\.directory) == list.map(\.directory),
              encoded.bytes.count == bytes.count, encoded.notes.isEmpty
        else { FuzzHarness.fail("DUMP result \(list) re-encodes to \(encoded)") }
    default:
        guard let list = try? MountCodec.decodeExports(bytes) else { return 0 }
        let encoded = MountCodec.encodeExports(list)
        let again = try? MountCodec.decodeExports(encoded.bytes)
        guard let again, again.map(\.directory) == list.map(\.directory), again.map(\.groups) == list.map(\.groups),
              encoded.bytes.count == bytes.count, encoded.notes.isEmpty
        else { FuzzHarness.fail("EXPORT result \(list) re-encodes to \(encoded)") }
    }
    return 0
}

private func dirpath(_ bytes: [UInt8]) {
    let argument = MountDispatcher.pathArgument(decoding: bytes)
    switch argument {
    case .path(let path):
        if path.utf8.count > MountProgram.maxPathLength { FuzzHarness.fail("path of \(path.utf8.count) bytes accepted") }
        if path.utf8.contains(0) { FuzzHarness.fail("path with a NUL accepted") }
        let encoded = MountCodec.encodePath(path)
        let again = MountDispatcher.pathArgument(decoding: encoded)
        if again != argument { FuzzHarness.fail("dirpath \(path.debugDescription) re-encoded decodes as \(again)") }
        if encoded.count > bytes.count || Array(encoded.prefix(4 + path.utf8.count)) != Array(bytes.prefix(4 + path.utf8.count)) {
            FuzzHarness.fail("dirpath \(path.debugDescription) re-encodes to other bytes")
        }
    case .tooLong(let length):
        if length <= MountProgram.maxPathLength { FuzzHarness.fail("a path of \(length) bytes called too long") }
    case .unusable, .garbage:
        break
    }
}

private func mountResult(_ bytes: [UInt8], version: UInt32) {
    guard let result = try? MountCodec.decodeMount(bytes, version: version) else { return }
    let encoded = MountCodec.encodeMount(result, version: version)
    let again = try? MountCodec.decodeMount(encoded.bytes, version: version)
    if again != result || encoded.bytes.count != bytes.count || !encoded.notes.isEmpty {
        FuzzHarness.fail("MNT v\(version) result \(result) re-encodes to \(encoded), decoding as \(String(describing: again))")
    }
}
