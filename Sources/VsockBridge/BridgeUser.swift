import NFSAdmin
import NFSExports

/// The user a bridge started as root becomes once its listeners are open:
/// `--user` or [vsock] user, else nfs-vsock-bridge. It must exist and must
/// not be root: the bridge keeps no root and no capability while it
/// forwards guests' traffic.
public enum BridgeUser {
    public static let defaultName = "nfs-vsock-bridge"

    /// `configured`: the name from the command line or nfs.conf, nil for
    /// the default; `lookup`: the user database (Privileges.account).
    public static func choose(configured: String?, lookup: (String) -> Privileges.Account?) throws(Problem) -> Privileges.Account {
        let name = configured ?? defaultName
        guard let account = lookup(name) else {
            throw Problem("user \(name) does not exist\(configured == nil ? " (the default user of the bridge)" : ""): create it (useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \(name)) or name another with --user / [vsock] user")
        }
        guard account.uid != 0 else {
            throw Problem("user \(name) is root: the bridge must not keep root (choose a system user of its own)")
        }
        return account
    }
}
