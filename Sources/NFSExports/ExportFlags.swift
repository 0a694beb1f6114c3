/// The NFSEXP_* flag word the kernel's nfsd.export cache takes
/// (include/uapi/linux/nfsd/export.h).
public struct ExportFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readOnly = ExportFlags(rawValue: 0x0001)
    public static let insecurePort = ExportFlags(rawValue: 0x0002)
    public static let rootSquash = ExportFlags(rawValue: 0x0004)
    public static let allSquash = ExportFlags(rawValue: 0x0008)
    public static let async = ExportFlags(rawValue: 0x0010)
    public static let gatheredWrites = ExportFlags(rawValue: 0x0020)
    public static let noReaddirPlus = ExportFlags(rawValue: 0x0040)
    public static let securityLabel = ExportFlags(rawValue: 0x0080)
    public static let noHide = ExportFlags(rawValue: 0x0200)
    public static let noSubtreeCheck = ExportFlags(rawValue: 0x0400)
    public static let noAuthNLM = ExportFlags(rawValue: 0x0800)
    public static let fsid = ExportFlags(rawValue: 0x2000)
    public static let crossMount = ExportFlags(rawValue: 0x4000)
    public static let noACL = ExportFlags(rawValue: 0x8000)
    public static let v4Root = ExportFlags(rawValue: 0x10000)
    public static let pnfs = ExportFlags(rawValue: 0x20000)

    /// ro, sync, wdelay, hide, nocrossmnt, secure, root_squash,
    /// no_all_squash, no_subtree_check, secure_locks, acl, no_pnfs.
    public static let defaults: ExportFlags = [.readOnly, .rootSquash, .gatheredWrites, .noSubtreeCheck]

    /// The flags that may differ between security flavors of one export
    /// (NFSEXP_SECINFO_FLAGS).
    public static let perFlavor: ExportFlags = [.readOnly, .rootSquash, .allSquash, .insecurePort]

    /// What kernels before per-flavor support accept (nfs-utils'
    /// NFSEXP_OLD_SECINFO_FLAGS/OLDFLAGS), used when
    /// /proc/fs/nfsd/export_features cannot be read.
    public static let oldFlags = ExportFlags(rawValue: 0x7E3F)
    public static let oldPerFlavor: ExportFlags = [.readOnly, .rootSquash, .allSquash]
}

/// What the running kernel's nfsd supports: /proc/fs/nfsd/export_features
/// ("<flags hex> <secinfo flags hex>").
public struct ExportFeatures: Sendable, Hashable {
    public var flags: ExportFlags
    public var perFlavorFlags: ExportFlags

    public init(flags: ExportFlags, perFlavorFlags: ExportFlags) {
        self.flags = flags
        self.perFlavorFlags = perFlavorFlags
    }

    /// nfs-utils' assumption when the file is missing.
    public static let assumedWithoutKernel = ExportFeatures(flags: .oldFlags, perFlavorFlags: .oldPerFlavor)

    /// Parses the text of /proc/fs/nfsd/export_features; nil if malformed.
    public init?(procText: String) {
        let fields = procText.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        guard fields.count >= 2,
              let flags = UInt32(fields[0].hasPrefix("0x") ? fields[0].dropFirst(2) : fields[0], radix: 16),
              let secinfo = UInt32(fields[1].hasPrefix("0x") ? fields[1].dropFirst(2) : fields[1], radix: 16)
        else { return nil }
        self.flags = ExportFlags(rawValue: flags)
        self.perFlavorFlags = ExportFlags(rawValue: secinfo)
    }
}
