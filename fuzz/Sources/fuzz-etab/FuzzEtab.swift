import FuzzSupport
import NFSExports

/// /var/lib/nfs/etab as exportfs and mountd read it (possibly written by
/// nfs-utils, possibly damaged): whatever it holds, the entries read from
/// it write an etab that reads back to the same entries, byte for byte.
@main
enum FuzzEtab {
    static func main() { FuzzHarness.run(fuzzOne) }
}

private let features = ExportFeatures(flags: ExportFlags(rawValue: 0x3ffff), perFlavorFlags: .perFlavor)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let parsed = ExportsParser(features: features, mode: .etab).parse(FuzzHarness.bytes(data, size), file: "etab")
    var diagnostics: [Diagnostic] = []
    EtabRoundTrip.check(ExportTable(parsed.entries, diagnostics: &diagnostics).entries, features: features)
    return 0
}
