import Glibc
import Testing
@testable import NFSAdmin
import RPCMetrics

private let rpc = RPCCounts(calls: 12, replies: 11, rpcErrors: 1, nfsErrors: 3, untimedCalls: 2, unparsedConnections: 1,
                            latency: RPCLatency(buckets: [6, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], sumMicroseconds: 7_005_230)!)

private let sample = BridgeStatus(
    pid: 1234, processStart: 4_567_890, started: 1_763_786_000, target: "127.0.0.1:2049",
    loopbackBlock: "127.128.0.0/9", maxPerGuest: 16, maxConnections: 1024, idleTimeout: 900,
    listeners: [.vsock(port: 2049), .unix(path: "/run/vm 7\\x.vsock_2049", cid: 7)],
    guests: [
        .init(cid: 1, address: "127.128.0.1", open: 2, accepted: 5, refused: 0,
              bytesFromGuest: 1200, bytesToGuest: 5_400_000_000, lastActivity: 1_763_786_011, rpc: rpc),
        .init(cid: 7, address: "127.128.0.7", open: 4, accepted: 4, refused: 3, lastActivity: 1_763_786_012),
    ])

@Suite("bridge status file")
struct BridgeStatusTests {
    @Test("the documented format, word for word")
    func format() {
        #expect(sample.text == """
            nfs-vsock-bridge-status 1
            pid 1234 4567890
            started 1763786000
            target 127.0.0.1:2049
            loopback-block 127.128.0.0/9
            limits max-per-guest=16 max-connections=1024 idle-timeout=900
            listen vsock 2049
            listen unix /run/vm\\0407\\134x.vsock_2049 7
            guest 1 127.128.0.1 open=2 accepted=5 refused=0 from-guest=1200 to-guest=5400000000 last=1763786011 \
            rpc-calls=12 rpc-replies=11 rpc-errors=1 nfs-errors=3 rpc-untimed=2 rpc-unparsed=1 rtt-sum-us=7005230 \
            rtt-buckets=6,2,1,0,0,0,0,0,0,0,0,0,0,1
            guest 7 127.128.0.7 open=4 accepted=4 refused=3 from-guest=0 to-guest=0 last=1763786012

            """)
    }

    @Test("parse reads back what text wrote (escaped paths included)")
    func roundTrip() throws {
        #expect(try BridgeStatus.parse(sample.text) == sample)
    }

    @Test("a carriage return, or any control character, in a field is escaped: a raw one before the newline would join two lines (found by fuzz-bridge-status)")
    func controlCharacters() throws {
        var status = sample
        status.loopbackBlock = "127.128.0.0/\u{01}\0\r"
        status.target = "a\tb\u{7f}"
        #expect(!status.text.unicodeScalars.contains { $0 == "\r" || $0 == "\u{01}" || $0 == "\u{7f}" })
        #expect(try BridgeStatus.parse(status.text) == status)
    }

    @Test("a \\ooo above \\377 in a hand-written file is text, as in the cache channels")
    func literalOctal() throws {
        let text = "nfs-vsock-bridge-status 1\npid 1 2\nlisten unix /run/vm\\777.vsock_2049 7\n"
        #expect(try BridgeStatus.parse(text).listeners.last == .unix(path: "/run/vm\\777.vsock_2049", cid: 7))
    }

    @Test("the unprivileged quota: written when known, read back, absent from older bridges' files")
    func unprivilegedQuota() throws {
        var status = sample
        status.maxUnprivilegedPerGuest = 4
        #expect(status.text.contains("limits max-per-guest=16 max-connections=1024 idle-timeout=900 max-unprivileged-per-guest=4\n"))
        #expect(try BridgeStatus.parse(status.text) == status)
        #expect(try BridgeStatus.parse(sample.text).maxUnprivilegedPerGuest == nil)
    }

    @Test("RPC counts: nil for a guest line without them (an older bridge's), zeros for fields left out")
    func rpcFields() throws {
        let text = """
            nfs-vsock-bridge-status 1
            pid 77
            guest 3 127.128.0.3 open=1 accepted=1 refused=0 from-guest=10 to-guest=20 last=5
            guest 4 127.128.0.4 open=1 rpc-calls=2 nfs-errors=1

            """
        let status = try BridgeStatus.parse(text)
        #expect(status.guests[0].rpc == nil && status.guests[0].bytesToGuest == 20)
        #expect(status.guests[1].rpc == RPCCounts(calls: 2, nfsErrors: 1))
        #expect(try BridgeStatus.parse(status.text) == status)
        #expect(status.text.contains("guest 3 127.128.0.3 open=1 accepted=1 refused=0 from-guest=10 to-guest=20 last=5\n"),
                "no RPC fields written for a guest that has none")
    }

    @Test("unknown lines and fields are skipped; guests come out sorted by CID")
    func forwardCompatible() throws {
        let text = """
            nfs-vsock-bridge-status 1
            pid 77
            colour blue
            listen carrier-pigeon 3
            guest 9 127.128.0.9 open=1 mood=calm
            guest 3 - open=0

            """
        let status = try BridgeStatus.parse(text)
        #expect(status.pid == 77 && status.processStart == 0)
        #expect(status.listeners.isEmpty)
        #expect(status.guests.map(\.cid) == [3, 9])
        #expect(status.guests[0].address == "-")
        #expect(status.guests[1].open == 1)
    }

    // Found by fuzz-bridge-status: a file without a target line parsed, but
    // the text written for it ("target " with an empty word) did not.
    @Test("a status without target or loopback block reads back from its own text")
    func emptyWords() throws {
        let status = try BridgeStatus.parse("nfs-vsock-bridge-status 1\npid 77\n")
        #expect(status.target == "" && status.loopbackBlock == "")
        #expect(try BridgeStatus.parse(status.text) == status)
    }

    @Test("broken files say which line is wrong", arguments: [
        ("", "empty"),
        ("something else\n", "not a bridge status file"),
        ("nfs-vsock-bridge-status 2\npid 1\n", "not version 1"),
        ("nfs-vsock-bridge-status 1\nstarted 5\n", "no pid line"),
        ("nfs-vsock-bridge-status 1\npid x\n", "line 2: pid"),
        ("nfs-vsock-bridge-status 1\npid 1\nguest 1 127.128.0.1 open=many\n", "line 3: guest: open=many"),
        ("nfs-vsock-bridge-status 1\npid 1\nlisten vsock\n", "line 3: listen"),
        ("nfs-vsock-bridge-status 1\npid 1\nguest 1 - rpc-calls=x\n", "line 3: guest: rpc-calls=x is not a number"),
        ("nfs-vsock-bridge-status 1\npid 1\nguest 1 - rpc-calls=1 rtt-buckets=1,2,3\n", "line 3: guest: rtt-buckets=1,2,3 is not 14 numbers"),
        ("nfs-vsock-bridge-status 1\npid 1\nguest 1 - rpc-calls=1 rtt-buckets=0,0,0,0,0,0,0,0,0,0,0,0,0,\n", "is not 14 numbers"),
    ])
    func broken(text: String, message: String) {
        do {
            _ = try BridgeStatus.parse(text)
            Issue.record("accepted \(text.debugDescription)")
        } catch {
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test("the file: written atomically under a new directory, running or stale by pid, absent once removed")
    func file() throws {
        let root = temporaryDirectory()
        defer { removeTree(root) }
        let paths = SystemPaths(root: root)
        #expect(paths.bridgeStatus == root + "/run/nfs-vsock-bridge/status")
        let file = BridgeStatusFile(paths: paths)
        #expect(file.read() == .absent)
        mkdir(root + "/run", 0o755)
        try file.write(sample)
        #expect(file.read(isRunning: { pid, start in pid == 1234 && start == 4_567_890 }) == .running(sample))
        #expect(file.read(isRunning: { _, _ in false }) == .stale(sample))
        writeFile(file.path, "garbage\n")
        guard case .unreadable(let reason) = file.read() else {
            Issue.record("garbage was read as a status")
            return
        }
        #expect(reason.contains(file.path) && reason.contains("line 1"))
        file.remove()
        #expect(file.read() == .absent)
    }

    @Test("liveness: this process runs with its own start time; another start time or a dead pid does not")
    func liveness() throws {
        let start = try #require(ProcessIdentity.startTime(of: getpid()))
        #expect(ProcessIdentity.runs(getpid(), start))
        #expect(ProcessIdentity.runs(getpid(), 0), "an unknown start time trusts the pid")
        #expect(!ProcessIdentity.runs(getpid(), start + 1), "a reused pid is not the bridge")
        let child = fork()
        if child == 0 { _exit(0) }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        #expect(!ProcessIdentity.runs(child, 0))
    }
}
