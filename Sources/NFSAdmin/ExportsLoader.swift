import NFSExports

/// Reads the configured exports files and turns them into an export table
/// the way exportfs does: parse every file (/etc/exports, then
/// /etc/exports.d/*.exports in version order), follow symlinks in paths,
/// name clients, drop duplicates.
public struct ExportsLoader: Sendable {
    public var paths: SystemPaths
    public var features: ExportFeatures

    public init(paths: SystemPaths, features: ExportFeatures) {
        self.paths = paths
        self.features = features
    }

    /// The files read by default, in order. /etc/exports may be missing.
    public func configuredFiles() throws(SystemError) -> [String] {
        var files: [String] = []
        if FileSystem.exists(paths.exportsFile) { files.append(paths.exportsFile) }
        if let names = try FileSystem.directoryEntries(paths.exportsDirectory) {
            for name in names where name.hasSuffix(".exports") && name.count > ".exports".count {
                files.append(paths.exportsDirectory + "/" + name)
            }
        }
        return files
    }

    /// Parses the files; the names in diagnostics are the paths without the
    /// test root, as an administrator knows them.
    public func parse(files: [String]) -> ExportsParser.Output {
        let parser = ExportsParser(features: features, mode: .exportsFile)
        var output = ExportsParser.Output(entries: [], diagnostics: [])
        for file in files {
            let shown = displayName(file)
            do {
                let bytes = try FileSystem.read(file)
                let parsed = parser.parse(bytes, file: shown)
                output.entries += parsed.entries
                output.diagnostics += parsed.diagnostics
            } catch {
                output.diagnostics.append(Diagnostic(.error, SourceLocation(file: shown, line: 0, column: 0),
                                                     "cannot read: \(error.errnoName)"))
            }
        }
        return output
    }

    /// Real paths and client names, then the table.
    public func table(from entries: [ExportEntry], diagnostics: inout [Diagnostic]) -> ExportTable {
        ExportTable(resolve(entries, diagnostics: &diagnostics), diagnostics: &diagnostics)
    }

    public func resolve(_ entries: [ExportEntry], diagnostics: inout [Diagnostic]) -> [ExportEntry] {
        var realPaths: [String: String] = [:]
        var resolver = RealPathCache()
        let withRealPaths = entries.map { entry -> ExportEntry in
            var entry = entry
            if let known = realPaths[entry.path] {
                entry.path = known
            } else {
                let real = resolver.resolve(paths.underRoot(entry.path)).map { paths.unrooted($0) } ?? entry.path
                realPaths[entry.path] = real
                entry.path = real
            }
            return entry
        }
        return ClientNaming.unify(withRealPaths, resolve: HostResolver.resolve, diagnostics: &diagnostics)
    }

    func displayName(_ file: String) -> String { paths.unrooted(file) }
}
