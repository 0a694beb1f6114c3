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

    /// Why the export caches may hold answers that etab does not give, or
    /// nil when they cannot: a negative answer is cached (the kernel makes
    /// them itself for requests that came while no mountd listened, and
    /// keeps them for two minutes), or etab changed after the caches were
    /// last flushed (an exportfs stopped between its rename of etab and its
    /// flush). mountd flushes at start only then, as nfs-utils' never
    /// does: after a quick restart the kernel holds the requests that came
    /// while mountd was gone, and a flush would drop their pending entries
    /// and send every one of them round again.
    /// `etabModified`: etab's mtime in seconds (nil: no etab).
    public func staleCacheReason(etabModified: Int?) -> String? {
        func text(_ path: String) -> String? {
            (try? FileSystem.readIfExists(path)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
        }
        if let etabModified {
            // The kernel keeps the flush time in whole seconds: the same
            // second counts as "after", so a rename not followed by its
            // flush is never missed.
            let flushes = ["auth.unix.ip", "nfsd.export"].compactMap { text(paths.cacheFlush($0)).flatMap(Self.flushTime) }
            if let last = flushes.min(), etabModified >= last {
                return "etab changed after the kernel's export caches were last flushed"
            }
        }
        for cache in ["auth.unix.ip", "nfsd.export", "nfsd.fh"] {
            guard let content = text(paths.procRPC + "/\(cache)/content") else { continue }
            let count = Self.negativeEntries(cache: cache, content: content)
            if count > 0 { return "\(cache) holds \(count) negative answer\(count == 1 ? "" : "s")" }
        }
        return nil
    }

    /// A cache's flush file: the time of its last flush, in seconds.
    static func flushTime(_ text: String) -> Int? {
        Int(text.trimmingCharacters(in: " \n"))
    }

    /// The valid negative entries in a cache's content file. Lines the
    /// kernel marks with "# " (expired, or waiting for mountd) do not count.
    /// auth.unix.ip: "class address domain", "-no-domain-" when negative;
    /// nfsd.export: "path\tdomain(options)", "()" when negative; nfsd.fh:
    /// "domain fsidtype fsid path", no path when negative.
    static func negativeEntries(cache: String, content: String) -> Int {
        var count = 0
        for line in content.split(separator: "\n") where !line.hasPrefix("#") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            switch cache {
            case "auth.unix.ip": if words.count == 3 && words[2] == "-no-domain-" { count += 1 }
            case "nfsd.export": if line.hasSuffix("()") { count += 1 }
            case "nfsd.fh": if words.count == 3 { count += 1 }
            default: break
            }
        }
        return count
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
