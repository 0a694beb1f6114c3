import Glibc
import Testing
import TestSupport
@testable import NFSAdmin

/// When mountd flushes the kernel's export caches at start: only when they
/// may hold answers etab does not give (negative entries, or etab newer
/// than the caches' last flush). The content lines are as 6.1 and 6.12
/// print them (ip_map_show, svc_export_show, e_show).
@Suite("stale export caches at mountd's start")
struct StaleCacheTests {
    @Test("negative entries are counted per cache; '# ' lines are not", arguments: [
        ("auth.unix.ip", "#class IP domain\nnfsd 10.0.0.2 10.0.0.0/8\n", 0),
        ("auth.unix.ip", "#class IP domain\nnfsd 10.0.0.2 -no-domain-\nnfsd 10.0.0.3 *\n", 1),
        ("auth.unix.ip", "# nfsd 10.0.0.2 -no-domain-\n", 0),
        ("nfsd.export", "#path domain(flags)\n/srv/a\t10.0.0.0/8(rw,root_squash,sync,wdelay,no_subtree_check)\n", 0),
        ("nfsd.export", "/srv/a\t10.0.0.0/8()\n/srv/b\t*()\n", 2),
        ("nfsd.export", "# /srv/a\t10.0.0.0/8()\n", 0),
        ("nfsd.fh", "#domain fsidtype fsid [path]\n10.0.0.0/8 1 0x00000000 /srv\n", 0),
        ("nfsd.fh", "10.0.0.0/8 6 0x1b0d93be0a144460a330cdcc3bf14cb5\n", 1),
    ])
    func negatives(cache: String, content: String, count: Int) {
        #expect(KernelExports.negativeEntries(cache: cache, content: content) == count)
    }

    /// A root with the caches' flush and content files as the kernel shows them.
    final class CacheFiles {
        let directory: TemporaryDirectory
        var paths: SystemPaths { directory.paths }
        init(flushed: Int, content: [String: String] = [:]) throws {
            directory = try TemporaryDirectory(prefix: "stale-cache")
            for cache in ["auth.unix.ip", "nfsd.export", "nfsd.fh"] {
                let dir = directory.paths.procRPC + "/\(cache)"
                try FileSystem.makeDirectories(dir, mode: 0o755)
                try FileSystem.replaceIfChanged(dir + "/flush", with: Array("\(flushed)\n".utf8))
                try FileSystem.replaceIfChanged(dir + "/content", with: Array((content[cache] ?? "#\n").utf8))
            }
        }
    }

    @Test("caches flushed after etab's last change, and no negative answer: nothing to flush")
    func fresh() throws {
        let files = try CacheFiles(flushed: 1_000_100)
        #expect(KernelExports(paths: files.paths).staleCacheReason(etabModified: 1_000_000) == nil)
        #expect(KernelExports(paths: files.paths).staleCacheReason(etabModified: nil) == nil)
    }

    @Test("etab changed after the last flush, or in the same second: flush", arguments: [1_000_100, 1_000_101])
    func etabNewer(modified: Int) throws {
        let files = try CacheFiles(flushed: 1_000_100)
        #expect(KernelExports(paths: files.paths).staleCacheReason(etabModified: modified)
                == "etab changed after the kernel's export caches were last flushed")
    }

    @Test("a negative answer cached: flush, and say which cache")
    func negativeCached() throws {
        let files = try CacheFiles(flushed: 1_000_100, content: ["nfsd.export": "/srv/a\t10.0.0.0/8()\n"])
        #expect(KernelExports(paths: files.paths).staleCacheReason(etabModified: 1_000_000) == "nfsd.export holds 1 negative answer")
    }

    @Test("no cache files (no nfsd): nothing to flush")
    func noKernel() throws {
        let directory = try TemporaryDirectory(prefix: "stale-cache")
        #expect(KernelExports(paths: directory.paths).staleCacheReason(etabModified: 5) == nil)
    }
}
