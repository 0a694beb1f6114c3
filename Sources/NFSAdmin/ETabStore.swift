import NFSExports

/// /var/lib/nfs/etab: read and written under `.etab.lock` (the lock
/// nfs-utils takes), replaced atomically and only when it changed.
public struct ETabStore: Sendable {
    public var paths: SystemPaths
    public var features: ExportFeatures

    public init(paths: SystemPaths, features: ExportFeatures) {
        self.paths = paths
        self.features = features
    }

    /// Takes the etab lock; hold the returned lock across read-modify-write.
    public func lock() throws(SystemError) -> FileLock {
        try FileLock(path: paths.etabLock)
    }

    /// The current table (empty if there is no etab yet).
    public func read() throws(SystemError) -> (entries: [ExportEntry], diagnostics: [Diagnostic]) {
        guard let bytes = try FileSystem.readIfExists(paths.etab) else { return ([], []) }
        let output = ExportsParser(features: features, mode: .etab).parse(bytes, file: "/var/lib/nfs/etab")
        return (output.entries, output.diagnostics)
    }

    /// Writes the table; returns whether the file changed.
    @discardableResult
    public func write(_ table: ExportTable) throws(SystemError) -> Bool {
        // An exportfs killed before its rename left its temporary here.
        FileSystem.removeStaleTemporaries(beside: paths.etab)
        return try FileSystem.replaceIfChanged(paths.etab, with: ETabFormat.bytes(table.orderedEntries, features: features))
    }
}
