import MountdCore
import NFSExports
import Testing
@testable import Mountd

@Suite("mountd: what a new etab takes away")
struct RevokedExportsTests {
    let features = ExportFeatures.assumedWithoutKernel

    func authority(_ exports: String) -> ExportAuthority {
        ExportAuthority(table: table(exports), features: features)
    }

    func table(_ exports: String) -> ExportTable {
        var diagnostics: [Diagnostic] = []
        return ExportTable(ExportsParser(features: features).parse(exports, file: "/etc/exports").entries, diagnostics: &diagnostics)
    }

    @Test("an export removed, or its options changed, is revoked; one added, or lines moved, is not")
    func revoked() {
        let old = authority("/srv/a 10.0.0.0/8(rw)\n/srv/b vsock:5(rw)\n")
        #expect(MountdDaemon.revoked(from: old, to: table("/srv/a 10.0.0.0/8(rw)\n"), features: features) == "vsock:5:/srv/b")
        #expect(MountdDaemon.revoked(from: old, to: table("/srv/a 10.0.0.0/8(rw)\n/srv/b vsock:5(ro)\n"), features: features) == "vsock:5:/srv/b")
        #expect(MountdDaemon.revoked(from: old, to: table("\n/srv/b vsock:5(rw)\n/srv/a 10.0.0.0/8(rw)\n/srv/c *(ro)\n"), features: features) == nil)
        #expect(MountdDaemon.revoked(from: authority(""), to: table("/srv/a *(rw)\n"), features: features) == nil)
    }
}
