import NFSExports

/// Answers the kernel's questions from the export table: which domain an
/// address belongs to, what a domain may do with a path, which path a
/// filehandle's fsid names. Pure: filesystem facts come from `info`.
///
/// A domain is the sorted, comma-joined list of the client names of every
/// entry that matches an address (nfs-utils' scheme), so addresses with the
/// same rights share one domain, and a domain names exactly the entries it
/// may use.
public struct ExportAuthority: Sendable {
    public let table: ExportTable
    public let features: ExportFeatures
    /// Flags of the NFSv4 pseudo-filesystem directories (nfs-utils' v4root).
    public static let pseudoFlags: ExportFlags = [.readOnly, .rootSquash, .noSubtreeCheck, .noAuthNLM, .v4Root]

    /// Entries by client name (as domains spell it), with their position
    /// in the table (ties between equal client classes go to the first).
    private let byName: [String: [(position: Int, entry: ExportEntry)]]
    /// Single-address and single-CID specs, found by lookup instead of a
    /// scan: with thousands of exports these are most of the table.
    private let namesByAddress: [IPAddress: Set<String>]
    private let namesByCID: [VsockCID: Set<String>]
    /// Everything else (host names, networks, wildcards, netgroups, `*`,
    /// vsock ranges), matched one by one; one entry per client name.
    private let scanned: [ExportEntry]

    public init(table: ExportTable, features: ExportFeatures) {
        self.table = table
        self.features = features
        var byName: [String: [(position: Int, entry: ExportEntry)]] = [:]
        var namesByAddress: [IPAddress: Set<String>] = [:]
        var namesByCID: [VsockCID: Set<String>] = [:]
        var scanned: [ExportEntry] = []
        for (position, entry) in table.entries.enumerated() {
            let name = Self.domainName(entry)
            if byName[name] == nil {
                switch entry.client {
                case .address(let address): namesByAddress[address.unmapped, default: []].insert(name)
                case .vsock(let cid): namesByCID[cid, default: []].insert(name)
                default: scanned.append(entry)
                }
            }
            byName[name, default: []].append((position, entry))
        }
        self.byName = byName
        self.namesByAddress = namesByAddress
        self.namesByCID = namesByCID
        self.scanned = scanned
    }

    static func domainName(_ entry: ExportEntry) -> String {
        entry.clientName.isEmpty ? "*" : entry.clientName
    }

    // MARK: auth.unix.ip

    public func domain(for client: ClientIdentity, nameService: some NameService) -> String? {
        var names = Set<String>()
        switch client.address {
        case .ip(let address): names.formUnion(namesByAddress[address.unmapped] ?? [])
        case .vsock(let cid): names.formUnion(namesByCID[cid] ?? [])
        }
        for entry in scanned where entry.client.matches(client, nameService: nameService) {
            names.insert(Self.domainName(entry))
        }
        guard !names.isEmpty else { return nil }
        return names.sorted().joined(separator: ",")
    }

    /// Entries a domain may use, one per path, by client-class precedence.
    public func exports(forDomain domain: String) -> [String: ExportEntry] {
        var best: [String: (position: Int, entry: ExportEntry)] = [:]
        for name in Set(domain.split(separator: ",").map(String.init)) {
            for candidate in byName[name] ?? [] {
                if let existing = best[candidate.entry.path],
                   (existing.entry.client.kind, existing.position) < (candidate.entry.client.kind, candidate.position) { continue }
                best[candidate.entry.path] = candidate
            }
        }
        return best.mapValues(\.entry)
    }

    // MARK: the NFSv4 pseudo filesystem

    /// The root of a domain's NFSv4 namespace: its fsid=0 export, else "/".
    public func v4Root(exports: [String: ExportEntry]) -> String {
        exports.values
            .filter { $0.options.flags.contains(.fsid) && $0.options.fsidNumber == 0 }
            .map(\.path).min() ?? "/"
    }

    /// Directories that lead from the v4 root to the domain's exports and
    /// are not exported themselves. Nothing that leads only to another
    /// domain's exports is here.
    public func pseudoPaths(exports: [String: ExportEntry]) -> Set<String> {
        let root = v4Root(exports: exports)
        var result = Set<String>()
        for path in exports.keys where PathName.isBelow(path, root) && path != root {
            var ancestor = PathName.directory(of: path)
            while true {
                if exports[ancestor] == nil { result.insert(ancestor) }
                if ancestor == root || ancestor == "/" { break }
                ancestor = PathName.directory(of: ancestor)
            }
        }
        if root == "/" && exports["/"] == nil && !exports.isEmpty { result.insert("/") }
        return result
    }

    // MARK: nfsd.export

    public enum ExportDecision: Sendable, Equatable {
        case export(ExportAnswer)
        case pseudo(ExportAnswer)
        case denied
    }

    public func export(domain: String, path: String, info: (String) -> FilesystemInfo?) -> ExportDecision {
        let exports = exports(forDomain: domain)
        if let entry = exports[path] {
            let fs = info(path)
            if entry.options.mountpoint != nil {
                let point = entry.options.mountpoint!.isEmpty ? path : entry.options.mountpoint!
                let pointInfo = point == path ? fs : info(point)
                guard pointInfo?.isMountPoint == true else { return .denied }
            }
            return .export(answer(for: entry, info: fs))
        }
        if pseudoPaths(exports: exports).contains(path) {
            return .pseudo(pseudoAnswer(path: path, info: info(path)))
        }
        return .denied
    }

    func answer(for entry: ExportEntry, info: FilesystemInfo?) -> ExportAnswer {
        let options = entry.options
        let hasNumber = options.flags.contains(.fsid)
        var uuid: [UInt8]? = nil
        if let given = options.filesystemID?.uuidBytes {
            uuid = given
        } else if !hasNumber {
            uuid = info?.uuid
        }
        let mask = features.flags.union(.v4Root)
        return ExportAnswer(
            flags: options.flags.intersection(mask),
            anonUID: options.anonUID,
            anonGID: options.anonGID,
            fsid: hasNumber ? (options.fsidNumber ?? 0) : 0,
            uuid: uuid,
            security: options.security.map { ExportAnswer.Security(flavor: $0.flavor.number, flags: $0.flags.intersection(mask)) },
            transportSecurity: options.transportSecurity,
            locations: options.locations.map(Self.locations))
    }

    func pseudoAnswer(path: String, info: FilesystemInfo?) -> ExportAnswer {
        var flags = Self.pseudoFlags
        if path == "/" { flags.insert(.fsid) }
        // As nfs-utils: every flavor may browse the pseudo filesystem.
        let security = [390003, 390004, 390005, 1].map { flavor -> ExportAnswer.Security in
            ExportAnswer.Security(flavor: UInt32(flavor), flags: flavor == 1 ? flags.union(.insecurePort) : flags)
        }
        return ExportAnswer(flags: flags, anonUID: 65534, anonGID: 65534, fsid: 0,
                            uuid: path == "/" ? nil : info?.uuid, security: security,
                            transportSecurity: [], locations: nil)
    }

    /// `refer=/a@h1+h2:/b@h3` -> servers (h1:h2, /a), (h3, /b).
    static func locations(_ value: FilesystemLocations) -> ExportAnswer.Locations {
        let (text, migrated): (String, Bool)
        switch value {
        case .refer(let t): (text, migrated) = (t, true)
        case .replicas(let t): (text, migrated) = (t, false)
        }
        let servers = text.split(separator: ":").compactMap { item -> ExportAnswer.Locations.Server? in
            guard let at = item.firstIndex(of: "@") else { return nil }
            let hosts = item[item.index(after: at)...].split(separator: "+").joined(separator: ":")
            return ExportAnswer.Locations.Server(hosts: hosts, path: String(item[..<at]))
        }
        return ExportAnswer.Locations(servers: servers, migrated: migrated)
    }

    // MARK: nfsd.fh

    /// The path (export or pseudo directory) of `domain` whose filesystem
    /// identity is the request's fsid.
    public func path(for request: FileHandleRequest, info: (String) -> FilesystemInfo?) -> String? {
        let exports = exports(forDomain: request.domain)
        let pseudo = pseudoPaths(exports: exports)
        let candidates = exports.keys.sorted() + pseudo.sorted()
        let bytes = request.fsid
        func u32(_ offset: Int) -> UInt32 {  // host (little-endian) order, as memcpy
            bytes[offset..<offset + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        func u32BigEndian(_ offset: Int) -> UInt32 {
            bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        for path in candidates {
            let entry = exports[path]
            switch request.fsidType {
            case 1:
                let number = u32(0)
                if let entry, entry.options.flags.contains(.fsid), entry.options.fsidNumber == number { return path }
                if entry == nil && path == "/" && number == 0 { return path }
                continue
            default:
                break
            }
            guard let fs = info(path) else { continue }
            let uuid: [UInt8]?
            if let entry {
                uuid = entry.options.filesystemID?.uuidBytes ?? (entry.options.flags.contains(.fsid) ? nil : fs.uuid)
            } else {
                uuid = path == "/" ? nil : fs.uuid
            }
            switch request.fsidType {
            case 0:
                let device = u32BigEndian(0)
                if fs.major == device >> 16, fs.minor == device & 0xffff, UInt32(truncatingIfNeeded: fs.inode) == u32(4) { return path }
            case 2:
                if fs.major == u32BigEndian(0), fs.minor == u32BigEndian(4), UInt32(truncatingIfNeeded: fs.inode) == u32(8) { return path }
            case 3:
                let device = u32(0)
                let major = (device & 0xfff00) >> 8
                let minor = (device & 0xff) | ((device >> 12) & 0xfff00)
                if fs.major == major, fs.minor == minor, UInt32(truncatingIfNeeded: fs.inode) == u32(4) { return path }
            case 4:
                if let uuid, Array(uuid.prefix(4)) == Array(bytes[4..<8]), UInt32(truncatingIfNeeded: fs.inode) == u32(0) { return path }
            case 5:
                if let uuid, Array(uuid.prefix(8)) == Array(bytes[0..<8]) { return path }
            case 6:
                if let uuid, uuid == Array(bytes[0..<16]) { return path }
            case 7:
                let inode = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                if let uuid, uuid == Array(bytes[8..<24]), fs.inode == inode { return path }
            default:
                break
            }
        }
        return nil
    }
}
