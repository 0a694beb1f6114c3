/// How an export identifies its filesystem to clients (`fsid=`).
public enum FilesystemID: Sendable, Hashable {
    /// `fsid=N` (`fsid=root` is 0). Kept as the 32-bit value nfs-utils
    /// stores; etab prints it as a signed int, as nfs-utils does.
    case number(UInt32)
    /// `fsid=<uuid>`: 32 hex digits, punctuation allowed; kept as written.
    case uuid(String)

    /// The 16 bytes of a UUID fsid, ignoring punctuation.
    public var uuidBytes: [UInt8]? {
        guard case .uuid(let text) = self else { return nil }
        let digits = text.compactMap { $0.hexDigitValue }
        guard digits.count == 32 else { return nil }
        return stride(from: 0, to: 32, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
    }
}

/// `refer=` / `replicas=` (NFSv4 fs_locations).
public enum FilesystemLocations: Sendable, Hashable {
    case refer(String)
    case replicas(String)
}

/// Everything an exports(5) option list can say about one export to one
/// client. Built by `ExportOptionsParser`, which follows nfs-utils'
/// state machine exactly so that etab output matches byte for byte.
public struct ExportOptions: Sendable, Hashable {
    public var flags: ExportFlags = .defaults
    public var anonUID: Int32 = 65534
    public var anonGID: Int32 = 65534
    public var fsidNumber: UInt32? = nil
    public var fsidUUID: String? = nil
    public var mountpoint: String? = nil
    public var locations: FilesystemLocations? = nil
    public var security: [SecurityEntry] = []
    public var transportSecurity: [TransportSecurity] = []
    public var reexport: ReexportPolicy = .none

    public init() {}

    public var isReadOnly: Bool { flags.contains(.readOnly) }

    /// The filesystem identity the options give, if any.
    public var filesystemID: FilesystemID? {
        if let fsidUUID { return .uuid(fsidUUID) }
        if flags.contains(.fsid), let fsidNumber { return .number(fsidNumber) }
        return nil
    }

    /// The security flavors with their effective per-flavor flags; `sys`
    /// with the export's flags when none was named.
    public var effectiveSecurity: [SecurityEntry] {
        security.isEmpty ? [SecurityEntry(flavor: .sys, flags: flags)] : security
    }
}
