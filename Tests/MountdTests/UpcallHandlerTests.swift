import Glibc
import MountdCore
import NFSAdmin
import NFSExports
import Testing
@testable import Mountd

/// mountd's answers to the kernel's upcalls, end to end through a channel:
/// an etab under a moved root, a request line handed to the daemon as the
/// poll thread would, the reply read from the channel's FIFO.
final class UpcallFixture {
    let root: TestRoot
    let daemon: MountdDaemon
    private(set) var channels: [String: CacheChannel] = [:]

    init(exports: String, directories: [String] = []) throws {
        root = try TestRoot()
        let features = ExportFeatures.assumedWithoutKernel
        let parsed = ExportsParser(features: features).parse(exports, file: "/etc/exports")
        #expect(parsed.diagnostics.filter { $0.severity == .error }.isEmpty)
        try root.write("/var/lib/nfs/etab", ETabFormat.text(parsed.entries, features: features))
        for directory in directories { try root.makeDirectory(directory) }
        daemon = MountdDaemon(paths: root.paths, options: MountdDaemon.Options(),
                              log: DaemonLog(name: "mountd-test", environment: [:], debug: false))
        #expect(daemon.reloadIfNeeded(force: true))
        for cache in ["auth.unix.ip", "nfsd.export", "nfsd.fh"] {
            try root.channelFIFO(cache)
            let channel = CacheChannel(cache: cache, paths: root.paths)
            #expect(channel.open() == nil)
            channels[cache] = channel
        }
    }

    deinit { channels.values.forEach { $0.close() } }

    /// The words of the one reply to `line`.
    func ask(_ cache: String, _ line: String) -> [String] {
        guard let channel = channels[cache] else { return [] }
        daemon.handle(line, on: channel)
        let replies = root.replies(cache)
        #expect(replies.count == 1, "replies to \(line): \(replies)")
        return replies.first.map { $0.split(separator: " ").map(String.init) } ?? []
    }

    /// Whether `line` got no reply at all (within a short wait).
    func unanswered(_ cache: String, _ line: String) -> Bool {
        guard let channel = channels[cache] else { return false }
        daemon.handle(line, on: channel)
        return root.replies(cache, seconds: 0.2).isEmpty
    }
}

private func expiry(_ word: String) -> Bool {
    guard let value = Int(word) else { return false }
    let now = Int(time(nil))
    return value > now && value <= now + CacheReply.ttl + 1
}

@Suite("upcall handler: etab, request line, reply on the channel")
struct UpcallHandlerTests {
    static let exports = """
        /srv/ip 192.168.1.0/24(rw,no_subtree_check)
        /srv/guest vsock:5(ro,no_subtree_check)

        """

    @Test("auth.unix.ip: an IP client gets its domain, a stranger none")
    func ipClients() throws {
        let fixture = try UpcallFixture(exports: Self.exports)
        let known = fixture.ask("auth.unix.ip", "nfsd 192.168.1.5")
        #expect(known.count == 4 && known[0] == "nfsd" && known[1] == "192.168.1.5" && expiry(known[2]))
        #expect(known.last == "192.168.1.0/24")
        let stranger = fixture.ask("auth.unix.ip", "nfsd 10.9.9.9")
        #expect(stranger.count == 3 && stranger[1] == "10.9.9.9" && expiry(stranger[2]))
    }

    @Test("auth.unix.ip: a kernel vsock client is its CID; a guest-block address at the host's nfsd is nobody")
    func guests() throws {
        let fixture = try UpcallFixture(exports: Self.exports)
        let guest = fixture.ask("auth.unix.ip", "nfsd vsock:5")
        #expect(guest.count == 4 && guest[1] == "vsock:5" && guest[3] == "vsock:5")
        let other = fixture.ask("auth.unix.ip", "nfsd vsock:6")
        #expect(other.count == 3)
        // 127.128.0.5 is guest 5 only through the bridge's nfsd.
        let forged = fixture.ask("auth.unix.ip", "nfsd 127.128.0.5")
        #expect(forged.count == 3 && forged[1] == "127.128.0.5")
    }

    @Test("auth.unix.ip: a table with host names answers from the lookup threads")
    func lookedUp() throws {
        let fixture = try UpcallFixture(exports: "/srv/ip 192.168.1.0/24(rw,no_subtree_check) *.invalid(ro,no_subtree_check)\n")
        let reply = fixture.ask("auth.unix.ip", "nfsd 192.168.1.5")
        #expect(reply.count == 4 && reply[1] == "192.168.1.5" && reply[3] == "192.168.1.0/24")
    }

    @Test("nfsd.export: the exported path gets its options, another path is denied")
    func exports() throws {
        let fixture = try UpcallFixture(exports: Self.exports, directories: ["/srv/ip", "/srv/other"])
        let granted = fixture.ask("nfsd.export", "192.168.1.0/24 /srv/ip")
        #expect(granted.count > 3 && granted[0] == "192.168.1.0/24" && granted[1] == "/srv/ip" && expiry(granted[2]))
        let denied = fixture.ask("nfsd.export", "192.168.1.0/24 /srv/other")
        #expect(denied.count == 3 && denied[1] == "/srv/other")
        let otherDomain = fixture.ask("nfsd.export", "vsock:5 /srv/ip")
        #expect(otherDomain.count == 3)
    }

    @Test("nfsd.export: an escaped path is answered escaped")
    func escapedPath() throws {
        let fixture = try UpcallFixture(exports: "\"/srv/a b\" 192.168.1.0/24(rw,no_subtree_check)\n", directories: ["/srv/a b"])
        let reply = fixture.ask("nfsd.export", "192.168.1.0/24 /srv/a\\040b")
        #expect(reply.count > 3 && reply[1] == "/srv/a\\040b")
    }

    @Test("nfsd.fh: an fsid no export has is answered without a path")
    func unknownFileHandle() throws {
        let fixture = try UpcallFixture(exports: Self.exports, directories: ["/srv/ip"])
        let reply = fixture.ask("nfsd.fh", "192.168.1.0/24 1 \\x01000000")
        #expect(reply.count == 4 && reply[0] == "192.168.1.0/24" && reply[1] == "1" && reply[2] == "\\x01000000" && expiry(reply[3]))
    }

    @Test("malformed requests and other service classes get no answer", arguments: [
        ("auth.unix.ip", "nfsd"),
        ("auth.unix.ip", "nfsd not-an-address"),
        ("auth.unix.ip", "lockd 192.168.1.5"),
        ("nfsd.export", "only-a-domain"),
        ("nfsd.fh", "dom 1 \\x0"),
    ])
    func malformed(cache: String, line: String) throws {
        let fixture = try UpcallFixture(exports: Self.exports)
        #expect(fixture.unanswered(cache, line))
    }

    @Test("a reply for a closed channel is dropped, the next after reopening arrives")
    func closedChannel() throws {
        let fixture = try UpcallFixture(exports: Self.exports)
        let channel = try #require(fixture.channels["auth.unix.ip"])
        channel.close()
        fixture.daemon.handle("nfsd 192.168.1.5", on: channel)
        #expect(fixture.root.replies("auth.unix.ip", seconds: 0.2).isEmpty)
        #expect(channel.open() == nil)
        #expect(fixture.ask("auth.unix.ip", "nfsd 192.168.1.6").count == 4)
    }
}

/// mountd's start flushes the kernel's export caches only when they may be
/// stale: after a quick restart the kernel holds requests for the new
/// mountd, and a flush would send them round again.
@Suite("mountd's start: the caches flushed only when stale")
struct StartFlushTests {
    func prepared(flushed: Int, negative: Bool) throws -> (TestRoot, [String: String?]) {
        let root = try TestRoot()
        try root.write("/var/lib/nfs/etab", "")
        for cache in ["auth.unix.ip", "nfsd.export", "nfsd.fh"] {
            try root.channelFIFO(cache)
            let dir = "/proc/net/rpc/\(cache)"
            try root.write(dir + "/flush", "\(flushed)\n")
            try root.write(dir + "/content", negative && cache == "auth.unix.ip" ? "nfsd 10.1.2.3 -no-domain-\n" : "#\n")
        }
        let daemon = MountdDaemon(paths: root.paths, options: MountdDaemon.Options(),
                                  log: DaemonLog(name: "mountd-test", environment: [:], debug: false))
        try daemon.prepare()
        var flushes: [String: String?] = [:]
        for cache in ["auth.unix.ip", "nfsd.export", "nfsd.fh"] { flushes[cache] = try root.text("/proc/net/rpc/\(cache)/flush") }
        return (root, flushes)
    }

    @Test("flushed after etab was written, nothing negative: left alone")
    func leftAlone() throws {
        let later = Int(time(nil)) + 100
        let (_, flushes) = try prepared(flushed: later, negative: false)
        for (cache, text) in flushes { #expect(text == "\(later)\n", "\(cache)") }
    }

    @Test("etab newer than the last flush: flushed now")
    func etabNewer() throws {
        let (_, flushes) = try prepared(flushed: 1000, negative: false)
        let now = Int(time(nil))
        for (cache, text) in flushes {
            let value = Int(text?.dropLast() ?? "") ?? 0
            #expect(value >= now - 5 && value <= now + 5, "\(cache): \(String(describing: text))")
        }
    }

    @Test("a negative answer cached: flushed now")
    func negative() throws {
        let later = Int(time(nil)) + 100
        let (_, flushes) = try prepared(flushed: later, negative: true)
        #expect(flushes["nfsd.export"] != .some("\(later)\n"))
    }
}
