#if canImport(Glibc)
import Glibc
#endif
import CLinux
import NFSExports

/// Network namespaces, as the bridge path uses them: one pinned at a path
/// (an empty file with the namespace bind-mounted over it, as
/// `ip netns add` makes them), entered by the calling thread for the span
/// of a closure. Sockets, the nfsd filesystem and /proc/thread-self/net
/// files opened inside keep that namespace after the thread has left it.
///
/// Only the calling thread moves (setns(2) and unshare(2) with
/// CLONE_NEWNET act on one thread); threads it starts meanwhile inherit
/// the namespace it is in.
public enum NetworkNamespace {
    /// A namespace's identity: the device and inode of its nsfs file.
    public struct Identity: Sendable, Hashable, CustomStringConvertible {
        public var device: UInt64
        public var inode: UInt64

        public init(device: UInt64, inode: UInt64) {
            self.device = device
            self.inode = inode
        }

        public var description: String { "net:[\(inode)]" }
    }

    /// The calling thread's namespace file.
    public static let currentThreadFile = "/proc/thread-self/ns/net"

    /// The identity of the namespace behind an nsfs file (a pinned path or
    /// /proc/…/ns/net); nil if the path does not exist or is no namespace.
    public static func identity(ofFile path: String) -> Identity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The calling thread's namespace.
    public static var current: Identity? { identity(ofFile: currentThreadFile) }

    /// Whether the namespace pinned at `path` exists and is a namespace
    /// other than the calling thread's (a plain file left where a pin was
    /// is not one: it has the filesystem's device, not nsfs').
    public static func isPinned(_ path: String) -> Bool {
        guard let pinned = identity(ofFile: path), let nsfs = current else { return false }
        return pinned.device == nsfs.device
    }

    /// Runs `body` with the calling thread inside the namespace pinned at
    /// `path`, then puts the thread back. `enterFailed` turns a failure to
    /// get in into the caller's error.
    public static func withEntered<T, E: Error>(_ path: String, enterFailed: (SystemError) -> E,
                                                _ body: () throws(E) -> T) throws(E) -> T {
        let home: Int32
        do {
            home = try openNamespace(currentThreadFile)
        } catch {
            throw enterFailed(error)
        }
        defer { close(home) }
        do {
            let target = try openNamespace(path)
            defer { close(target) }
            try SystemCall.check("setns", path) { setns(target, NFSVSOCK_CLONE_NEWNET) }
        } catch {
            throw enterFailed(error)
        }
        defer { returnHome(home) }
        return try body()
    }

    /// Moves the calling thread into the namespace pinned at `path` for
    /// good (a daemon that must live there: call it before starting
    /// threads, which then start inside too).
    public static func join(_ path: String) throws(SystemError) {
        let target = try openNamespace(path)
        defer { close(target) }
        try SystemCall.check("setns", path) { setns(target, NFSVSOCK_CLONE_NEWNET) }
    }

    /// `withEntered` for bodies that fail with a SystemError.
    public static func withEntered<T>(_ path: String, _ body: () throws(SystemError) -> T) throws(SystemError) -> T {
        try withEntered(path, enterFailed: { $0 }, body)
    }

    /// Creates a namespace and pins it at `path`, which must not exist;
    /// `configure` runs on this thread inside it. If anything fails the
    /// pin is removed again and the thread is back where it was.
    public static func create<E: Error>(pinnedAt path: String, failed: (SystemError) -> E,
                                        configure: () throws(E) -> Void) throws(E) {
        let home: Int32
        do {
            home = try openNamespace(currentThreadFile)
        } catch {
            throw failed(error)
        }
        defer { close(home) }
        do {
            try makeSharedMountPoint(PathName.directory(of: path))
            // The mount point: a new empty file (never an existing one, nor
            // a symlink planted there).
            close(try FileSystem.createNew(path, mode: 0))
        } catch {
            throw failed(error)
        }
        var pinned = false
        do throws(E) {
            do {
                try SystemCall.check("unshare(CLONE_NEWNET)", path) { unshare(NFSVSOCK_CLONE_NEWNET) }
            } catch {
                throw failed(error)
            }
            defer { returnHome(home) }
            do {
                try SystemCall.check("mount --bind", "\(currentThreadFile) on \(path)") {
                    mount(currentThreadFile, path, "none", UInt(MS_BIND), nil)
                }
            } catch {
                throw failed(error)
            }
            pinned = true
            try configure()
        } catch {
            if pinned { umount2(path, Int32(MNT_DETACH)) }
            unlink(path)
            throw error
        }
    }

    /// Makes `directory` a shared mount point, as `ip netns add` does for
    /// /run/netns: a pin made there then reaches every mount namespace
    /// copied from this one (services with a sandbox), and unpinning
    /// reaches them too. Without it, the first `ip netns add` after the pin
    /// would bind /run/netns over itself and keep a hidden copy of the pin
    /// that no unmount at the path removes.
    static func makeSharedMountPoint(_ directory: String) throws(SystemError) {
        if mount("", directory, "none", UInt(MS_SHARED | MS_REC), nil) == 0 { return }
        guard errno == EINVAL else { throw SystemError.current("mount --make-rshared", directory) }
        // Not a mount point yet.
        try SystemCall.check("mount --rbind", "\(directory) on itself") { mount(directory, directory, "none", UInt(MS_BIND | MS_REC), nil) }
        try SystemCall.check("mount --make-rshared", directory) { mount("", directory, "none", UInt(MS_SHARED | MS_REC), nil) }
    }

    /// Unpins the namespace at `path` (it lives on while something is
    /// still inside it or holds one of its sockets) and removes the file.
    public static func remove(pinnedAt path: String) {
        if isPinned(path) { umount2(path, Int32(MNT_DETACH)) }
        unlink(path)
    }

    /// Brings the calling thread's loopback interface up (a new namespace
    /// and a freshly booted minimal guest have it down; the kernel gives it
    /// 127.0.0.1/8 as it comes up). Returns whether it was down.
    @discardableResult
    public static func bringLoopbackUp() throws(SystemError) -> Bool {
        let fd = try Socket.open(family: AF_INET, type: Socket.datagram, for: "to configure lo")
        defer { close(fd) }
        var request = ifreq()
        withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { raw in
            for (index, byte) in "lo".utf8.enumerated() { raw[index] = byte }
        }
        try SystemCall.check("ioctl(SIOCGIFFLAGS)", "lo") { nfsvsock_ioctl_ifreq(fd, UInt(SIOCGIFFLAGS), &request) }
        let flags = Int32(request.ifr_ifru.ifru_flags)
        if flags & Int32(IFF_UP) != 0 { return false }
        request.ifr_ifru.ifru_flags = Int16(truncatingIfNeeded: flags | Int32(IFF_UP))
        try SystemCall.check("ioctl(SIOCSIFFLAGS)", "lo up") { nfsvsock_ioctl_ifreq(fd, UInt(SIOCSIFFLAGS), &request) }
        return true
    }

    /// Writes a sysctl of the calling thread's namespace (/proc/sys/net/…
    /// files belong to the namespace of the thread that opens them).
    public static func setSysctl(_ name: String, _ value: String) throws(SystemError) {
        try FileSystem.writeMessage(value + "\n", to: "/proc/sys/" + name.split(separator: ".").joined(separator: "/"))
    }

    private static func openNamespace(_ path: String) throws(SystemError) -> Int32 {
        try FileDescriptor.open(path, O_RDONLY).rawValue
    }

    /// Back to the thread's own namespace. If that ever failed the thread
    /// would go on working in the wrong namespace (opening one namespace's
    /// channels for another): stop instead.
    private static func returnHome(_ home: Int32) {
        if setns(home, NFSVSOCK_CLONE_NEWNET) != 0 {
            let reason = SystemError.describe(errno)
            Console.err("fatal: cannot return to the original network namespace (setns: \(reason))\n")
            abort()
        }
    }
}
