#if canImport(Glibc)
import Glibc
#endif
import NFSExports

/// The kernel side of exporting: what nfsd supports, flushing its export
/// caches, and the trial export exportfs uses to find paths that cannot be
/// exported. Every call is harmless when nfsd is absent.
public struct KernelExports: Sendable {
    public var paths: SystemPaths

    public init(paths: SystemPaths) { self.paths = paths }

    /// The nfsd filesystem is mounted (its export table is readable).
    public var isNFSDMounted: Bool { FileSystem.exists(paths.procNFSD + "/exports") }

    /// The cache channels exist (the sunrpc module with nfsd's caches).
    public var hasCacheChannels: Bool { FileSystem.exists(paths.cacheChannel("nfsd.export")) }

    public func features() -> ExportFeatures {
        guard let bytes = try? FileSystem.readIfExists(paths.exportFeatures),
              let features = ExportFeatures(procText: String(decoding: bytes, as: UTF8.self))
        else { return .assumedWithoutKernel }
        return features
    }

    public static let cachesInFlushOrder = ["auth.unix.ip", "auth.unix.gid", "nfsd.fh", "nfsd.export"]

    /// Flushes the four export caches so the kernel asks mountd again.
    /// Returns the caches flushed; missing caches are skipped.
    @discardableResult
    public func flushCaches(now: Int) throws(SystemError) -> [String] {
        var flushed: [String] = []
        for cache in Self.cachesInFlushOrder {
            let path = paths.cacheFlush(cache)
            guard FileSystem.exists(path) else { continue }
            try FileSystem.writeMessage("\(now)\n", to: path)
            flushed.append(cache)
        }
        return flushed
    }

    /// Whether trial exports can be made: the kernel takes an auth.unix.ip
    /// entry for the test client.
    public func canProbe() -> Bool {
        guard hasCacheChannels else { return false }
        do {
            try FileSystem.writeMessage("nfsd 0.0.0.0 2147483647 -test-client-\n", to: paths.cacheChannel("auth.unix.ip"))
            return true
        } catch {
            return false
        }
    }

    public enum ProbeResult: Sendable, Equatable {
        case exportable
        /// The filesystem needs fsid= (no device number, e.g. tmpfs).
        case needsFSID
        /// The kernel refuses it even with an fsid.
        case notExportable(errno: Int32)
    }

    /// Trial-exports `path` with `flags` to the test client with an expiry
    /// in the past, so nothing stays cached.
    public func probe(path: String, flags: ExportFlags, hasFSID: Bool) -> ProbeResult {
        func attempt(_ flags: ExportFlags) -> Int32? {
            let line = "-test-client- \(CacheText.word(path)) 3 \(flags.rawValue) 65534 65534 0\n"
            do {
                try FileSystem.writeMessage(line, to: paths.cacheChannel("nfsd.export"))
                return nil
            } catch {
                return error.errno
            }
        }
        if hasFSID {
            if let errno = attempt(flags.union(.fsid)) { return .notExportable(errno: errno) }
            return .exportable
        }
        guard let errno = attempt(flags) else { return .exportable }
        if attempt(flags.union(.fsid)) == nil { return .needsFSID }
        return .notExportable(errno: errno)
    }
}
