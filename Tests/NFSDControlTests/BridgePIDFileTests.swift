import Glibc
import Testing
import NFSAdmin
import TestSupport
@testable import NFSDControl

@Suite("rpc.nfsd's bridge pid file")
struct BridgePIDFileTests {
    @Test("parse: pid and start time, an older pid-only file, and what is no pid file", arguments: [
        ("1234 4567890\n", BridgePIDFile(pid: 1234, processStart: 4_567_890)),
        ("1234\n", BridgePIDFile(pid: 1234, processStart: nil)),
        (" 1234 \n", BridgePIDFile(pid: 1234, processStart: nil)),
        ("", nil), ("\n", nil), ("0 5\n", nil), ("-3\n", nil), ("12ab\n", nil), ("12 x\n", nil),
        ("12 5 9\n", nil), ("99999999999\n", nil),
    ] as [(String, BridgePIDFile?)])
    func parse(text: String, record: BridgePIDFile?) {
        #expect(BridgePIDFile.parse(text) == record)
    }

    @Test("text: what parse reads back")
    func roundTrip() {
        let record = BridgePIDFile(pid: 77, processStart: 123_456)
        #expect(record.text == "77 123456\n")
        #expect(BridgePIDFile.parse(record.text) == record)
        #expect(BridgePIDFile(pid: 77, processStart: nil).text == "77\n")
    }

    @Test("verdict: only a matching start time makes the pid the bridge", arguments: [
        (BridgePIDFile(pid: 50, processStart: 900), UInt64?.some(900), BridgePIDFile.Verdict.running(50)),
        (BridgePIDFile(pid: 50, processStart: 900), 901, .notRunning),   // the pid was reused
        (BridgePIDFile(pid: 50, processStart: 900), nil, .notRunning),   // no such process
        (BridgePIDFile(pid: 50, processStart: nil), 900, .unverified(50)),
        (BridgePIDFile(pid: 50, processStart: nil), nil, .notRunning),
    ] as [(BridgePIDFile, UInt64?, BridgePIDFile.Verdict)])
    func verdict(record: BridgePIDFile, startTimeNow: UInt64?, verdict: BridgePIDFile.Verdict) {
        #expect(record.verdict(startTimeNow: startTimeNow) == verdict)
        #expect(verdict.runningPID == (verdict == .running(50) ? 50 : nil), "only a running verdict gives a pid to signal")
    }

    @Test("BridgeProcess reads the pid file under the root and checks it against /proc")
    func process() throws {
        var template = Array("/tmp/nfs-vsock-pidfile-XXXXXX".utf8CString)
        let root = try #require(template.withUnsafeMutableBufferPointer { buffer in
            // SAFETY: mkdtemp writes into the NUL-terminated template in place.
            mkdtemp(buffer.baseAddress!).map { String(cString: $0) }
        })
        defer { _ = system("rm -rf '\(root)'") }
        mkdir(root + "/run", 0o755)
        let bridge = BridgeProcess(paths: SystemPaths(root: root))
        #expect(bridge.recorded == .notRunning, "no pid file")
        let me = getpid()
        let start = try #require(ProcessIdentity.startTime(of: me))
        func record(_ text: String) throws { try FileSystem.replaceIfChanged(bridge.pidFile, with: Array(text.utf8)) }

        try record(BridgePIDFile(pid: me, processStart: start).text)
        #expect(bridge.runningPID == me)
        #expect(bridge.unverified == nil)

        try record(BridgePIDFile(pid: me, processStart: start + 1).text)
        #expect(bridge.recorded == .notRunning, "a pid now held by another process is never the bridge")
        #expect(bridge.runningPID == nil)

        try record("\(me)\n")
        #expect(bridge.recorded == .unverified(me))
        #expect(bridge.runningPID == nil, "an older pid-only file is not signalled")
        let unverified = try #require(bridge.unverified)
        #expect(unverified == UnverifiedPIDFile(path: root + "/run/nfs-vsock-bridge.pid", pid: me))
        #expect(unverified.notice.contains("names pid \(me) without its start time"))
        #expect(unverified.notice.contains("not signalled"))

        let child = fork()
        if child == 0 { _exit(0) }
        waitpid(child, nil, 0)
        try record("\(child)\n")
        #expect(bridge.recorded == .notRunning, "a pid-only file whose process is gone")
        #expect(bridge.stop() == false, "stop signals nothing it cannot verify")
    }

    @Test("a running server keeps the bridge only while it serves exactly the ports asked for")
    func keptBridge() throws {
        let root = try TemporaryDirectory(prefix: "nfs-vsock-wanted")
        mkdir(root.path + "/run", 0o755)
        let bridge = BridgeProcess(paths: root.paths)
        #expect(bridge.wantedPorts == nil)
        try bridge.markWanted(ports: [2049, 3049], target: "127.0.0.1:2049")
        #expect(bridge.wantedPorts == [2049, 3049], "what markWanted wrote reads back")
        #expect(bridge.serves([3049, 2049]) == nil, "no bridge runs")
        let me = getpid()
        let start = try #require(ProcessIdentity.startTime(of: me))
        try FileSystem.replaceIfChanged(bridge.pidFile, with: Array(BridgePIDFile(pid: me, processStart: start).text.utf8))
        #expect(bridge.serves([3049, 2049]) == me, "the same ports in another order")
        #expect(bridge.serves([2049]) == nil, "fewer ports: the bridge must be restarted")
        #expect(bridge.serves([2049, 3049, 4049]) == nil, "more ports")
        #expect(BridgeProcess.ports(inWanted: "ports= target=x\n") == nil)
        #expect(BridgeProcess.ports(inWanted: "target=x\n") == nil)
    }

    @Test("rpc.nfsd says the limit it set, or that the kernel takes none")
    func connectionLimit() {
        var instance = NFSDController.BridgeInstance(namespace: "/run/netns/nfs-vsock", listener: "127.0.0.1:2049", versions: [.v4_1, .v4_2],
                                                     threads: 8, guestBlock: "127.128.0.0/9", bridgeMaxConnections: 320, maxConnections: 384)
        #expect(instance.connectionLimit == "max_connections 384 (the bridge's max-connections 320 + 64)")
        instance.maxConnections = nil
        #expect(instance.connectionLimit.hasPrefix("no max_connections in this kernel"))
    }
}
