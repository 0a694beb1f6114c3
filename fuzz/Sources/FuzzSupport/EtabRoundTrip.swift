import NFSExports

/// The etab round trip both exports targets check.
public enum EtabRoundTrip {
    /// Writes `entries` as etab, reads the text back as etab and writes it
    /// again: the reading finds no error, the same entries, and the second
    /// text is the first.
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
                  meaning(written.options) == meaning(read.options)
            else {
                FuzzHarness.fail("etab entry changed in the round trip:\n\(written)\n\(read)\n\(text)")
            }
        }
        var diagnostics: [Diagnostic] = []
        let again = ETabFormat.text(ExportTable(reread.entries, diagnostics: &diagnostics).entries, features: features)
        if again != text { FuzzHarness.fail("etab is not a fixpoint:\n\(text)\n---\n\(again)") }
    }

    /// etab spells out the security flavor that an exports line leaves
    /// implicit (sec=sys with the export's flags): the same export.
    static func meaning(_ options: ExportOptions) -> ExportOptions {
        var options = options
        options.security = options.effectiveSecurity
        return options
    }
}
