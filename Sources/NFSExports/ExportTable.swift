/// The export table: every (client, path) pair once, in the order etab is
/// written (client class, then the order read), answering "which entry
/// applies to this client for this path".
public struct ExportTable: Sendable {
    public private(set) var entries: [ExportEntry]
    /// Entries dropped because an earlier one for the same client and path
    /// had different options (nfs-utils exits 1 for these).
    public private(set) var conflictingDuplicates = 0

    public init() { entries = [] }

    /// Builds the table from entries in read order. The first entry for a
    /// client name and path wins; later ones are reported, as nfs-utils does.
    public init(_ list: [ExportEntry], diagnostics: inout [Diagnostic]) {
        entries = []
        var seen: [Key: Int] = [:]
        var kept: [ExportEntry] = []
        kept.reserveCapacity(list.count)
        seen.reserveCapacity(list.count)
        for entry in list {
            let key = Key(client: entry.clientName, path: entry.path)
            if let index = seen[key] {
                let first = kept[index]
                let same = first.options == entry.options
                if !same { conflictingDuplicates += 1 }
                diagnostics.append(Diagnostic(.warning, entry.location,
                    same ? "duplicated export entry \(entry.displayName) (first at \(first.location)); ignored"
                         : "duplicated export entry \(entry.displayName) with different options (first at \(first.location)); the first one is used",
                    hint: "remove one of them"))
                continue
            }
            seen[key] = kept.count
            kept.append(entry)
        }
        if kept.contains(where: { $0.options.reexport != .none }) {
            for entry in kept where entry.options.reexport == .none && entry.options.flags.contains(.fsid) {
                diagnostics.append(Diagnostic(.error, entry.location,
                    "fsid= on \(entry.displayName) is not allowed while another export uses reexport=",
                    hint: "with reexport= in use, give every export a UUID fsid or none"))
            }
        }
        // Stable sort by client class.
        entries = kept.enumerated().sorted { a, b in
            a.element.client.kind != b.element.client.kind ? a.element.client.kind < b.element.client.kind : a.offset < b.offset
        }.map(\.element)
    }

    private struct Key: Hashable {
        var client: String
        var path: String
    }

    /// Replaces or adds one entry (exportfs -o / host:/path), keyed by
    /// client name and path.
    public mutating func upsert(_ entry: ExportEntry) {
        if let index = entries.firstIndex(where: { $0.clientName == entry.clientName && $0.path == entry.path }) {
            entries[index] = entry
        } else {
            let insertAt = entries.firstIndex(where: { $0.client.kind > entry.client.kind }) ?? entries.endIndex
            entries.insert(entry, at: insertAt)
        }
    }

    /// Removes the entries for a client name and path; returns how many.
    @discardableResult
    public mutating func remove(clientName: String, path: String) -> Int {
        let before = entries.count
        entries.removeAll { $0.clientName == clientName && $0.path == path }
        return before - entries.count
    }

    public mutating func removeAll() { entries.removeAll() }

    /// The entry that applies to `client` for exactly `path`: the first
    /// matching entry of the most specific client class.
    public func entry(for client: ClientIdentity, path: String, nameService: some NameService) -> ExportEntry? {
        var best: ExportEntry? = nil
        for entry in entries where entry.path == path && entry.client.matches(client, nameService: nameService) {
            if best == nil || entry.client.kind < best!.client.kind { best = entry }
            if entry.client.kind == .host { break }
        }
        return best
    }

    /// Every export `client` may use, one per path, by the same rule.
    public func exports(for client: ClientIdentity, nameService: some NameService) -> [ExportEntry] {
        var byPath: [String: ExportEntry] = [:]
        var order: [String] = []
        for entry in entries where entry.client.matches(client, nameService: nameService) {
            if let existing = byPath[entry.path] {
                if entry.client.kind < existing.client.kind { byPath[entry.path] = entry }
            } else {
                byPath[entry.path] = entry
                order.append(entry.path)
            }
        }
        return order.compactMap { byPath[$0] }
    }
}
