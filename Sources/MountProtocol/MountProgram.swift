/// The numbers of the MOUNT protocol (RFC 1094 appendix A, RFC 1813 section 5).
public enum MountProgram {
    public static let number: UInt32 = 100005
    /// Versions this package serves. (v2 is v1 plus PATHCONF; nobody needs it.)
    public static let supportedVersions: [UInt32] = [1, 3]

    public enum Procedure: UInt32, Sendable {
        case null = 0
        case mnt = 1
        case dump = 2
        case umnt = 3
        case umntall = 4
        case export = 5
        /// v1 (and v2) only; identical to EXPORT.
        case exportall = 6

        /// The RFC's name: "MNT", "UMNTALL"...
        public var name: String { "\(self)".uppercased() }
    }

    /// Longest directory path (`dirpath`) a client may send or be sent.
    public static let maxPathLength = 1024
    /// Longest host or group name (`name`).
    public static let maxNameLength = 255
    /// MOUNT v1 filehandle: fixed 32 bytes.
    public static let version1HandleSize = 32
    /// MOUNT v3 filehandle: variable, at most 64 bytes.
    public static let version3MaxHandleSize = 64
}
