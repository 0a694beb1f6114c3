#if canImport(Glibc)
import Glibc
#endif

/// --manage-gids: a user's groups from the system's group database.
enum GroupDatabase {
    /// nil when the uid is unknown.
    static func groups(of uid: UInt32) -> [UInt32]? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else {
            return nil
        }
        var count: Int32 = 64
        while true {
            var list = [gid_t](repeating: 0, count: Int(count))
            let status = getgrouplist(name, entry.pw_gid, &list, &count)
            if status >= 0 { return list.prefix(Int(count)).map { UInt32($0) } }
            if count > 65536 { return nil }
        }
    }
}
