import NFSExports
import RPCMetrics

/// What nfs-vsock-bridge publishes about itself for `nfsd-control status`:
/// its listeners, target and limits, and per guest CID the mapped loopback
/// address, connections, bytes and RPC counts. The bridge rewrites the
/// file atomically (temporary file + rename) when something changed, at
/// most a few times a second; readers tell a stale file (a bridge killed with SIGKILL) by the
/// pid and process start time it names.
///
/// The file is text, one record per line, words separated by one space and
/// escaped as in the kernel's cache channels (`\ooo` for space, tab,
/// newline and backslash):
///
///     nfs-vsock-bridge-status 1
///     pid 1234 4567890
///     started 1763786000
///     target 127.0.0.1:2049
///     loopback-block 127.128.0.0/9
///     limits max-per-guest=16 max-connections=1024 idle-timeout=900 max-unprivileged-per-guest=4
///     listen vsock 2049
///     listen unix /run/vm7.vsock_2049 7
///     guest 1 127.128.0.1 open=1 accepted=3 refused=0 from-guest=1200 to-guest=5400 last=1763786011 rpc-calls=12 rpc-replies=12 rpc-errors=0 nfs-errors=1 rpc-untimed=0 rpc-unparsed=0 rtt-sum-us=5230 rtt-buckets=9,2,1,0,0,0,0,0,0,0,0,0,0,0
///
/// `pid` carries the process start time (field 22 of /proc/PID/stat) so a
/// reused pid is not mistaken for the bridge. Times are seconds since the
/// epoch. Readers ignore lines and `key=value` fields they do not know.
/// The `rpc-`, `nfs-` and `rtt-` fields (RPCCounts; the round trips per
/// bucket of RPCLatency.boundsMicroseconds, +Inf last) are missing from
/// the files of bridges that did not count RPCs.
public struct BridgeStatus: Sendable, Equatable {
    public static let header = "nfs-vsock-bridge-status"
    public static let version = 1

    public enum Listener: Sendable, Equatable {
        case vsock(port: UInt32)
        case unix(path: String, cid: UInt32)
    }

    public struct Guest: Sendable, Equatable {
        public var cid: UInt32
        /// The loopback address the guest's connections come from ("-"
        /// when the CID has none in the block).
        public var address: String
        /// Connections open now.
        public var open: Int
        /// Connections forwarded since the bridge started.
        public var accepted: Int
        /// Connections refused by a limit.
        public var refused: Int
        public var bytesFromGuest: UInt64
        public var bytesToGuest: UInt64
        /// Seconds since the epoch; 0 if nothing happened yet.
        public var lastActivity: Int
        /// Over all its connections; nil from a bridge that did not count.
        public var rpc: RPCCounts?

        public init(cid: UInt32, address: String, open: Int = 0, accepted: Int = 0, refused: Int = 0,
                    bytesFromGuest: UInt64 = 0, bytesToGuest: UInt64 = 0, lastActivity: Int = 0, rpc: RPCCounts? = nil) {
            self.cid = cid
            self.address = address
            self.open = open
            self.accepted = accepted
            self.refused = refused
            self.bytesFromGuest = bytesFromGuest
            self.bytesToGuest = bytesToGuest
            self.lastActivity = lastActivity
            self.rpc = rpc
        }
    }

    public var pid: Int32
    /// The process start time in clock ticks since boot (/proc/PID/stat).
    public var processStart: UInt64
    public var started: Int
    public var target: String
    public var loopbackBlock: String
    public var maxPerGuest: Int
    /// nil: a bridge from before the unprivileged quota.
    public var maxUnprivilegedPerGuest: Int? = nil
    public var maxConnections: Int
    public var idleTimeout: Int
    public var listeners: [Listener]
    /// Sorted by CID.
    public var guests: [Guest]

    public init(pid: Int32, processStart: UInt64, started: Int, target: String, loopbackBlock: String,
                maxPerGuest: Int, maxConnections: Int, idleTimeout: Int, listeners: [Listener], guests: [Guest]) {
        self.pid = pid
        self.processStart = processStart
        self.started = started
        self.target = target
        self.loopbackBlock = loopbackBlock
        self.maxPerGuest = maxPerGuest
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.listeners = listeners
        self.guests = guests
    }

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    // MARK: writing

    public var text: String {
        var lines = ["\(Self.header) \(Self.version)", "pid \(pid) \(processStart)", "started \(started)",
                     "target \(word(target))", "loopback-block \(word(loopbackBlock))",
                     "limits max-per-guest=\(maxPerGuest) max-connections=\(maxConnections) idle-timeout=\(idleTimeout)"
                        + (maxUnprivilegedPerGuest.map { " max-unprivileged-per-guest=\($0)" } ?? "")]
        for listener in listeners {
            switch listener {
            case .vsock(let port): lines.append("listen vsock \(port)")
            case .unix(let path, let cid): lines.append("listen unix \(word(path)) \(cid)")
            }
        }
        for guest in guests {
            lines.append("guest \(guest.cid) \(word(guest.address)) open=\(guest.open) accepted=\(guest.accepted) "
                         + "refused=\(guest.refused) from-guest=\(guest.bytesFromGuest) to-guest=\(guest.bytesToGuest) "
                         + "last=\(guest.lastActivity)" + (guest.rpc.map(Self.rpcFields) ?? ""))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: reading

    public static func parse(_ text: String) throws(Problem) -> BridgeStatus {
        var status = BridgeStatus(pid: 0, processStart: 0, started: 0, target: "", loopbackBlock: "",
                                  maxPerGuest: 0, maxConnections: 0, idleTimeout: 0, listeners: [], guests: [])
        var sawHeader = false
        var sawPID = false
        for (offset, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = offset + 1
            let words = line.split(separator: " ").map { CacheText.text(ofWord: $0) }
            guard let key = words.first else { continue }
            func fail(_ message: String) -> Problem { Problem(line: number, message: message) }
            if !sawHeader {
                guard key == header, words.count >= 2 else { throw fail("not a bridge status file (no \"\(header)\" line)") }
                guard Int(words[1]) == version else { throw fail("status format \(words[1]) is not version \(version)") }
                sawHeader = true
                continue
            }
            func int(_ index: Int) throws(Problem) -> Int {
                guard index < words.count, let value = Int(words[index]) else { throw fail("\(key): expected a number") }
                return value
            }
            func text(_ index: Int) throws(Problem) -> String {
                guard index < words.count else { throw fail("\(key): missing a value") }
                return words[index]
            }
            let fields = keyValues(words.dropFirst())
            func field(_ name: String) throws(Problem) -> Int {
                guard let raw = fields[name] else { return 0 }
                guard let value = Int(raw) else { throw fail("\(key): \(name)=\(raw) is not a number") }
                return value
            }
            func counter(_ name: String) throws(Problem) -> UInt64 {
                guard let raw = fields[name] else { return 0 }
                guard let value = UInt64(raw) else { throw fail("\(key): \(name)=\(raw) is not a number") }
                return value
            }
            func latency() throws(Problem) -> RPCLatency {
                let sum = try counter("rtt-sum-us")
                guard let raw = fields["rtt-buckets"] else {
                    var none = RPCLatency()
                    none.sumMicroseconds = sum
                    return none
                }
                let words = raw.split(separator: ",", omittingEmptySubsequences: false)
                let counts = words.compactMap { UInt64($0) }
                guard counts.count == words.count, let latency = RPCLatency(buckets: counts, sumMicroseconds: sum) else {
                    throw fail("\(key): rtt-buckets=\(raw) is not \(RPCLatency.bucketCount) numbers")
                }
                return latency
            }
            switch key {
            case "pid":
                guard let pid = Int32(try text(1)), pid > 0 else { throw fail("pid: expected a process id") }
                status.pid = pid
                status.processStart = words.count > 2 ? UInt64(words[2]) ?? 0 : 0
                sawPID = true
            case "started": status.started = try int(1)
            // Without a value: empty, as when the line is missing (an empty
            // value is also what `text` writes for an empty target).
            case "target": status.target = words.count > 1 ? words[1] : ""
            case "loopback-block": status.loopbackBlock = words.count > 1 ? words[1] : ""
            case "limits":
                status.maxPerGuest = try field("max-per-guest")
                status.maxConnections = try field("max-connections")
                status.idleTimeout = try field("idle-timeout")
                if fields["max-unprivileged-per-guest"] != nil {
                    status.maxUnprivilegedPerGuest = try field("max-unprivileged-per-guest")
                }
            case "listen":
                switch try text(1) {
                case "vsock":
                    guard let port = UInt32(try text(2)) else { throw fail("listen vsock: bad port") }
                    status.listeners.append(.vsock(port: port))
                case "unix":
                    guard let cid = UInt32(try text(3)) else { throw fail("listen unix: bad CID") }
                    status.listeners.append(.unix(path: try text(2), cid: cid))
                default: continue
                }
            case "guest":
                guard let cid = UInt32(try text(1)) else { throw fail("guest: bad CID") }
                var rpc: RPCCounts? = nil
                if fields["rpc-calls"] != nil {
                    rpc = RPCCounts(
                        calls: try counter("rpc-calls"), replies: try counter("rpc-replies"),
                        rpcErrors: try counter("rpc-errors"), nfsErrors: try counter("nfs-errors"),
                        untimedCalls: try counter("rpc-untimed"), unparsedConnections: try counter("rpc-unparsed"),
                        latency: try latency())
                }
                status.guests.append(Guest(
                    cid: cid, address: try text(2), open: try field("open"), accepted: try field("accepted"),
                    refused: try field("refused"), bytesFromGuest: try counter("from-guest"),
                    bytesToGuest: try counter("to-guest"), lastActivity: try field("last"), rpc: rpc))
            default:
                continue
            }
        }
        guard sawHeader else { throw Problem(line: 1, message: "empty bridge status file") }
        guard sawPID else { throw Problem(line: 1, message: "no pid line") }
        status.guests.sort { $0.cid < $1.cid }
        return status
    }

    /// A guest's RPC counts as `key=value` fields, each with a space before.
    private static func rpcFields(_ rpc: RPCCounts) -> String {
        " rpc-calls=\(rpc.calls) rpc-replies=\(rpc.replies) rpc-errors=\(rpc.rpcErrors) nfs-errors=\(rpc.nfsErrors)"
            + " rpc-untimed=\(rpc.untimedCalls) rpc-unparsed=\(rpc.unparsedConnections)"
            + " rtt-sum-us=\(rpc.latency.sumMicroseconds) rtt-buckets=\(rpc.latency.perBucket.map(String.init).joined(separator: ","))"
    }

    private static func keyValues(_ words: ArraySlice<String>) -> [String: String] {
        var result: [String: String] = [:]
        for word in words {
            guard let equals = word.firstIndex(of: "=") else { continue }
            result[String(word[..<equals])] = String(word[word.index(after: equals)...])
        }
        return result
    }

    /// A field as one word: every control character escaped too (not only
    /// the cache channels' space, tab, newline and backslash), since a raw
    /// carriage return before the line's newline would make the two one
    /// Character ("\r\n") and the reader's line split would miss it.
    private func word(_ text: String) -> String {
        OctalEscape.escape(text) { byte in byte <= 0x20 || byte == 0x7F || byte == 0x5C }
    }
}
