#if canImport(Glibc)
import Glibc
#endif
import Testing
import NFSAdmin
@testable import NFSDControl
import RPCMetrics

private let rpc = RPCCounts(calls: 1234, replies: 1230, rpcErrors: 2, nfsErrors: 17, untimedCalls: 4, unparsedConnections: 1,
                            latency: RPCLatency(buckets: [100, 300, 400, 150, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0], sumMicroseconds: 1_234_000)!)

private let status = BridgeStatus(
    pid: 321, processStart: 99, started: 1000, target: "127.0.0.1:2049", loopbackBlock: "127.128.0.0/9",
    maxPerGuest: 4, maxConnections: 1024, idleTimeout: 0,
    listeners: [.vsock(port: 2049), .unix(path: "/run/vm7.vsock_2049", cid: 7)],
    guests: [
        .init(cid: 1, address: "127.128.0.1", open: 1, accepted: 3, refused: 0,
              bytesFromGuest: 1536, bytesToGuest: 20_971_520, lastActivity: 1295, rpc: rpc),
        .init(cid: 7, address: "127.128.0.7", open: 4, accepted: 4, refused: 12, lastActivity: 0),
    ])

/// Guest 1's "rpc" in status --json.
private let rpcJSON = """
    {"calls": 1234, "replies": 1230, "rpcErrors": 2, "nfsErrors": 17, "untimedCalls": 4, "unparsedConnections": 1, \
    "latency": {"count": 1000, "sumMicroseconds": 1234000, "buckets": [{"upToMilliseconds": 0.5, "count": 100}, \
    {"upToMilliseconds": 1, "count": 300}, {"upToMilliseconds": 2, "count": 400}, {"upToMilliseconds": 5, "count": 150}, \
    {"upToMilliseconds": 10, "count": 50}, {"upToMilliseconds": 20, "count": 0}, {"upToMilliseconds": 50, "count": 0}, \
    {"upToMilliseconds": 100, "count": 0}, {"upToMilliseconds": 200, "count": 0}, {"upToMilliseconds": 500, "count": 0}, \
    {"upToMilliseconds": 1000, "count": 0}, {"upToMilliseconds": 2000, "count": 0}, {"upToMilliseconds": 5000, "count": 0}, \
    {"upToMilliseconds": null, "count": 0}]}}
    """

private func report(_ reading: BridgeStatusFile.Reading, pidFile: Int32? = nil) -> BridgeStatusReport {
    BridgeStatusReport(reading: reading, statusPath: "/run/nfs-vsock-bridge/status", pidFilePID: pidFile, now: 1300)
}

private let kernel = NFSDStatus(mounted: true, threads: 8, versions: "-3 +4 +4.1", listeners: ["tcp 2049"],
                                leaseTime: 90, graceTime: 90)

@Suite("nfsd-control status: the bridge")
struct BridgeStatusReportTests {
    @Test("a running bridge: listeners, target, limits, one row per guest (dashes for RPCs a bridge did not count), connections not followed as RPC")
    func running() {
        #expect(report(.running(status)).text == """
            bridge:     running (pid 321), up 5 min
              listens:  vsock port 2049 (every CID), /run/vm7.vsock_2049 (CID 7)
              forwards: to 127.0.0.1:2049, guests from 127.128.0.0/9
              limits:   4 connections per guest, 1024 in total, idle timeout none
              guests:
                CID  ADDRESS      OPEN  ACCEPTED  REFUSED  FROM GUEST  TO GUEST  CALLS  RPC ERR  NFS ERR     RTT  LAST ACTIVITY
                1    127.128.0.1     1         3        0     1.5 KiB  20.0 MiB   1234        2       17  1.2 ms  5 s ago
                7    127.128.0.7     4         4       12         0 B       0 B      -        -        -       -  -
              not RPC:  guest 1 (1 connection): forwarded, not counted

            """)
        var none = status
        none.guests[0].rpc = RPCCounts(calls: 3)
        #expect(report(.running(none)).text.contains("20.0 MiB      3        0        0    -  5 s ago\n"), "no round trip measured yet")
        #expect(!report(.running(none)).text.contains("not RPC:"))
    }

    @Test("stale, absent and pid-file-only bridges", arguments: [
        (BridgeStatusFile.Reading.stale(status), nil, "not running (/run/nfs-vsock-bridge/status is stale: pid 321 is gone)"),
        (.absent, 55, "running (pid 55), no status in /run/nfs-vsock-bridge/status"),
        (.absent, nil, "bridge:     not running"),
        (.unreadable("line 1: bad"), nil, "status unreadable: line 1: bad"),
    ] as [(BridgeStatusFile.Reading, Int32?, String)])
    func otherStates(reading: BridgeStatusFile.Reading, pidFile: Int32?, line: String) {
        #expect(report(reading, pidFile: pidFile).text.contains(line))
    }

    @Test("status shows the bridge's pid as what serves vsock, and its guests")
    func inStatus() {
        var nfsd = kernel
        nfsd.bridge = report(.running(status))
        #expect(nfsd.vsockState == "served by nfs-vsock-bridge (pid 321)")
        #expect(nfsd.text.contains("vsock:      served by nfs-vsock-bridge (pid 321)\nbridge:     running (pid 321)"))
        var without = kernel
        without.bridge = report(.absent)
        #expect(!without.text.contains("bridge:"), "no bridge, no bridge section")
        #expect(without.vsockState == "not served")
        var stale = kernel
        stale.bridge = report(.stale(status))
        #expect(stale.vsockState == "not served", "a stale status does not count as a running bridge")
    }

    @Test("JSON: the bridge object with listeners and guests")
    func json() {
        #expect(report(.running(status)).json == """
            {"running": true, "pid": 321, "statusFile": "/run/nfs-vsock-bridge/status", "started": 1000, \
            "target": "127.0.0.1:2049", "loopbackBlock": "127.128.0.0/9", \
            "limits": {"perGuest": 4, "perGuestUnprivileged": null, "total": 1024, "idleTimeout": 0}, \
            "listeners": [{"type": "vsock", "port": 2049}, {"type": "unix", "path": "/run/vm7.vsock_2049", "cid": 7}], \
            "guests": [{"cid": 1, "address": "127.128.0.1", "open": 1, "accepted": 3, "refused": 0, \
            "bytesFromGuest": 1536, "bytesToGuest": 20971520, "lastActivity": 1295, "rpc": \(rpcJSON)}, \
            {"cid": 7, "address": "127.128.0.7", "open": 4, "accepted": 4, "refused": 12, \
            "bytesFromGuest": 0, "bytesToGuest": 0, "lastActivity": null, "rpc": null}]}
            """)
        #expect(report(.stale(status)).json.contains("\"stale\": true, \"stalePid\": 321"))
        #expect(report(.unreadable("a \"quoted\"\nline")).json.contains("\"error\": \"a \\\"quoted\\\"\\nline\""))
        var nfsd = kernel
        nfsd.bridge = report(.absent)
        #expect(nfsd.json.contains("\"bridge\": {\"running\": false, \"pid\": null"))
    }

    @Test("a status file with ESC sequences and newlines: text shows them escaped, JSON escapes them")
    func hostileStatusFile() throws {
        var template = Array("/tmp/nfs-vsock-status-XXXXXX".utf8CString)
        let root = try #require(template.withUnsafeMutableBufferPointer { buffer in
            // SAFETY: mkdtemp writes into the NUL-terminated template in place.
            mkdtemp(buffer.baseAddress!).map { String(cString: $0) }
        })
        defer { _ = system("rm -rf '\(root)'") }
        mkdir(root + "/run", 0o755)
        var hostile = status
        hostile.listeners = [.unix(path: "/run/\u{1b}[2J\u{1b}]0;pwned\u{07}vm\nbridge:     not running\r", cid: 7)]
        hostile.target = "127.0.0.1:2049\u{1b}[8m"
        hostile.loopbackBlock = "127.128.0.0/9\u{7f}\u{9b}"
        hostile.guests[0].address = "127.128.0.1\n    9    fake"
        let file = BridgeStatusFile(paths: SystemPaths(root: root))
        try file.write(hostile)
        let reading = file.read(isRunning: { _, _ in true })
        #expect(reading == .running(hostile), "the file carries the bytes through its escaping")
        let text = report(reading).text
        #expect(!text.unicodeScalars.contains { TerminalText.isControl($0) && $0 != "\n" }, "no control byte but line ends")
        #expect(text.split(separator: "\n").count == report(.running(status)).text.split(separator: "\n").count,
                "no forged output line")
        #expect(text.contains("  listens:  /run/\\033[2J\\033]0;pwned\\007vm\\012bridge:     not running\\015 (CID 7)\n"))
        #expect(text.contains("  forwards: to 127.0.0.1:2049\\033[8m, guests from 127.128.0.0/9\\177\\302\\233\n"))
        #expect(text.contains("127.128.0.1\\012    9    fake"))
        let json = report(reading).json
        #expect(!json.unicodeScalars.contains(where: TerminalText.isControl), "JSON output has no raw control byte")
        #expect(json.contains(#""path": "/run/\u001b[2J\u001b]0;pwned\u0007vm\nbridge:     not running\r""#))
        #expect(json.contains(#""target": "127.0.0.1:2049\u001b[8m", "loopbackBlock": "127.128.0.0/9\u007f\u009b""#))
        writeFileBytes(file.path, Array("nfs-vsock-bridge-status \u{1b}[31m\n".utf8))
        let unreadable = report(file.read()).text
        #expect(unreadable.contains("status unreadable:") && unreadable.contains("\\033[31m"))
        #expect(!unreadable.unicodeScalars.contains { TerminalText.isControl($0) && $0 != "\n" })
    }

    @Test("an older pid-only pid file is reported as unverified, in text and JSON")
    func unverifiedPIDFile() {
        let unverified = UnverifiedPIDFile(path: "/run/nfs-vsock-bridge.pid", pid: 4242)
        let absent = BridgeStatusReport(reading: .absent, statusPath: "/run/nfs-vsock-bridge/status", pidFilePID: nil,
                                        unverifiedPIDFile: unverified, now: 1300)
        #expect(absent.isWorthShowing)
        #expect(absent.text.hasPrefix("bridge:     unknown\n            /run/nfs-vsock-bridge.pid names pid 4242 without its start time"))
        #expect(absent.json == """
            {"running": false, "pid": null, "statusFile": "/run/nfs-vsock-bridge/status", \
            "unverifiedPidFile": {"path": "/run/nfs-vsock-bridge.pid", "pid": 4242}}
            """)
        var nfsd = kernel
        nfsd.bridge = absent
        #expect(nfsd.vsockState == "not served", "an unverified pid is not counted as the bridge")
        #expect(nfsd.text.contains("bridge:     unknown"))
        #expect(!report(.absent).isWorthShowing)
    }

    @Test("sizes", arguments: [
        (UInt64(0), "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (10_485_760, "10.0 MiB"),
        (5_400_000_000, "5.0 GiB"),
    ])
    func sizes(count: UInt64, text: String) {
        #expect(BridgeStatusReport.bytes(count) == text)
    }

    @Test("durations", arguments: [(-3, "0 s"), (59, "59 s"), (119, "119 s"), (300, "5 min"), (7500, "2 h 5 min"), (90000, "1 d 1 h")])
    func durations(seconds: Int, text: String) {
        #expect(BridgeStatusReport.duration(seconds) == text)
    }
}

private func writeFileBytes(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

@Suite("nfsd-control status: the guests' nfsd")
struct GuestNFSDStatusTests {
    @Test("the nfsd in the bridge's namespace is shown with its recorded block, in text and JSON")
    func guestNFSD() throws {
        var template = Array("/tmp/nfsd-status-XXXXXX".utf8CString)
        let root = template.withUnsafeMutableBufferPointer { buffer in
            // SAFETY: mkdtemp writes into the NUL-terminated template in place.
            String(cString: mkdtemp(buffer.baseAddress!)!)
        }
        let paths = SystemPaths(root: root)
        try FileSystem.makeDirectories(paths.bridgeNFSD, mode: 0o755)
        try FileSystem.makeDirectories(paths.procNFSD, mode: 0o755)
        for (name, text) in [("threads", "8\n"), ("versions", "-3 +4 -4.0 +4.1 +4.2\n"), ("portlist", "tcp 2049\n"), ("max_connections", "1088\n")] {
            try FileSystem.replaceIfChanged(paths.bridgeNFSD + "/" + name, with: Array(text.utf8))
        }
        try FileSystem.replaceIfChanged(paths.bridgeGuestBlock, with: Array("127.64.0.0/10\n".utf8))
        let status = NFSDStatus(kernel: NFSDKernel(paths: paths))
        let guest = try #require(status.guestNFSD)
        #expect(guest.threads == 8 && guest.listeners == ["tcp 2049"] && guest.guestBlock == "127.64.0.0/10" && guest.maxConnections == 1088)
        #expect(status.text.contains("guest nfsd: 8 threads in network namespace nfs-vsock (\(root)/run/netns/nfs-vsock), versions -3 +4 -4.0 +4.1 +4.2, listeners tcp 2049, guests from 127.64.0.0/10, max_connections 1088\n"), "\(status.text)")
        #expect(status.json.contains("\"guestBlock\": \"127.64.0.0/10\", \"maxConnections\": 1088}"), "\(status.json)")
        #expect(status.json.contains("\"guestNFSD\": {\"namespace\": \"\(root)/run/netns/nfs-vsock\", \"threads\": 8"), "\(status.json)")
        #expect(NFSDStatus(kernel: NFSDKernel(paths: SystemPaths(root: root + "/none"))).guestNFSD == nil)
    }
}

@Suite("nfsd-control status --prometheus")
struct PrometheusStatusTests {
    @Test("per guest CID: connections, accepted, refused, bytes, last activity; the server and the bridge's caps")
    func metrics() {
        var full = kernel
        full.bridge = report(.running(status))
        let text = full.prometheus
        for line in [
            "nfs_vsock_nfsd_threads 8",
            "nfs_vsock_bridge_up 1",
            "nfs_vsock_bridge_max_connections 1024",
            "nfs_vsock_bridge_connections 5",
            "# TYPE nfs_vsock_guest_connections_refused_total counter",
            "nfs_vsock_guest_connections{cid=\"1\",address=\"127.128.0.1\"} 1",
            "nfs_vsock_guest_connections_refused_total{cid=\"7\",address=\"127.128.0.7\"} 12",
            "nfs_vsock_guest_sent_bytes_total{cid=\"1\",address=\"127.128.0.1\"} 20971520",
            "nfs_vsock_guest_received_bytes_total{cid=\"1\",address=\"127.128.0.1\"} 1536",
            "nfs_vsock_guest_last_activity_seconds{cid=\"1\",address=\"127.128.0.1\"} 1295",
            "# TYPE nfs_vsock_guest_rpc_calls_total counter",
            "nfs_vsock_guest_rpc_calls_total{cid=\"1\",address=\"127.128.0.1\"} 1234",
            "nfs_vsock_guest_rpc_replies_total{cid=\"1\",address=\"127.128.0.1\"} 1230",
            "nfs_vsock_guest_rpc_errors_total{cid=\"1\",address=\"127.128.0.1\"} 2",
            "nfs_vsock_guest_nfs_errors_total{cid=\"1\",address=\"127.128.0.1\"} 17",
            "nfs_vsock_guest_rpc_untimed_calls_total{cid=\"1\",address=\"127.128.0.1\"} 4",
            "nfs_vsock_guest_rpc_unparsed_connections_total{cid=\"1\",address=\"127.128.0.1\"} 1",
            "# TYPE nfs_vsock_guest_rpc_latency_seconds histogram",
            "nfs_vsock_guest_rpc_latency_seconds_bucket{cid=\"1\",address=\"127.128.0.1\",le=\"0.0005\"} 100",
            "nfs_vsock_guest_rpc_latency_seconds_bucket{cid=\"1\",address=\"127.128.0.1\",le=\"0.002\"} 800",
            "nfs_vsock_guest_rpc_latency_seconds_bucket{cid=\"1\",address=\"127.128.0.1\",le=\"0.01\"} 1000",
            "nfs_vsock_guest_rpc_latency_seconds_bucket{cid=\"1\",address=\"127.128.0.1\",le=\"5\"} 1000",
            "nfs_vsock_guest_rpc_latency_seconds_bucket{cid=\"1\",address=\"127.128.0.1\",le=\"+Inf\"} 1000",
            "nfs_vsock_guest_rpc_latency_seconds_sum{cid=\"1\",address=\"127.128.0.1\"} 1.234",
            "nfs_vsock_guest_rpc_latency_seconds_count{cid=\"1\",address=\"127.128.0.1\"} 1000",
        ] {
            #expect(text.split(separator: "\n").contains(Substring(line)), "\(line)")
        }
        // Every sample line is NAME{LABELS} VALUE or NAME VALUE, each family announced once.
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
        #expect(Set(types).count == types.count)
        let buckets = text.split(separator: "\n").filter { $0.hasPrefix("nfs_vsock_guest_rpc_latency_seconds_bucket{") }
        #expect(buckets.count == 14, "13 bounds and +Inf, for guest 1 alone")
        #expect(!text.split(separator: "\n").contains { $0.contains("rpc") && $0.contains("cid=\"7\"") },
                "guest 7's bridge line had no RPC counts: no RPC series, rather than zeros")
    }

    @Test("decimals for histogram bounds and sums", arguments: [
        (UInt64(500), UInt64(1_000_000), "0.0005"), (2_000_000, 1_000_000, "2"), (1_234_000, 1_000_000, "1.234"),
        (1, 1_000_000, "0.000001"), (500, 1000, "0.5"), (0, 1000, "0"),
    ])
    func decimals(value: UInt64, unit: UInt64, text: String) {
        #expect(BridgeStatusReport.decimal(value, per: unit) == text)
    }

    @Test("mean round trips", arguments: [
        (UInt64(0), "0.0 ms"), (449, "0.4 ms"), (1234, "1.2 ms"), (9_949, "9.9 ms"), (9_950, "10 ms"), (123_456, "123 ms"),
        (999_499, "999 ms"), (999_500, "1.0 s"), (1_500_000, "1.5 s"),
    ])
    func roundTrips(microseconds: UInt64, text: String) {
        #expect(BridgeStatusReport.roundTrip(microseconds) == text)
    }

    @Test("no bridge: up 0 and no guest series; label values escaped")
    func noBridge() {
        var none = kernel
        none.bridge = report(.absent)
        #expect(none.prometheus.contains("nfs_vsock_bridge_up 0\n"))
        #expect(!none.prometheus.contains("nfs_vsock_guest_"))
        #expect(NFSDStatus.labelValue("a\"b\\c\nd") == "a\\\"b\\\\c\\nd")
    }
}
