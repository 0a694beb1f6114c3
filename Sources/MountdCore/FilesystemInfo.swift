/// What mountd needs to know about the filesystem under an export path,
/// gathered by the I/O layer (stat, statfs, libblkid).
public struct FilesystemInfo: Sendable, Hashable {
    public var major: UInt32
    public var minor: UInt32
    /// Inode number of the path itself.
    public var inode: UInt64
    /// The filesystem's UUID (libblkid, else statfs f_fsid padded to 16
    /// bytes); nil when it has none.
    public var uuid: [UInt8]?
    /// The filesystem has no backing device (tmpfs, overlay, 9p...): the
    /// kernel needs fsid= or a uuid to export it.
    public var deviceless: Bool
    /// The path is the root of a mounted filesystem.
    public var isMountPoint: Bool

    public init(major: UInt32, minor: UInt32, inode: UInt64, uuid: [UInt8]?, deviceless: Bool, isMountPoint: Bool) {
        self.major = major
        self.minor = minor
        self.inode = inode
        self.uuid = uuid
        self.deviceless = deviceless
        self.isMountPoint = isMountPoint
    }
}
