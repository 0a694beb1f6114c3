import Glibc
import Testing
@testable import NFSAdmin
import NFSExports

/// A fresh directory under /tmp, removed by the caller.
func temporaryDirectory() -> String {
    var template = Array("/tmp/nfs-vsock-test-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { buffer in
        // SAFETY: mkdtemp writes into the NUL-terminated template in place.
        String(cString: mkdtemp(buffer.baseAddress!)!)
    }
    return path
}

func removeTree(_ path: String) {
    _ = system("rm -rf '\(path)'")
}

func writeFile(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

func inode(_ path: String) -> UInt {
    var info = stat()
    return stat(path, &info) == 0 ? UInt(info.st_ino) : 0
}

@Suite("files")
struct FileSystemTests {
    @Test("replaceIfChanged writes through a rename, and not at all when unchanged")
    func replace() throws {
        let dir = temporaryDirectory()
        defer { removeTree(dir) }
        let path = dir + "/etab"
        #expect(try FileSystem.replaceIfChanged(path, with: Array("a\n".utf8)))
        let first = inode(path)
        #expect(try !FileSystem.replaceIfChanged(path, with: Array("a\n".utf8)))
        #expect(inode(path) == first)
        #expect(try FileSystem.replaceIfChanged(path, with: Array("b\n".utf8)))
        #expect(inode(path) != first)
        #expect(try FileSystem.read(path) == Array("b\n".utf8))
        #expect(!FileSystem.exists(path + ".tmp"))
    }

    @Test("errors keep the call, the path and errno")
    func errors() {
        #expect(throws: SystemError("open", "/nonexistent/dir/etab.tmp", errno: ENOENT)) {
            try FileSystem.replaceIfChanged("/nonexistent/dir/etab", with: [])
        }
        #expect(SystemError("open", "/x", errno: EACCES).description == "open /x: Permission denied")
    }

    @Test("exports.d files are read in version order", arguments: [
        (["b.exports", "10.exports", "9.exports", "a.exports"], ["9.exports", "10.exports", "a.exports", "b.exports"]),
        (["x-2.exports", "x-10.exports", "x-1.exports"], ["x-1.exports", "x-2.exports", "x-10.exports"]),
    ])
    func versionOrder(names: [String], sorted: [String]) {
        #expect(names.sorted(by: VersionOrder.less) == sorted)
    }

    @Test("nfs.conf: sections, comments, later files win")
    func nfsConf() {
        var conf = NFSConf()
        conf.add("[exportfs]\n# comment\nstate-directory-path = /var/lib/nfs2 ; trailing\n[nfsd]\nvers4.1=y\n", file: "a")
        conf.add("[NFSD]\n threads = 16\nvers4.1 = n\n", file: "b")
        #expect(conf.string("exportfs", "state-directory-path") == "/var/lib/nfs2")
        #expect(conf.int("nfsd", "threads") == 16)
        #expect(conf.bool("nfsd", "vers4.1") == false)
        #expect(conf.value("nfsd", "threads")?.file == "b")
    }

    @Test("export_features parsing, and the fallback without a kernel")
    func features() {
        let features = ExportFeatures(procText: "0x3efff 0xf\n")
        #expect(features?.flags.rawValue == 0x3efff)
        #expect(features?.perFlavorFlags == .perFlavor)
        #expect(ExportFeatures(procText: "garbage") == nil)
        let dir = temporaryDirectory()
        defer { removeTree(dir) }
        #expect(KernelExports(paths: SystemPaths(root: dir)).features() == .assumedWithoutKernel)
    }

    @Test("cache flush writes the time to each cache that exists, in nfs-utils' order")
    func flush() throws {
        let dir = temporaryDirectory()
        defer { removeTree(dir) }
        for cache in ["auth.unix.ip", "nfsd.export", "nfsd.fh"] {
            _ = system("mkdir -p '\(dir)/proc/net/rpc/\(cache)'")
            writeFile("\(dir)/proc/net/rpc/\(cache)/flush", "")
        }
        let flushed = try KernelExports(paths: SystemPaths(root: dir)).flushCaches(now: 1_700_000_000)
        #expect(flushed == ["auth.unix.ip", "nfsd.fh", "nfsd.export"])
        #expect(try FileSystem.read("\(dir)/proc/net/rpc/nfsd.fh/flush") == Array("1700000000\n".utf8))
    }
}
