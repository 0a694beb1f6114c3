#if canImport(Glibc)
import Glibc
#endif
import CBlkid
import CLinux
import MountdCore
import NFSAdmin
import NFSExports
import SystemEdge

/// Looks up the facts mountd needs about a path's filesystem: device
/// numbers, inode, UUID (libblkid for block devices, else statfs's f_fsid),
/// whether it is a mount point.
public final class FilesystemProbe: Sendable {
    /// libblkid's cache is not thread-safe: it lives under the mutex with
    /// the UUIDs already found.
    private struct State: ~Copyable {
        var cache: blkid_cache?
        var uuidByDevice: [UInt64: [UInt8]?] = [:]
    }

    private let state: ThreadLock<State>
    private let root: String

    public init(paths: SystemPaths) {
        root = paths.root
        var cache: blkid_cache? = nil
        if blkid_get_cache(&cache, nil) != 0 { cache = nil }
        state = ThreadLock(State(cache: cache))
    }

    deinit {
        state.withLock { state in
            if let cache = state.cache { blkid_put_cache(cache) }
        }
    }

    /// Drops cached UUIDs (after a reload: filesystems may have changed).
    public func forget() {
        state.withLock { $0.uuidByDevice.removeAll() }
    }

    public func info(_ path: String) -> FilesystemInfo? {
        var st = stat()
        guard stat(root + path, &st) == 0 else { return nil }
        let device = UInt64(st.st_dev)
        let major = UInt32(truncatingIfNeeded: (device >> 8) & 0xfff | (device >> 32) & ~0xfff)
        let minor = UInt32(truncatingIfNeeded: (device & 0xff) | (device >> 12) & ~0xff)
        var isMountPoint = path == "/"
        if !isMountPoint {
            var parent = stat()
            if stat(root + PathName.directory(of: path), &parent) == 0 {
                isMountPoint = parent.st_dev != st.st_dev || parent.st_ino == st.st_ino
            }
        }
        let uuid = state.withLock { state -> [UInt8]? in
            if let known = state.uuidByDevice[device] { return known }
            let found = Self.blockDeviceUUID(cache: state.cache, major: major, minor: minor) ?? statfsUUID(path)
            state.uuidByDevice[device] = found
            return found
        }
        return FilesystemInfo(major: major, minor: minor, inode: UInt64(st.st_ino), uuid: uuid,
                              deviceless: major == 0, isMountPoint: isMountPoint)
    }

    /// The UUID tag libblkid finds on the device.
    private static func blockDeviceUUID(cache: blkid_cache?, major: UInt32, minor: UInt32) -> [UInt8]? {
        guard major != 0, let cache else { return nil }
        let devno = dev_t((UInt64(major) & 0xfff) << 8 | (UInt64(major) & ~0xfff) << 32 | UInt64(minor) & 0xff | (UInt64(minor) & ~0xff) << 12)
        guard let name = blkid_devno_to_devname(devno) else { return nil }
        defer { free(name) }
        guard let value = blkid_get_tag_value(cache, "UUID", name) else { return nil }
        defer { free(value) }
        return Self.uuidBytes(String(cString: value))
    }

    /// statfs's f_fsid, when the filesystem has one, as 16 bytes (the 8
    /// fsid bytes, then zeros).
    private func statfsUUID(_ path: String) -> [UInt8]? {
        var fs = statfs()
        guard statfs(root + path, &fs) == 0 else { return nil }
        let words = withUnsafeBytes(of: fs.f_fsid) { Array($0) }
        guard words.contains(where: { $0 != 0 }) else { return nil }
        return Array(words.prefix(8)) + Array(repeating: 0, count: 8)
    }

    /// "0123abcd-..." (any punctuation) -> 16 bytes; nil unless 32 hex digits.
    /// Short UUIDs (vfat "ABCD-1234") are padded as nfs-utils does: repeated.
    static func uuidBytes(_ text: String) -> [UInt8]? {
        let digits = text.compactMap { $0.hexDigitValue }
        guard digits.count >= 8, digits.count % 2 == 0 else { return nil }
        var bytes = stride(from: 0, to: digits.count, by: 2).map { UInt8(digits[$0] << 4 | digits[$0 + 1]) }
        while bytes.count < 16 { bytes += bytes }
        return Array(bytes.prefix(16))
    }
}

