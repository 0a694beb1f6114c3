/// What the MOUNT protocol (RPC program 100005) asks of mountd. The RPC
/// server decodes calls, calls these on its serving thread, and encodes the
/// answers; the service decides (export table, rmtab, filehandles).
///
/// Calls arrive one at a time per server, but the service may be shared with
/// other threads (the kernel upcall loop), hence `Sendable`.
public protocol MountService: Sendable {
    /// MNT. `version` is the MOUNT version of the call (1 or 3): a v1 reply
    /// carries a 32-byte NFSv2 filehandle, a v3 reply an NFSv3 one (at most
    /// 64 bytes) and the security flavors the client may use.
    func mount(path: String, version: UInt32, from peer: MountPeer) -> MountResult
    /// UMNT: the client says it no longer uses `path`.
    func unmount(path: String, from peer: MountPeer)
    /// UMNTALL: the client says it uses nothing any more.
    func unmountAll(from peer: MountPeer)
    /// DUMP: which hosts mounted which directories (rmtab).
    func mountList() -> [(host: String, directory: String)]
    /// EXPORT (and v1 EXPORTALL): exported directories and who may mount them.
    func exportList() -> [(directory: String, groups: [String])]
}

/// Status of a MNT call: `mountstat3` of RFC 1813, whose numbers are the
/// errno-style ones MOUNT v1 (RFC 1094) already used.
public enum MountStatus: Int32, Sendable, CaseIterable {
    case ok = 0
    case perm = 1
    case noent = 2
    case io = 5
    case access = 13
    case notdir = 20
    case inval = 22
    case nametoolong = 63
    case notsupp = 10004
    case serverfault = 10006

    /// The status as MOUNT v1 sends it. v1 has no NOTSUPP or SERVERFAULT
    /// (its statuses are NFSv2 ones), so those become EIO.
    public var version1Value: UInt32 {
        switch self {
        case .notsupp, .serverfault: UInt32(MountStatus.io.rawValue)
        default: UInt32(rawValue)
        }
    }
}

/// Who sent a call.
public struct MountPeer: Sendable, Hashable, CustomStringConvertible {
    /// Numeric IPv4 or IPv6 text; an IPv4 client reaching an IPv6 socket
    /// appears as IPv4 ("192.0.2.1", not "::ffff:192.0.2.1").
    public var address: String
    public var port: UInt16
    /// "tcp" or "udp".
    public var transport: String

    public init(address: String, port: UInt16, transport: String) {
        self.address = address
        self.port = port
        self.transport = transport
    }

    public var description: String {
        address.contains(":") ? "[\(address)]:\(port)/\(transport)" : "\(address):\(port)/\(transport)"
    }
}

/// The answer to MNT.
public enum MountResult: Sendable, Equatable {
    /// `fileHandle` is the root filehandle of the export; `flavors` the RPC
    /// auth flavors for it (v3 only; 1 = AUTH_UNIX/AUTH_SYS, 390003-390005 =
    /// RPCSEC_GSS krb5/krb5i/krb5p pseudo-flavors).
    case ok(fileHandle: [UInt8], flavors: [Int32])
    case error(MountStatus)
}
