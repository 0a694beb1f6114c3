/// What resolving a host name gave: its canonical name and addresses.
public struct HostResolution: Sendable, Hashable {
    public var canonicalName: String
    public var addresses: [IPAddress]

    public init(canonicalName: String, addresses: [IPAddress]) {
        self.canonicalName = canonicalName
        self.addresses = addresses
    }
}

/// Gives every entry the client name nfs-utils would write to etab.
///
/// Single hosts (names and literal addresses) that share an address are one
/// client, named after the first one read; other specs are one client per
/// case-insensitive spelling. Hosts that do not resolve are dropped with a
/// warning, as nfs-utils does. Pure: resolution is the caller's function.
public enum ClientNaming {
    public static func unify(_ entries: [ExportEntry], resolve: (String) -> HostResolution?,
                             diagnostics: inout [Diagnostic]) -> [ExportEntry] {
        var hostClients: [(name: String, addresses: Set<IPAddress>)] = []
        var byAddress: [IPAddress: Int] = [:]
        var otherClients: [String: String] = [:]
        var resolutions: [String: HostResolution?] = [:]
        var output: [ExportEntry] = []
        output.reserveCapacity(entries.count)

        for var entry in entries {
            switch entry.client {
            case .host, .address:
                let resolution: HostResolution?
                if case .address(let address) = entry.client {
                    // Literal addresses name themselves.
                    resolution = HostResolution(canonicalName: entry.clientName, addresses: [address])
                } else if let cached = resolutions[entry.clientName] {
                    resolution = cached
                } else {
                    resolution = resolve(entry.clientName)
                    resolutions[entry.clientName] = resolution
                }
                guard let resolution, !resolution.addresses.isEmpty else {
                    diagnostics.append(Diagnostic(.warning, entry.location,
                                                  "failed to resolve \(entry.clientName); \(entry.displayName) is not exported",
                                                  hint: "check the name, DNS or /etc/hosts"))
                    continue
                }
                if let index = resolution.addresses.lazy.compactMap({ byAddress[$0.unmapped] }).first {
                    entry.clientName = hostClients[index].name
                } else {
                    let index = hostClients.count
                    let addresses = Set(resolution.addresses.map(\.unmapped))
                    hostClients.append((resolution.canonicalName, addresses))
                    for address in addresses { byAddress[address] = index }
                    entry.clientName = resolution.canonicalName
                }
            case .vsock, .vsockRange, .vsockAny:
                entry.clientName = entry.client.canonicalText
            default:
                let key = entry.clientName.lowercased()
                if let first = otherClients[key] {
                    entry.clientName = first
                } else {
                    otherClients[key] = entry.clientName
                }
            }
            output.append(entry)
        }
        return output
    }
}
