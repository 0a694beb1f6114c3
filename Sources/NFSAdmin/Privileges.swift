#if canImport(Glibc)
import Glibc
#endif
import CLinux

/// Giving up root for good, for a daemon that has opened what needed root.
public enum Privileges {
    public struct Account: Sendable, Equatable {
        public var name: String
        public var uid: uid_t
        public var gid: gid_t

        public init(name: String, uid: uid_t, gid: gid_t) {
            self.name = name
            self.uid = uid
            self.gid = gid
        }
    }

    /// The user database's entry for `name` (or a number), nil if none.
    public static func account(_ name: String) -> Account? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        let status: Int32
        if let number = uid_t(name) {
            status = getpwuid_r(number, &entry, &buffer, buffer.count, &result)
        } else {
            status = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        }
        guard status == 0, result != nil else { return nil }
        return Account(name: String(cString: entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid)
    }

    /// Becomes `account`: no supplementary groups, its gid and uid (real,
    /// effective and saved, so there is no way back), which leaves no
    /// capability; then no new privileges (setuid binaries, file
    /// capabilities) and not dumpable, so that other processes of the same
    /// user can neither ptrace it nor open its descriptors through /proc.
    public static func drop(to account: Account) throws(SystemError) {
        try SystemCall.check("setgroups", "[]") { setgroups(0, nil) }
        try SystemCall.check("setgid", "\(account.gid)") { setgid(account.gid) }
        try SystemCall.check("setuid", "\(account.name) (\(account.uid))") { setuid(account.uid) }
        // setuid(2) from root sets all three ids; prove it.
        if account.uid != 0 && setuid(0) == 0 {
            throw SystemError("setuid", "0 after dropping to \(account.name): root was not given up", errno: EPERM)
        }
        try SystemCall.check("prctl(PR_SET_NO_NEW_PRIVS)", "1") { nfsvsock_prctl(PR_SET_NO_NEW_PRIVS, 1) }
        try SystemCall.check("prctl(PR_SET_DUMPABLE)", "0") { nfsvsock_prctl(PR_SET_DUMPABLE, 0) }
    }
}
