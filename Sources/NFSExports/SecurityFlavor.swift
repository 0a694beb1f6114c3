/// An RPC security flavor as exports(5) names it. The spelling is kept
/// because etab repeats it (`sec=unix` stays `unix`), while equality for
/// de-duplication is by the pseudoflavor number, as in nfs-utils.
public struct SecurityFlavor: Sendable, Hashable {
    public let name: String
    public let number: UInt32

    public static let known: [SecurityFlavor] = [
        SecurityFlavor(name: "krb5", number: 390003),
        SecurityFlavor(name: "krb5i", number: 390004),
        SecurityFlavor(name: "krb5p", number: 390005),
        SecurityFlavor(name: "unix", number: 1),
        SecurityFlavor(name: "sys", number: 1),
        SecurityFlavor(name: "null", number: 0),
        SecurityFlavor(name: "none", number: 0),
    ]

    public static let sys = SecurityFlavor(name: "sys", number: 1)

    public init?(named name: String) {
        guard let flavor = SecurityFlavor.known.first(where: { $0.name == name }) else { return nil }
        self = flavor
    }

    private init(name: String, number: UInt32) {
        self.name = name
        self.number = number
    }
}

/// One `sec=` flavor of an export with the per-flavor flags that apply to it.
public struct SecurityEntry: Sendable, Hashable {
    public var flavor: SecurityFlavor
    public var flags: ExportFlags

    public init(flavor: SecurityFlavor, flags: ExportFlags) {
        self.flavor = flavor
        self.flags = flags
    }
}

/// Transport-layer security policies (`xprtsec=`), kernel numbering.
public enum TransportSecurity: String, Sendable, Hashable, CaseIterable {
    case none
    case tls
    case mtls

    public var kernelValue: Int {
        switch self {
        case .none: 1
        case .tls: 2
        case .mtls: 4
        }
    }
}

/// `reexport=` policies for re-exporting NFS mounts.
public enum ReexportPolicy: String, Sendable, Hashable, CaseIterable {
    case autoFsidnum = "auto-fsidnum"
    case predefinedFsidnum = "predefined-fsidnum"
    case none
}
