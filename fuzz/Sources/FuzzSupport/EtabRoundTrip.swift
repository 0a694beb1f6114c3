import NFSExports

/// The etab round trip both exports targets check.
public enum EtabRoundTrip {
    /// Writes `entries` as etab and reads the text back: no error, the same
    /// entries (in what the kernel is told); and etab rewritten from etab
    /// is a fixpoint.
    public static func check(_ entries: [ExportEntry], features: ExportFeatures) {
        let text = ETabFormat.text(entries, features: features)
        let reread = ExportsParser(features: features, mode: .etab).parse(text, file: "etab")
        if reread.diagnostics.hasErrors {
            FuzzHarness.fail("etab we wrote does not read back:\n\(text)\n\(reread.diagnostics.errors)")
        }
        guard reread.entries.count == entries.count else {
            FuzzHarness.fail("etab we wrote has \(entries.count) entries, reads back as \(reread.entries.count):\n\(text)")
        }
        for (written, read) in zip(entries, reread.entries) {
            guard written.path == read.path, written.clientName == read.clientName, written.client == read.client,
                  meaning(written.options, features) == meaning(read.options, features)
            else {
                FuzzHarness.fail("etab entry changed in the round trip:\n\(written)\n\(read)\n\(text)")
            }
        }
        // Rewriting may move a per-flavor flag into the export-wide flags
        // once (see `meaning`); from then on the text is a fixpoint.
        let second = rewrite(text, features: features)
        let third = rewrite(second, features: features)
        if third != second { FuzzHarness.fail("etab is not a fixpoint:\n\(text)\n---\n\(second)\n---\n\(third)") }
    }

    /// etab read and written again, as `exportfs -o` / `-u` do.
    static func rewrite(_ text: String, features: ExportFeatures) -> String {
        var diagnostics: [Diagnostic] = []
        let entries = ExportsParser(features: features, mode: .etab).parse(text, file: "etab").entries
        return ETabFormat.text(ExportTable(entries, diagnostics: &diagnostics).entries, features: features)
    }

    /// What the kernel is told. etab spells out the flavor an exports line
    /// leaves implicit (sec=sys with the export's flags); and with per-flavor
    /// flags (ro, secure, root_squash, all_squash where the kernel has them)
    /// each flavor's own flags are what counts: nfs-utils reads a per-flavor
    /// flag after sec= into the export's flags as well, so an export-wide
    /// all_squash before a "sec=krb5,no_all_squash" group reads back as
    /// no_all_squash, with every flavor's flags unchanged.
    static func meaning(_ options: ExportOptions, _ features: ExportFeatures) -> ExportOptions {
        var options = options
        options.security = options.effectiveSecurity
        options.flags.subtract(features.perFlavorFlags)
        return options
    }
}
