#if canImport(Glibc)
import Glibc
#endif
import NFSExports

/// The bridge path's private network namespace. nfs-vsock-bridge and the
/// nfsd instance that serves vsock guests live in it and nothing else
/// does: entering a network namespace takes CAP_SYS_ADMIN in the initial
/// user namespace, so no unprivileged user, and no container with a user
/// namespace of its own, can get in. A connection to that nfsd from an
/// address of the guest block can only be the bridge's, which is what
/// makes the address a guest's identity. Host processes still reach the
/// host's own nfsd from any loopback address they like, and mountd gives
/// addresses of the block nothing there.
///
/// rpc.nfsd creates the namespace (loopback up, privileged ports open to
/// the unprivileged bridge: nothing else is inside to take them), mounts
/// its nfsd filesystem under /run/nfs-vsock/nfsd and records the guest
/// block it was started with in /run/nfs-vsock/guest-block, which the
/// bridge and mountd read: one source of truth for the block.
public struct BridgeNamespace: Sendable {
    public var paths: SystemPaths

    public init(paths: SystemPaths) { self.paths = paths }

    /// The pinned namespace (/run/netns/nfs-vsock).
    public var pin: String { paths.bridgeNamespace }

    /// `ip netns` name of the namespace.
    public static let name = "nfs-vsock"

    /// Whether the namespace exists (is pinned).
    public var exists: Bool { NetworkNamespace.isPinned(pin) }

    /// Its identity, if it exists.
    public var identity: NetworkNamespace.Identity? { exists ? NetworkNamespace.identity(ofFile: pin) : nil }

    /// Whether the calling thread is inside it.
    public var isCurrent: Bool {
        guard let identity else { return false }
        return NetworkNamespace.current == identity
    }

    /// Runs `body` inside the namespace on this thread.
    public func withEntered<T, E: Error>(enterFailed: (SystemError) -> E, _ body: () throws(E) -> T) throws(E) -> T {
        try NetworkNamespace.withEntered(pin, enterFailed: enterFailed, body)
    }

    public enum BlockProblem: Error, Sendable, Equatable, CustomStringConvertible {
        case missing(path: String)
        case unreadable(SystemError)
        case invalid(path: String, VsockLoopbackMapping.Problem)

        public var description: String {
            switch self {
            case .missing(let path):
                return "\(path) does not exist: the bridge's namespace was not made by rpc.nfsd (restart the server: rpc.nfsd 0, then rpc.nfsd --vsock PORT)"
            case .unreadable(let error):
                return "\(error)"
            case .invalid(let path, let problem):
                return "\(path): \(problem)"
            }
        }
    }

    /// The guest block the namespace's nfsd instance was started with.
    public func guestBlock() throws(BlockProblem) -> VsockLoopbackMapping {
        let path = paths.bridgeGuestBlock
        let bytes: [UInt8]?
        do {
            bytes = try FileSystem.readIfExists(path)
        } catch {
            throw .unreadable(error)
        }
        guard let bytes else { throw .missing(path: path) }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: " \n")
        switch VsockLoopbackMapping.parse(text) {
        case .success(let mapping): return mapping
        case .failure(let problem): throw .invalid(path: path, problem)
        }
    }

    /// Creates the namespace with `block` recorded, its loopback up, any
    /// port bindable (the only process in it is the unprivileged bridge,
    /// which binds ports below 1024 for guests that used one), and its
    /// nfsd filesystem mounted at /run/nfs-vsock/nfsd. The namespace must
    /// not exist (remove a leftover first). Undone if a step fails.
    public func create(block: VsockLoopbackMapping) throws(SystemError) {
        let runtime = paths.bridgeRuntime
        try FileSystem.makeDirectories(PathName.directory(of: pin), mode: 0o755)
        try FileSystem.makeDirectories(runtime, mode: 0o755)
        try FileSystem.makeDirectories(paths.bridgeNFSD, mode: 0o755)
        // The record first: mountd, which follows the pin, finds it there
        // the moment the namespace appears.
        try FileSystem.replaceIfChanged(paths.bridgeGuestBlock, with: Array("\(block)\n".utf8))
        do throws(SystemError) {
            try NetworkNamespace.create(pinnedAt: pin, failed: { $0 }) { () throws(SystemError) in
                try NetworkNamespace.bringLoopbackUp()
                try NetworkNamespace.setSysctl("net.ipv4.ip_unprivileged_port_start", "0")
                // The nfsd filesystem serves the namespace of the thread that
                // mounts it.
                if mount("nfsd", paths.bridgeNFSD, "nfsd", 0, nil) != 0 {
                    throw SystemError.current("mount -t nfsd nfsd", paths.bridgeNFSD)
                }
            }
        } catch {
            unlink(paths.bridgeGuestBlock)
            throw error
        }
    }

    /// Removes the namespace: unmounts its nfsd filesystem, deletes the
    /// block record and unpins it. Stop its nfsd threads first (a
    /// namespace lives on while sockets or threads still use it).
    public func remove() {
        if FileSystem.exists(paths.bridgeNFSD + "/threads") { umount2(paths.bridgeNFSD, Int32(MNT_DETACH)) }
        unlink(paths.bridgeGuestBlock)
        NetworkNamespace.remove(pinnedAt: pin)
    }

    /// Flushes the bridge nfsd's export caches when they may hold answers
    /// etab does not give (`KernelExports.staleCacheReason`), and says why;
    /// nil when they cannot, or there is no namespace.
    public func flushCachesIfStale(etabModified: Int?, now: Int) throws(SystemError) -> String? {
        guard exists else { return nil }
        return try withEntered(enterFailed: { $0 }) { () throws(SystemError) -> String? in
            let kernel = KernelExports(paths: paths.bridgeInstance)
            guard let reason = kernel.staleCacheReason(etabModified: etabModified) else { return nil }
            _ = try kernel.flushCaches(now: now)
            return reason
        }
    }

    /// Flushes the export caches of the bridge's nfsd instance so that it
    /// asks mountd again (what exportfs does for the host's caches).
    /// Returns false when there is no such namespace.
    @discardableResult
    public func flushCaches(now: Int) throws(SystemError) -> Bool {
        guard exists else { return false }
        try withEntered(enterFailed: { $0 }) { () throws(SystemError) in
            _ = try KernelExports(paths: paths.bridgeInstance).flushCaches(now: now)
        }
        return true
    }
}
