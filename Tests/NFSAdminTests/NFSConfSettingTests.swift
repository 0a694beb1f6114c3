import NFSAdmin
import NFSExports
import Testing
import TestSupport

private func conf(_ files: (name: String, text: String)...) -> NFSConf {
    var conf = NFSConf()
    for file in files { conf.add(file.text, file: file.name) }
    return conf
}

@Suite("nfs.conf and the command line: one way for every tool")
struct NFSConfSettingTests {
    @Test("the command line wins, then the last file that sets the key, then the default")
    func precedence() throws {
        let two = conf(("/etc/nfs.conf", "[mountd]\nttl = 60\n"), ("/etc/nfs.conf.d/10-local.conf", "[MOUNTD]\nTTL = 90\n"))
        let ttl = NFSConfType.integer(atLeast: 1)
        #expect(try two.resolve("mountd", "ttl", as: ttl, commandLine: 30, default: 1800) == 30)
        #expect(try two.resolve("mountd", "ttl", as: ttl, default: 1800) == 90)
        #expect(try conf(("/etc/nfs.conf", "[mountd]\nttl = 60\n")).resolve("mountd", "ttl", as: ttl, default: 1800) == 60)
        #expect(try conf().resolve("mountd", "ttl", as: ttl, default: 1800) == 1800)
        #expect(try conf().resolve("mountd", "ttl", as: ttl) == nil)
        #expect(try two.resolve("mountd", "ttl", as: ttl, commandLine: 5) == 5)
        // Another section's key is not this one.
        #expect(try conf(("/etc/nfs.conf", "[nfsd]\nttl = 60\n")).resolve("mountd", "ttl", as: ttl) == nil)
    }

    @Test("a bad value names the file and line that set it, the section and the key", arguments: [
        ("[nfsd]\nthreads = lots\n", "threads", NFSConfType.integer(0...8192), "/etc/nfs.conf.d/20-x.conf:2: [nfsd] threads: expected a number from 0 to 8192, got \"lots\""),
        ("\n\n[nfsd]\nthreads = 9000\n", "threads", .integer(0...8192), "/etc/nfs.conf.d/20-x.conf:4: [nfsd] threads: expected a number from 0 to 8192, got \"9000\""),
        ("[NFSD]\nThreads = 0\n", "threads", .integer(atLeast: 1), "/etc/nfs.conf.d/20-x.conf:2: [nfsd] threads: expected a number of 1 or more, got \"0\""),
    ])
    func badNumber(text: String, key: String, type: NFSConfType<Int>, message: String) {
        let merged = conf(("/etc/nfs.conf", "[nfsd]\nthreads = 8\n"), ("/etc/nfs.conf.d/20-x.conf", text))
        do {
            _ = try merged.resolve("nfsd", key, as: type, default: 8)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.description == message)
            #expect(error.file == "/etc/nfs.conf.d/20-x.conf")
        }
    }

    @Test("a value the command line overrides is not read, so it cannot be wrong")
    func overriddenBadValue() throws {
        let bad = conf(("/etc/nfs.conf", "[nfsd]\nthreads = lots\nudp = maybe\n"))
        #expect(try bad.resolve("nfsd", "threads", as: .integer(0...8192), commandLine: 4, default: 8) == 4)
        #expect(try bad.resolve("nfsd", "udp", as: .boolean, commandLine: false, default: false) == false)
        #expect(throws: NFSConf.Problem.self) { try bad.resolve("nfsd", "udp", as: .boolean, default: false) }
    }

    @Test("booleans are the words nfs-utils' conf_get_bool takes, in any case", arguments: [
        ("y", true), ("yes", true), ("t", true), ("true", true), ("on", true), ("1", true), ("YES", true), ("On", true),
        ("n", false), ("no", false), ("f", false), ("false", false), ("off", false), ("0", false), ("NO", false), ("Off", false),
    ])
    func booleans(text: String, value: Bool) throws {
        #expect(try conf(("/etc/nfs.conf", "[mountd]\nmanage-gids = \(text)\n")).resolve("mountd", "manage-gids", as: .boolean, default: !value) == value)
        #expect(NFSConf.boolean(text) == value)
    }

    // nfs-utils takes the default for any other word; here it is an error
    // with its line, as every bad nfs.conf value is.
    @Test("any other boolean word is an error", arguments: ["maybe", "2", "", "yess", "enabled"])
    func badBooleans(text: String) {
        let merged = conf(("/etc/nfs.conf", "# comment\n[mountd]\nmanage-gids = \(text)\n"))
        #expect(NFSConf.boolean(text) == nil)
        do {
            _ = try merged.resolve("mountd", "manage-gids", as: .boolean, default: false)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.description == "/etc/nfs.conf:3: [mountd] manage-gids: expected y or n, got \"\(text)\"")
        }
    }

    @Test("text, words, vsock ports and the loopback block")
    func otherTypes() throws {
        let merged = conf(("/etc/nfs.conf", """
            [exportfs]
            state-directory-path = "/var/lib/nfs2"
            [nfsd]
            host = 127.0.0.1, ::1  10.0.0.1
            vsock = 2049,3049
            [vsock]
            ports = 2049 0
            loopback-block = 127.64.0.0/10
            """))
        #expect(try merged.resolve("exportfs", "state-directory-path", as: .text) == "/var/lib/nfs2")
        #expect(try merged.resolve("nfsd", "host", as: .words, default: []) == ["127.0.0.1", "::1", "10.0.0.1"])
        #expect(try merged.resolve("nfsd", "vsock", as: .vsockPorts, default: []) == [2049, 3049])
        #expect(try merged.resolve("vsock", "loopback-block", as: .loopbackBlock, default: .default).description == "127.64.0.0/10")
        #expect(throws: NFSConf.Problem(file: "/etc/nfs.conf", line: 7, section: "vsock", key: "ports", problem: "bad vsock port \"0\"")) {
            try merged.resolve("vsock", "ports", as: .vsockPorts, default: [])
        }
        let badBlock = conf(("/etc/nfs.conf", "[vsock]\nloopback-block = 10.0.0.0/8\n"))
        do {
            _ = try badBlock.resolve("vsock", "loopback-block", as: .loopbackBlock, default: .default)
            Issue.record("a block outside 127.0.0.0/8 accepted")
        } catch {
            #expect(error.description.hasPrefix("/etc/nfs.conf:2: [vsock] loopback-block: "), "\(error)")
        }
    }

    @Test("a type read further keeps its problems and adds its own")
    func mapped() throws {
        let port = NFSConfType.integer(0...65535).map { UInt16($0) }
        #expect(try conf(("/etc/nfs.conf", "[mountd]\nport = 20048\n")).resolve("mountd", "port", as: port, default: 0) == 20048)
        #expect(throws: NFSConf.Problem.self) { try conf(("/etc/nfs.conf", "[mountd]\nport = 70000\n")).resolve("mountd", "port", as: port, default: 0) }
    }

    @Test("nfs.conf.d files are merged after nfs.conf, in name order, and named in errors")
    func loadedFiles() throws {
        let root = try TemporaryDirectory(prefix: "nfs-conf-setting")
        let paths = root.paths
        try FileSystem.makeDirectories(paths.nfsConfDirectory, mode: 0o755)
        try FileSystem.replaceIfChanged(paths.nfsConf, with: Array("[nfsd]\nthreads = 4\nudp = y\n".utf8))
        try FileSystem.replaceIfChanged(paths.nfsConfDirectory + "/20-b.conf", with: Array("[nfsd]\nthreads = 16\n".utf8))
        try FileSystem.replaceIfChanged(paths.nfsConfDirectory + "/10-a.conf", with: Array("[nfsd]\nthreads = 12\nudp = sometimes\n".utf8))
        try FileSystem.replaceIfChanged(paths.nfsConfDirectory + "/30-c.txt", with: Array("[nfsd]\nthreads = 99\n".utf8))
        let loaded = NFSConf.load(paths: paths)
        #expect(try loaded.resolve("nfsd", "threads", as: .integer(0...8192), default: 8) == 16)
        #expect(throws: NFSConf.Problem(file: paths.nfsConfDirectory + "/10-a.conf", line: 3, section: "nfsd", key: "udp",
                                        problem: "expected y or n, got \"sometimes\"")) {
            try loaded.resolve("nfsd", "udp", as: .boolean, default: false)
        }
    }
}
