import Glibc
import Testing
@testable import NFSAdmin

@Suite("real paths, resolved once per directory")
struct RealPathCacheTests {
    /// A tree with links: root/a/b/, root/a/file, root/link -> a,
    /// root/a/up -> .., root/a/lb -> b, root/dangling -> nowhere.
    private func tree() throws -> String {
        var template = Array("/tmp/realpath-cache-XXXXXX".utf8CString)
        let root = template.withUnsafeMutableBufferPointer { buffer in
            // SAFETY: mkdtemp rewrites the NUL-terminated template in place.
            String(cString: mkdtemp(buffer.baseAddress!)!)
        }
        try FileSystem.makeDirectories(root + "/a/b", mode: 0o755)
        for i in 0..<50 { try FileSystem.makeDirectories(root + "/a/b/d\(i)", mode: 0o755) }
        try FileSystem.replaceIfChanged(root + "/a/file", with: Array("x".utf8))
        #expect(symlink("a", root + "/link") == 0)
        #expect(symlink("..", root + "/a/up") == 0)
        #expect(symlink("b", root + "/a/lb") == 0)
        #expect(symlink("nowhere", root + "/dangling") == 0)
        return root
    }

    @Test("the same answers as realpath(3), links, dot-dot and missing paths included")
    func sameAsRealpath() throws {
        let root = try tree()
        defer { _ = system("rm -rf '\(root)'") }
        var cache = RealPathCache()
        let paths = ["/", root, root + "/a", root + "/a/b", root + "/a/file", root + "/link", root + "/link/b",
                     root + "/link/b/d7", root + "/a/up", root + "/a/up/a/lb/d3", root + "/a/lb", root + "/dangling",
                     root + "/missing", root + "/missing/x", root + "/a/file/x", root + "/a/../a/b", root + "//a",
                     root + "/a/./b", root + "/a/b/", "relative/path"]
        for path in paths {
            #expect(cache.resolve(path) == FileSystem.realPath(path), "\(path)")
        }
    }

    @Test("many exports in one directory: one lstat each, no realpath(3)")
    func oneCallPerPath() throws {
        let root = try tree()
        defer { _ = system("rm -rf '\(root)'") }
        var cache = RealPathCache()
        for i in 0..<50 { #expect(cache.resolve(root + "/a/b/d\(i)") == root + "/a/b/d\(i)") }
        let depth = root.split(separator: "/").count + 2
        #expect(cache.lstatCalls == 50 + depth, "\(cache.lstatCalls) lstat calls")
        #expect(cache.realpathCalls == 0)
    }
}
