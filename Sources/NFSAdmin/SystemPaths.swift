/// Every file the tools touch, under one movable root.
///
/// Production uses "/" as root. Tests move it with the environment variable
/// NFS_VSOCK_ROOT (the same idea as nfs-utils' state-directory override), but
/// the tests that prove behaviour run against a real kernel with root "/".
public struct SystemPaths: Sendable, Hashable {
    public var root: String
    /// /var/lib/nfs unless nfs.conf's state-directory-path moves it.
    public var stateDirectory: String
    /// The nfsd control filesystem and the export caches of the nfsd
    /// instance these paths talk to (`bridgeInstance` moves both).
    public var procNFSD: String
    public var procRPC: String

    public init(root: String = "/", stateDirectory: String? = nil) {
        let trimmed = root == "/" ? "" : (root.hasSuffix("/") ? String(root.dropLast()) : root)
        self.root = trimmed
        self.stateDirectory = stateDirectory.map { trimmed + $0 } ?? trimmed + "/var/lib/nfs"
        procNFSD = trimmed + "/proc/fs/nfsd"
        procRPC = trimmed + "/proc/net/rpc"
    }

    public static func fromEnvironment(_ environment: [String: String]) -> SystemPaths {
        SystemPaths(root: environment["NFS_VSOCK_ROOT"] ?? "/")
    }

    public func underRoot(_ path: String) -> String { root + path }

    /// The path as seen from the root: `underRoot` undone. The root itself
    /// is "/"; a path outside the root (a symbolic link that leads out of
    /// it) stays as it is.
    public func unrooted(_ path: String) -> String {
        guard !root.isEmpty else { return path }
        if path == root { return "/" }
        guard path.hasPrefix(root + "/") else { return path }
        return String(path.dropFirst(root.count))
    }

    public var exportsFile: String { root + "/etc/exports" }
    public var exportsDirectory: String { root + "/etc/exports.d" }
    public var nfsConf: String { root + "/etc/nfs.conf" }
    public var nfsConfDirectory: String { root + "/etc/nfs.conf.d" }
    public var etab: String { stateDirectory + "/etab" }
    public var etabLock: String { stateDirectory + "/.etab.lock" }
    public var rmtab: String { stateDirectory + "/rmtab" }
    public var exportFeatures: String { procNFSD + "/export_features" }
    /// Written by nfs-vsock-bridge, read by `nfsd-control status`.
    public var bridgeStatus: String { root + "/run/nfs-vsock-bridge/status" }

    /// The bridge path's private network namespace, where nfs-vsock-bridge
    /// and the nfsd instance that serves vsock guests live, pinned where
    /// `ip netns` keeps namespaces (`ip netns exec nfs-vsock ...` works).
    public var bridgeNamespace: String { root + "/run/netns/nfs-vsock" }
    /// That namespace's runtime directory: its nfsd filesystem, and the
    /// guest block its nfsd instance was started with.
    public var bridgeRuntime: String { root + "/run/nfs-vsock" }
    public var bridgeNFSD: String { bridgeRuntime + "/nfsd" }
    public var bridgeGuestBlock: String { bridgeRuntime + "/guest-block" }

    /// The same paths for the bridge's nfsd instance: its control
    /// filesystem, and the export caches of the namespace the calling
    /// thread is in (use them inside NetworkNamespace.withEntered).
    public var bridgeInstance: SystemPaths {
        var paths = self
        paths.procNFSD = bridgeNFSD
        paths.procRPC = root + "/proc/thread-self/net/rpc"
        return paths
    }

    public func cacheChannel(_ cache: String) -> String { procRPC + "/\(cache)/channel" }
    public func cacheFlush(_ cache: String) -> String { procRPC + "/\(cache)/flush" }
}
