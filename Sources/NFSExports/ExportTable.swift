/// The export table: every (client, path) pair once, in the order etab is
/// written (client class, then the order read), answering "which entry
/// applies to this client for this path".
public struct ExportTable: Sendable {
    /// One list per client class, each in the order read.
    private var buckets: [[ExportEntry]] = Array(repeating: [], count: ClientSpec.Kind.allCases.count)
    /// (client name, path) -> position in its bucket.
    private var index: [Key: Int] = [:]
    /// Entries dropped because an earlier one named the same client and
    /// path (nfs-utils reports these as errors and exits 1).
    public private(set) var duplicates = 0

    public init() {}

    /// Every entry, in etab order.
    public var entries: [ExportEntry] { buckets.flatMap { $0 } }

    /// Every entry, in etab order, without copying them into one array
    /// (10,000 exports with three clients each are about 10 MB of entries).
    public var orderedEntries: FlattenSequence<[[ExportEntry]]> { buckets.joined() }

    public var count: Int { index.count }

    /// Builds the table from entries in read order. The first entry for a
    /// client name and path wins; later ones are reported, as nfs-utils does.
    public init(_ list: [ExportEntry], diagnostics: inout [Diagnostic]) {
        index.reserveCapacity(list.count)
        for entry in list {
            let key = Key(client: entry.clientName, path: entry.path)
            if let position = index[key] {
                let first = buckets[entry.client.kind.rawValue][position]
                let same = first.options == entry.options
                duplicates += 1
                diagnostics.append(Diagnostic(.warning, entry.location,
                    same ? "duplicated export entry \(entry.displayName) (first at \(first.location)); ignored"
                         : "duplicated export entry \(entry.displayName) with different options (first at \(first.location)); the first one is used",
                    hint: "remove one of them"))
                continue
            }
            append(entry, key: key)
        }
        if buckets.contains(where: { $0.contains { $0.options.reexport != .none } }) {
            for entry in entries where entry.options.reexport == .none && entry.options.flags.contains(.fsid) {
                diagnostics.append(Diagnostic(.error, entry.location,
                    "fsid= on \(entry.displayName) is not allowed while another export uses reexport=",
                    hint: "with reexport= in use, give every export a UUID fsid or none"))
            }
        }
    }

    private struct Key: Hashable {
        var client: String
        var path: String
    }

    private mutating func append(_ entry: ExportEntry, key: Key) {
        let kind = entry.client.kind.rawValue
        index[key] = buckets[kind].count
        buckets[kind].append(entry)
    }

    /// The entry for exactly this client name and path.
    public func entry(clientName: String, path: String) -> ExportEntry? {
        guard let position = index[Key(client: clientName, path: path)] else { return nil }
        for bucket in buckets where position < bucket.count {
            let entry = bucket[position]
            if entry.clientName == clientName && entry.path == path { return entry }
        }
        return nil
    }

    /// Replaces or adds one entry (exportfs -o / host:/path), keyed by
    /// client name and path.
    public mutating func upsert(_ entry: ExportEntry) {
        let key = Key(client: entry.clientName, path: entry.path)
        let kind = entry.client.kind.rawValue
        if let position = index[key] {
            if position < buckets[kind].count, buckets[kind][position].clientName == entry.clientName,
               buckets[kind][position].path == entry.path {
                buckets[kind][position] = entry
                return
            }
            remove(clientName: entry.clientName, path: entry.path)
        }
        append(entry, key: key)
    }

    /// Removes the entry for a client name and path; returns how many.
    @discardableResult
    public mutating func remove(clientName: String, path: String) -> Int {
        let key = Key(client: clientName, path: path)
        guard index.removeValue(forKey: key) != nil else { return 0 }
        for kind in buckets.indices {
            guard let position = buckets[kind].firstIndex(where: { $0.clientName == clientName && $0.path == path }) else { continue }
            buckets[kind].remove(at: position)
            for later in position..<buckets[kind].count {
                let moved = buckets[kind][later]
                index[Key(client: moved.clientName, path: moved.path)] = later
            }
            return 1
        }
        return 0
    }

    public mutating func removeAll() {
        buckets = Array(repeating: [], count: ClientSpec.Kind.allCases.count)
        index = [:]
    }

    /// The entry that applies to `client` for exactly `path`: the first
    /// matching entry of the most specific client class.
    public func entry(for client: ClientIdentity, path: String, nameService: some NameService) -> ExportEntry? {
        // Buckets are in precedence order: the first match wins.
        for bucket in buckets {
            for entry in bucket where entry.path == path && entry.client.matches(client, nameService: nameService) {
                return entry
            }
        }
        return nil
    }

    /// Every export `client` may use, one per path, by the same rule.
    public func exports(for client: ClientIdentity, nameService: some NameService) -> [ExportEntry] {
        var byPath: [String: ExportEntry] = [:]
        var order: [String] = []
        for bucket in buckets {
            for entry in bucket where entry.client.matches(client, nameService: nameService) {
            if let existing = byPath[entry.path] {
                if entry.client.kind < existing.client.kind { byPath[entry.path] = entry }
            } else {
                byPath[entry.path] = entry
                order.append(entry.path)
            }
            }
        }
        return order.compactMap { byPath[$0] }
    }
}
