/// Follows the ONC RPC messages on one forwarded connection, from the
/// bytes each direction reads, and counts them (RPCCounts): calls from the
/// client, replies from the server, the replies' RPC and NFS outcome, and
/// each call's round trip, matched by xid.
///
/// A pure incremental state machine: bytes may come split anywhere, and
/// only the first words of each record are looked at (record marking,
/// RFC 5531 section 11: a 4-byte fragment header whose top bit marks the
/// record's last fragment and whose low 31 bits are the fragment's
/// length). Payload is skipped a fragment at a time, never copied. On
/// anything it cannot follow (not RPC, a malformed header) it stops for
/// good and counts the connection as unparsed; the caller forwards the
/// bytes regardless. Memory is bounded by `maxOutstanding` calls.
///
/// The clock is the caller's: `consume` asks it at most once, and only
/// when a call record ends or a server record starts.
public struct RPCStreamParser: Sendable {
    public enum Direction: Sendable {
        /// Bytes from the RPC client (the guest): calls.
        case fromClient
        /// Bytes from the server (nfsd): replies.
        case fromServer
    }

    /// The most outstanding calls timed per connection by default.
    public static let defaultMaxOutstanding = 512

    public private(set) var counts = RPCCounts()
    /// Changes whenever `counts` does: a publisher copies only then.
    public private(set) var revision: UInt64 = 0
    /// False once the stream could not be followed.
    public private(set) var following = true
    public let maxOutstanding: Int
    /// Calls sent and not yet answered, by xid: when the call's last byte
    /// was read (nanoseconds, the low bit cleared) and, in the low bit,
    /// whether its reply carries a procedure status.
    private var outstanding: [UInt32: UInt64] = [:]
    private var client = Reader()
    private var server = Reader()

    public init(maxOutstanding: Int = defaultMaxOutstanding) {
        self.maxOutstanding = max(0, maxOutstanding)
    }

    /// Calls waiting for their reply now.
    public var outstandingCalls: Int { outstanding.count }

    /// Takes the bytes one read of `direction` returned. `clock` gives
    /// monotonic nanoseconds.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer, from direction: Direction, clock: () -> UInt64) {
        guard following, !bytes.isEmpty else { return }
        var reader = direction == .fromClient ? client : server
        var time = LazyTime()
        var index = 0
        while index < bytes.count && following {
            if !reader.inFragment {
                if !reader.inRecord {
                    reader.startRecord()
                    if direction == .fromServer { reader.started = time.now(clock) }
                }
                reader.header = reader.header << 8 | UInt32(bytes[index])
                index += 1
                reader.headerBytes += 1
                if reader.headerBytes == 4 {
                    reader.fragmentLeft = reader.header & 0x7FFF_FFFF
                    reader.lastFragment = reader.header & 0x8000_0000 != 0
                    reader.inFragment = true
                    reader.header = 0
                    reader.headerBytes = 0
                }
            } else if reader.fragmentLeft > 0 {
                if reader.rest || reader.skip > 0 {
                    // Payload (or an opaque to pass over): a whole run at once.
                    var run = min(UInt32(clamping: bytes.count - index), reader.fragmentLeft)
                    if !reader.rest { run = min(run, reader.skip); reader.skip -= run }
                    index += Int(run)
                    reader.fragmentLeft -= run
                } else {
                    reader.word = reader.word << 8 | UInt32(bytes[index])
                    index += 1
                    reader.fragmentLeft -= 1
                    reader.wordBytes += 1
                    if reader.wordBytes == 4 {
                        let word = reader.word
                        reader.word = 0
                        reader.wordBytes = 0
                        take(word, into: &reader, from: direction)
                    }
                }
            }
            if reader.inFragment && reader.fragmentLeft == 0 {
                reader.inFragment = false
                if reader.lastFragment {
                    endRecord(&reader, from: direction, time: &time, clock: clock)
                    reader.inRecord = false
                }
            }
        }
        if direction == .fromClient { client = reader } else { server = reader }
    }

    /// A quiet connection gives back what a burst of outstanding calls
    /// made the table grow to.
    public mutating func trim() {
        guard outstanding.capacity > 2 * max(outstanding.count, 16) else { return }
        var smaller = [UInt32: UInt64](minimumCapacity: outstanding.count)
        for (xid, call) in outstanding { smaller[xid] = call }
        outstanding = smaller
    }

    // MARK: the message header

    enum Kind { case unknown, call, reply, backchannel }

    /// One direction's position in the stream and what its current record
    /// has said so far.
    struct Reader {
        // Record marking.
        var inRecord = false
        var inFragment = false
        var header: UInt32 = 0
        var headerBytes = 0
        var fragmentLeft: UInt32 = 0
        var lastFragment = false
        // The message header: its first words, as many as matter. A call:
        // xid, CALL, rpcvers, prog, vers, proc, the credential's flavor and
        // length, and for RPCSEC_GSS (RFC 2203) its version, procedure,
        // sequence and service. A reply: xid, REPLY, reply_stat, the
        // verifier's flavor and length, (its body skipped) accept_stat, and
        // the procedure's status.
        var words = InlineArray<12, UInt32>(repeating: 0)
        var wordCount = 0
        var word: UInt32 = 0
        var wordBytes = 0
        /// Past what matters: skipped to the record's end.
        var rest = false
        /// Bytes of an opaque (the reply's verifier) still to pass over.
        var skip: UInt32 = 0
        var kind = Kind.unknown
        /// A reply: whether its call said a procedure status follows, and
        /// whether its outcome (denied, accept_stat) has been read.
        var statusFollows = false
        var outcomeKnown = false
        /// When the record's first byte was read (server records).
        var started: UInt64 = 0

        mutating func startRecord() {
            self = Reader()
            inRecord = true
        }

        var xid: UInt32 { words[0] }

        /// Whether the reply to this call starts with a procedure status:
        /// an NFS or NFSACL procedure other than NULL, with its results in
        /// the clear (not under RPCSEC_GSS integrity or privacy, nor a GSS
        /// context call).
        var replyHasStatus: Bool {
            guard wordCount >= 7, words[3] == 100_003 || words[3] == 100_227, words[5] != 0 else { return false }
            guard words[6] == 6 else { return true }
            return wordCount == 12 && words[9] == 0 && words[11] == 1
        }
    }

    /// The header word just completed: what it says, and whether more of
    /// the record matters.
    private mutating func take(_ word: UInt32, into reader: inout Reader, from direction: Direction) {
        reader.words[reader.wordCount] = word
        reader.wordCount += 1
        switch (reader.kind, reader.wordCount) {
        case (.unknown, 2):
            switch (word, direction) {
            case (0, .fromClient):
                reader.kind = .call
            case (1, .fromServer):
                reader.kind = .reply
                counts.replies &+= 1
                if let call = outstanding.removeValue(forKey: reader.xid) {
                    let sent = call & ~1
                    counts.latency.record(microseconds: reader.started >= sent ? (reader.started - sent) / 1000 : 0)
                    reader.statusFollows = call & 1 != 0
                }
                revision &+= 1
            case (1, .fromClient), (0, .fromServer):
                // NFSv4.1's backchannel shares the connection: the server's
                // callbacks and the client's replies to them are not counted.
                reader.kind = .backchannel
                reader.rest = true
            default:
                stop()
            }
        case (.call, 7):
            // The credential's flavor: only RPCSEC_GSS says more that matters.
            if word != 6 { reader.rest = true }
        case (.call, 12):
            reader.rest = true
        case (.reply, 3):
            switch word {
            case 0: break
            case 1:
                counts.rpcErrors &+= 1
                revision &+= 1
                reader.outcomeKnown = true
                reader.rest = true
            default: stop()
            }
        case (.reply, 5):
            // RFC 5531: an opaque_auth body is at most 400 bytes.
            guard word <= 400 else { return stop() }
            reader.skip = (word + 3) & ~3
        case (.reply, 6):
            reader.outcomeKnown = true
            if word != 0 {
                counts.rpcErrors &+= 1
                revision &+= 1
            }
            reader.rest = word != 0 || !reader.statusFollows
        case (.reply, 7):
            if word != 0 {
                counts.nfsErrors &+= 1
                revision &+= 1
            }
            reader.rest = true
        default:
            break
        }
    }

    private mutating func endRecord(_ reader: inout Reader, from direction: Direction, time: inout LazyTime, clock: () -> UInt64) {
        switch reader.kind {
        case .unknown:
            // Ended before its message type: not RPC as we know it.
            stop()
        case .call:
            counts.calls &+= 1
            revision &+= 1
            track(reader.xid, sent: time.now(clock), replyHasStatus: reader.replyHasStatus)
        case .reply:
            if !reader.outcomeKnown { stop() }
        case .backchannel:
            break
        }
    }

    /// Times a call; a full table makes room by giving up on its oldest
    /// call (nfsd may drop a request and never answer it).
    private mutating func track(_ xid: UInt32, sent: UInt64, replyHasStatus: Bool) {
        let call = sent & ~1 | (replyHasStatus ? 1 : 0)
        if outstanding.updateValue(call, forKey: xid) != nil {
            counts.untimedCalls &+= 1
            return
        }
        guard outstanding.count > maxOutstanding else { return }
        if let oldest = outstanding.min(by: { $0.value & ~1 < $1.value & ~1 })?.key {
            outstanding[oldest] = nil
        }
        counts.untimedCalls &+= 1
    }

    private mutating func stop() {
        following = false
        counts.unparsedConnections = 1
        revision &+= 1
        outstanding = [:]
    }
}

/// The time of one read, asked of the clock only if needed.
private struct LazyTime {
    private var value: UInt64? = nil

    mutating func now(_ clock: () -> UInt64) -> UInt64 {
        if let value { return value }
        let read = clock()
        value = read
        return read
    }
}
