import Dispatch
import Glibc
import Synchronization
import Testing
import TestSupport
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
        #expect(try FileSystem.directoryEntries(dir) == ["etab"], "no temporary file left behind")
    }

    @Test("errors keep the call, the path and errno")
    func errors() {
        do {
            try FileSystem.replaceIfChanged("/nonexistent/dir/etab", with: [])
            Issue.record("wrote into a missing directory")
        } catch {
            #expect(error.call == "open(O_CREAT|O_EXCL|O_NOFOLLOW)")
            #expect(error.subject.hasPrefix("/nonexistent/dir/etab.tmp.\(getpid())."))
            #expect(error.errno == ENOENT)
        }
        #expect(SystemError("open", "/x", errno: EACCES).description == "open /x: Permission denied")
    }

    @Test("every file is created with O_EXCL|O_NOFOLLOW|O_CLOEXEC; the lock and the child log refuse symlinks")
    func creationFlags() {
        let create = FileSystem.OpenFlags.createNew
        #expect(create & (O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC) == O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)
        #expect(create & O_TRUNC == 0, "a new file has nothing to truncate; O_TRUNC would only hide a reused one")
        #expect(FileSystem.OpenFlags.lockFile & (O_NOFOLLOW | O_CLOEXEC) == O_NOFOLLOW | O_CLOEXEC)
        #expect(FileSystem.OpenFlags.childLog & (O_NOFOLLOW | O_APPEND) == O_NOFOLLOW | O_APPEND)
        #expect(FileSystem.OpenFlags.childLog & O_CLOEXEC == 0, "the child's stdout must survive exec")
    }

    @Test("temporary names are unique per call and carry the pid")
    func temporaryNames() {
        let names = Set((0..<100).map { _ in FileSystem.temporaryName(for: "/var/lib/nfs/etab") })
        #expect(names.count == 100)
        #expect(names.allSatisfy { $0.hasPrefix("/var/lib/nfs/etab.tmp.\(getpid()).") })
    }

    @Test("a symlink planted at the old fixed name path.tmp is not followed", arguments: [true, false])
    func plantedSymlink(targetExists: Bool) throws {
        let dir = temporaryDirectory()
        defer { removeTree(dir) }
        let path = dir + "/etab", victim = dir + "/victim"
        if targetExists { writeFile(victim, "precious\n") }
        #expect(symlink(victim, path + ".tmp") == 0)
        #expect(try FileSystem.replaceIfChanged(path, with: Array("new\n".utf8)))
        #expect(try FileSystem.read(path) == Array("new\n".utf8))
        if targetExists {
            #expect(try FileSystem.read(victim) == Array("precious\n".utf8), "the symlink's target is untouched")
        } else {
            #expect(!FileSystem.exists(victim), "a dangling symlink did not create its target")
        }
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path + ".tmp", &buffer, buffer.count - 1)
        #expect(count > 0 && String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) == victim,
                "the planted symlink is left as it was")
    }

    @Test("createNew and FileLock refuse a planted symlink")
    func createNewRefuses() throws {
        let dir = temporaryDirectory()
        defer { removeTree(dir) }
        writeFile(dir + "/victim", "precious\n")
        #expect(symlink(dir + "/victim", dir + "/link") == 0)
        #expect(throws: SystemError("open(O_CREAT|O_EXCL|O_NOFOLLOW)", dir + "/link", errno: EEXIST)) {
            _ = try FileSystem.createNew(dir + "/link", mode: 0o644)
        }
        #expect(throws: SystemError("open(O_CREAT|O_EXCL|O_NOFOLLOW)", dir + "/victim", errno: EEXIST)) {
            _ = try FileSystem.createNew(dir + "/victim", mode: 0o644)
        }
        #expect(throws: SystemError("open", dir + "/link", errno: ELOOP)) { _ = try FileLock(path: dir + "/link") }
        #expect(try FileSystem.read(dir + "/victim") == Array("precious\n".utf8))
    }

    @Test("concurrent writers do not clobber each other's temporary file")
    func concurrentWriters() throws {
        let dir = temporaryDirectory()
        defer { removeTree(dir) }
        let path = dir + "/status"
        let writers = 4, rounds = 40
        // Large enough that one write(2) does not finish before another
        // writer starts: with one shared temporary name they would mix.
        let contents = (0..<writers).map { [UInt8](repeating: UInt8(ascii: "a") + UInt8($0), count: 256 * 1024) }
        let problems = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: writers) { writer in
            for _ in 0..<rounds {
                do {
                    try FileSystem.replaceIfChanged(path, with: contents[writer])
                    let now = try FileSystem.read(path)
                    if !contents.contains(now) { problems.withLock { $0.append("a mixed file of \(now.count) bytes") } }
                } catch {
                    problems.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(problems.withLock { $0 } == [])
        #expect(try FileSystem.directoryEntries(dir) == ["status"], "no temporary file left behind")
    }

    @Test("exports.d files are read in version order", arguments: [
        (["b.exports", "10.exports", "9.exports", "a.exports"], ["9.exports", "10.exports", "a.exports", "b.exports"]),
        (["x-2.exports", "x-10.exports", "x-1.exports"], ["x-1.exports", "x-2.exports", "x-10.exports"]),
    ])
    func versionOrder(names: [String], sorted: [String]) {
        #expect(names.sorted(by: VersionOrder.less) == sorted)
    }

    @Test("nfs.conf: sections, comments, later files win")
    func nfsConf() throws {
        var conf = NFSConf()
        conf.add("[exportfs]\n# comment\nstate-directory-path = /var/lib/nfs2 ; trailing\n[nfsd]\nvers4.1=y\n", file: "a")
        conf.add("[NFSD]\n threads = 16\nvers4.1 = n\n", file: "b")
        #expect(conf.string("exportfs", "state-directory-path") == "/var/lib/nfs2")
        #expect(try conf.value("nfsd", "threads", as: .integer(0...8192)) == 16)
        #expect(try conf.value("nfsd", "vers4.1", as: .boolean) == false)
        #expect(conf.value("nfsd", "threads")?.file == "b")
    }

    // Found by fuzz-nfs-conf: "\r\n" is one Character, so a file with CRLF
    // line ends was read as one line (one section, no keys).
    @Test("nfs.conf with CRLF line ends")
    func nfsConfCRLF() throws {
        var conf = NFSConf()
        conf.add("[nfsd]\r\nthreads = 8\r\n[mountd]\r\nmanage-gids = y\r\n", file: "a")
        #expect(try conf.value("nfsd", "threads", as: .integer(0...8192)) == 8)
        #expect(try conf.value("mountd", "manage-gids", as: .boolean) == true)
        #expect(conf.value("mountd", "manage-gids")?.line == 4)
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

@Suite("text from other processes' files")
struct TerminalTextTests {
    @Test("control characters and backslash are escaped for a terminal", arguments: [
        ("/run/vm7.vsock_2049", "/run/vm7.vsock_2049"),
        ("/run/\u{1b}[2J\u{1b}]0;owned\u{07}vm", "/run/\\033[2J\\033]0;owned\\007vm"),
        ("a\nbridge:     running\r", "a\\012bridge:     running\\015"),
        ("del\u{7f} csi\u{9b}31m", "del\\177 csi\\302\\23331m"),
        ("back\\slash", "back\\\\slash"),
        ("grüße ✓", "grüße ✓"),
    ])
    func terminal(raw: String, shown: String) {
        #expect(TerminalText.escape(raw) == shown)
    }

    @Test("JSON escapes C0, DEL and C1, so its output has no raw control byte")
    func json() {
        #expect(JSONText.quote("a\u{1b}[31m\nb\u{7f}\u{9b}\"\\") == "\"a\\u001b[31m\\nb\\u007f\\u009b\\\"\\\\\"")
        let quoted = JSONText.quote((0..<0x100).map { String(Unicode.Scalar(UInt8($0))) }.joined())
        #expect(!quoted.unicodeScalars.contains(where: TerminalText.isControl))
    }
}

@Suite("temporaries left by a killed writer")
struct StaleTemporaryTests {
    @Test("those of pids that no longer run go; a running pid's, other files' and our own stay")
    func removeStale() throws {
        let directory = try TemporaryDirectory(prefix: "stale-tmp")
        let etab = directory.path + "/etab"
        let child = fork()
        if child == 0 { _exit(0) }
        waitpid(child, nil, 0)
        let names = ["etab.tmp.\(child).1f", "etab.tmp.\(child).2e", "etab.tmp.\(getppid()).3d", "etab.tmp.\(getpid()).4c",
                     "rmtab.tmp.\(child).5b", "etab.tmp.x.6a", "etab"]
        for name in names { try FileSystem.replaceIfChanged(directory.path + "/" + name, with: [0x41]) }
        #expect(FileSystem.removeStaleTemporaries(beside: etab) == 2)
        let left = try #require(try FileSystem.directoryEntries(directory.path))
        #expect(Set(left) == Set(["etab", "etab.tmp.\(getppid()).3d", "etab.tmp.\(getpid()).4c", "rmtab.tmp.\(child).5b", "etab.tmp.x.6a"]))
    }
}
