import FuzzSupport
import NFSAdmin

/// The bridge's status file as `nfsd-control status` reads it
/// (BridgeStatusFile.read: the bytes as UTF-8, then BridgeStatus.parse).
/// Checks: what parses, written back (BridgeStatus.text, what the bridge
/// writes), parses to the same status, and writing that again gives the
/// same text.
@main
enum FuzzBridgeStatus {
    static func main() { FuzzHarness.run(fuzzOne) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: FuzzHarness.bytes(data, size), as: UTF8.self)
    guard let status = try? BridgeStatus.parse(text) else { return 0 }
    let written = status.text
    let again: BridgeStatus
    do {
        again = try BridgeStatus.parse(written)
    } catch {
        FuzzHarness.fail("status parsed, but what it writes does not: \(error)\n\(written)")
    }
    if again != status { FuzzHarness.fail("status changed in the round trip:\n\(status)\n\(again)\n\(written)") }
    if again.text != written { FuzzHarness.fail("status text is not a fixpoint:\n\(written)\n---\n\(again.text)") }
    return 0
}
