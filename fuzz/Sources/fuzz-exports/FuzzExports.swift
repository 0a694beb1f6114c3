import FuzzSupport
import NFSExports

/// exports(5) text as an administrator writes it (/etc/exports and each
/// /etc/exports.d/*.exports file go through the same parser). Beyond "no
/// crash": the table exportfs would build writes an etab that reads back
/// without an error to the same entries, and writing that again gives the
/// same bytes (parse -> etab -> parse is a fixpoint).
@main
enum FuzzExports {
    static func main() { FuzzHarness.run(fuzzOne) }
}

/// A kernel with every flag and per-flavor flags, and nfs-utils' assumption
/// without a kernel: the etab text differs between them.
private let featureSets = [
    ExportFeatures(flags: ExportFlags(rawValue: 0x3ffff), perFlavorFlags: .perFlavor),
    ExportFeatures.assumedWithoutKernel,
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = FuzzHarness.bytes(data, size)
    for features in featureSets {
        let parsed = ExportsParser(features: features, mode: .exportsFile).parse(bytes, file: "exports")
        var diagnostics: [Diagnostic] = []
        let table = ExportTable(parsed.entries, diagnostics: &diagnostics)
        EtabRoundTrip.check(table.entries, features: features)
    }
    return 0
}
