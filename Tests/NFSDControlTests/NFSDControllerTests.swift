import Glibc
import NFSAdmin
import Testing
import TestSupport
@testable import NFSDControl

/// A fake /proc/fs/nfsd under a moved root: regular files holding what the
/// kernel would show. Every write lands at offset 0 and ends in a newline,
/// so a file's first line is the last value written to it.
final class FakeNFSD {
    let root: String
    let paths: SystemPaths
    private(set) var logged: [String] = []
    private let directory: TemporaryDirectory

    init(files: [String: String] = [:], directories: [String] = []) throws {
        directory = try TemporaryDirectory(prefix: "nfsd-tests")
        root = directory.path
        paths = directory.paths
        try FileSystem.makeDirectories(paths.procNFSD, mode: 0o755)
        let defaults = ["threads": "0\n", "versions": "-2 +3 +4 +4.0 +4.1 +4.2\n", "nfsv4leasetime": "90\n",
                        "nfsv4gracetime": "90\n", "portlist": ""]
        for (name, text) in defaults.merging(files, uniquingKeysWith: { $1 }) where !directories.contains(name) {
            try FileSystem.replaceIfChanged(paths.procNFSD + "/" + name, with: Array(text.utf8))
        }
        // A control file that cannot be written: open(O_WRONLY) says EISDIR.
        for name in directories { try FileSystem.makeDirectories(paths.procNFSD + "/" + name, mode: 0o755) }
    }

    func controller(privileged: Bool = true) -> NFSDController {
        NFSDController(kernel: NFSDKernel(paths: paths), log: { [weak self] in self?.logged.append($0) },
                       isPrivileged: { privileged })
    }

    /// The last value written to the file (its first line).
    func value(_ name: String) -> String? {
        guard let bytes = try? FileSystem.readIfExists(paths.procNFSD + "/" + name) else { return nil }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init)
    }
}

/// A loopback TCP port kept for one test: bound with SO_REUSEADDR and not
/// listening, so that no parallel test's ephemeral bind or connect takes it
/// (a port found free and closed at once can be taken: a CI run saw the
/// start test fail with EADDRINUSE), while rpc.nfsd's listener, which sets
/// SO_REUSEADDR too, still binds and listens on it.
private final class ReservedPort {
    let fd: Int32
    let port: UInt16

    init() {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var on: Int32 = 1
        _ = setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        _ = loopbackAddress().withSockaddr { bind(socketFD, $0, $1) }
        fd = socketFD
        port = localPort(socketFD)
    }

    deinit { close(fd) }
}

private func loopbackSettings(port: UInt16) -> NFSDSettings {
    var settings = NFSDSettings()
    settings.hosts = ["127.0.0.1"]
    settings.port = port
    settings.threads = 8
    settings.leaseTime = 45
    settings.graceTime = 50
    settings.versions[.v3] = false
    return settings
}

@Suite("nfsd start and rollback against a fake /proc/fs/nfsd")
struct NFSDControllerTests {
    @Test("a start writes versions, lease and grace, hands over the listener, then starts the threads")
    func start() throws {
        let nfsd = try FakeNFSD()
        let reserved = ReservedPort()
        let port = reserved.port
        #expect(port != 0)
        let settings = loopbackSettings(port: port)
        let report = try withExtendedLifetime(reserved) { try nfsd.controller().start(settings) }
        #expect(report.listeners == ["tcp 127.0.0.1:\(port)"])
        #expect(report.threads == 8 && !report.alreadyRunning && report.vsockForBridge.isEmpty && report.bridgeInstance == nil)
        #expect(nfsd.value("versions") == "-2 -3 +4 +4.0 +4.1 +4.2 ")
        #expect(nfsd.value("nfsv4leasetime") == "45")
        #expect(nfsd.value("nfsv4gracetime") == "50")
        #expect(nfsd.value("threads") == "8")
        // A descriptor number, as rpc.nfsd hands a socket over.
        #expect(nfsd.value("portlist").flatMap { Int($0) } != nil)
        #expect(nfsd.logged.last == "started 8 threads")
    }

    @Test("a listener the kernel refuses undoes the start: threads 0, versions and times as they were")
    func rollbackAfterListener() throws {
        let nfsd = try FakeNFSD(files: ["nfsv4leasetime": "91\n", "nfsv4gracetime": "92\n"], directories: ["portlist"])
        let reserved = ReservedPort()
        let port = reserved.port
        #expect {
            try withExtendedLifetime(reserved) { try nfsd.controller().start(loopbackSettings(port: port)) }
        } throws: { error in
            guard case NFSDError.handOver(.tcp, let name, let cause) = error else { return false }
            return name == "127.0.0.1:\(port)" && cause.errno == EISDIR
        }
        #expect(nfsd.value("threads") == "0")
        #expect(nfsd.value("versions") == "-2 +3 +4 +4.0 +4.1 +4.2")
        #expect(nfsd.value("nfsv4leasetime") == "91")
        #expect(nfsd.value("nfsv4gracetime") == "92")
        #expect(!nfsd.logged.contains("started 8 threads"))
    }

    @Test("a lease time the kernel refuses: versions put back, no listener, no threads")
    func rollbackAfterLease() throws {
        let nfsd = try FakeNFSD(directories: ["nfsv4leasetime"])
        let reserved = ReservedPort()
        #expect {
            try withExtendedLifetime(reserved) { try nfsd.controller().start(loopbackSettings(port: reserved.port)) }
        } throws: { error in
            guard case NFSDError.system(let cause) = error else { return false }
            return cause.errno == EISDIR
        }
        #expect(nfsd.value("versions") == "-2 +3 +4 +4.0 +4.1 +4.2")
        #expect(nfsd.value("nfsv4gracetime") == "90")
        #expect(nfsd.value("threads") == "0")
        #expect(nfsd.value("portlist") == "")
    }

    @Test("without privilege nothing is touched")
    func notRoot() throws {
        let nfsd = try FakeNFSD()
        #expect {
            try nfsd.controller(privileged: false).start(loopbackSettings(port: 2049))
        } throws: { error in
            guard case NFSDError.notRoot = error else { return false }
            return true
        }
        #expect(nfsd.value("versions") == "-2 +3 +4 +4.0 +4.1 +4.2")
        #expect(nfsd.value("threads") == "0")
        #expect(nfsd.logged.isEmpty)
    }

    @Test("settings that describe no server are refused before the privilege check")
    func badSettings() throws {
        let nfsd = try FakeNFSD()
        var settings = loopbackSettings(port: 2049)
        settings.tcp = false
        #expect {
            try nfsd.controller(privileged: false).start(settings)
        } throws: { error in
            guard case NFSDError.badSettings = error else { return false }
            return true
        }
    }

    @Test("a running server: threads set; the listener it has, and versions not named, are left and said so")
    func alreadyRunning() throws {
        let busy = tcpListener()  // plays nfsd's listener: the bind finds the port taken
        defer { close(busy.fd) }
        let nfsd = try FakeNFSD(files: ["threads": "4\n", "versions": "-2 -3 +4 +4.0 +4.1 +4.2\n", "portlist": "tcp \(busy.port)\n"])
        var settings = loopbackSettings(port: busy.port)
        settings.versions = [:]
        settings.leaseTime = nil
        settings.graceTime = nil
        let report = try nfsd.controller().start(settings)
        #expect(report.alreadyRunning && report.threads == 8 && report.listeners == ["tcp \(busy.port)"])
        #expect(report.changed == ["threads 4 -> 8"])
        #expect(report.left == ["versions -2 -3 +4 +4.0 +4.1 +4.2 (none named)",
                                "tcp 127.0.0.1:\(busy.port) (nfsd already listens on tcp port \(busy.port))"])
        #expect(nfsd.value("threads") == "8")
        #expect(nfsd.value("versions") == "-2 -3 +4 +4.0 +4.1 +4.2")
        #expect(nfsd.value("nfsv4leasetime") == "90")
    }

    @Test("a running server: a listener it lacks is added, versions named are written, times named are kept and said so")
    func runningServerChanges() throws {
        let reserved = ReservedPort()
        let port = reserved.port
        let nfsd = try FakeNFSD(files: ["threads": "8\n", "versions": "-2 -3 +4 +4.0 +4.1 +4.2\n", "portlist": "tcp 2049\n"])
        var settings = loopbackSettings(port: port)
        settings.versions = [.v3: true]
        let report = try withExtendedLifetime(reserved) { try nfsd.controller().start(settings) }
        #expect(report.alreadyRunning)
        #expect(report.changed.contains { $0.hasPrefix("versions -2 -3 +4 +4.0 +4.1 +4.2 -> ") })
        #expect(report.changed.contains("listening on tcp 127.0.0.1:\(port)"))
        #expect(report.left.contains("lease time 90 s (a running server keeps it; to have 45 s: rpc.nfsd 0, then start it again)"))
        #expect(report.left.contains("threads 8"))
        #expect(nfsd.value("versions")?.contains("+3") == true)
        #expect(nfsd.value("nfsv4leasetime") == "90", "never written while running")
    }

    @Test("0 threads stops the server")
    func stop() throws {
        let nfsd = try FakeNFSD(files: ["threads": "8\n"])
        var settings = loopbackSettings(port: 2049)
        settings.threads = 0
        let report = try nfsd.controller().start(settings)
        #expect(report == NFSDController.Report())
        #expect(nfsd.value("threads") == "0")
        #expect(nfsd.logged.last == "stopped the NFS server")
    }
}
