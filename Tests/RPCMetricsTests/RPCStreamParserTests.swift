import Testing
import RPCMetrics
import TestSupport

private typealias M = RPCMessage

/// A parser fed by hand, at times the test sets (milliseconds).
private struct Feed {
    var parser: RPCStreamParser
    var milliseconds: UInt64 = 0

    init(maxOutstanding: Int = RPCStreamParser.defaultMaxOutstanding) {
        parser = RPCStreamParser(maxOutstanding: maxOutstanding)
    }

    var counts: RPCCounts { parser.counts }

    mutating func client(_ bytes: [UInt8]) { feed(bytes, .fromClient) }
    mutating func server(_ bytes: [UInt8]) { feed(bytes, .fromServer) }

    mutating func feed(_ bytes: [UInt8], _ direction: RPCStreamParser.Direction) {
        let now = milliseconds * 1_000_000
        bytes.withUnsafeBytes { parser.consume($0, from: direction, clock: { now }) }
    }

    /// Each byte in a read of its own.
    mutating func byByte(_ bytes: [UInt8], _ direction: RPCStreamParser.Direction) {
        for byte in bytes { feed([byte], direction) }
    }
}

/// Round trips as RPCLatency.record counts them.
private func latency(_ microseconds: [UInt64]) -> RPCLatency {
    var expected = RPCLatency()
    for value in microseconds { expected.record(microseconds: value) }
    return expected
}

private let oneCall = M.record(M.call(xid: 0x0102_0304))
private let oneReply = M.record(M.reply(xid: 0x0102_0304, results: M.words([0, 0, 1, 9, 0]) + [UInt8](repeating: 0xAB, count: 100)))

@Suite("RPC stream parser")
struct RPCStreamParserTests {
    @Test("a call and its reply split at every byte: one call, one reply, the round trip from the call's last byte to the reply's first",
          arguments: 1..<oneCall.count)
    func splitCall(at split: Int) {
        var feed = Feed()
        feed.client(Array(oneCall[..<split]))
        feed.milliseconds = 1
        feed.client(Array(oneCall[split...]))
        #expect(feed.counts.calls == 1 && feed.parser.outstandingCalls == 1)
        for replySplit in 1..<oneReply.count {
            var copy = feed
            copy.milliseconds = 4
            copy.server(Array(oneReply[..<replySplit]))
            copy.milliseconds = 9
            copy.server(Array(oneReply[replySplit...]))
            #expect(copy.counts == RPCCounts(calls: 1, replies: 1, latency: latency([3000])), "reply split at \(replySplit)")
            #expect(copy.parser.following && copy.parser.outstandingCalls == 0)
        }
    }

    @Test("byte by byte, in many records pipelined, with fragments of every size (zero included)")
    func fragments() {
        var feed = Feed()
        var calls: [UInt8] = []
        var replies: [UInt8] = []
        for xid in UInt32(1)...20 {
            let call = M.call(xid: xid)
            let reply = M.reply(xid: xid, verifier: [1, 2, 3, 4, 5], results: M.words([xid % 2 == 0 ? 2 : 0, 0, 1]))
            // Fragment sizes from 0 up: fragment headers land inside every
            // header word, and one always inside the reply's NFS status
            // (bytes 32 to 35 of its body).
            let size = Int(xid) % 7
            calls += M.record(call, fragments: [size, 0, size])
            replies += M.record(reply, fragments: [Int(xid), 34 - Int(xid)])
        }
        feed.byByte(calls, .fromClient)
        #expect(feed.counts.calls == 20 && feed.parser.outstandingCalls == 20)
        feed.milliseconds = 30
        feed.byByte(replies, .fromServer)
        #expect(feed.counts == RPCCounts(calls: 20, replies: 20, nfsErrors: 10, latency: latency(Array(repeating: 30_000, count: 20))))
        #expect(feed.parser.following)
    }

    @Test("a denied reply and accept_stat errors are RPC errors; a COMPOUND's non-zero status is an NFS error", arguments: [
        (M.denied(xid: 5), RPCCounts(calls: 1, replies: 1, rpcErrors: 1, latency: latency([0]))),
        (M.reply(xid: 5, acceptStat: 1, results: []), RPCCounts(calls: 1, replies: 1, rpcErrors: 1, latency: latency([0]))),  // PROG_UNAVAIL
        (M.reply(xid: 5, acceptStat: 4, results: []), RPCCounts(calls: 1, replies: 1, rpcErrors: 1, latency: latency([0]))),  // GARBAGE_ARGS
        // COMPOUND: NFS4ERR_NOENT, an empty tag, one result (LOOKUP, NOENT).
        (M.reply(xid: 5, verifier: [9, 9, 9, 9, 9, 9, 9, 9], results: M.words([2, 0, 1, 15, 2])),
         RPCCounts(calls: 1, replies: 1, nfsErrors: 1, latency: latency([0]))),
        (M.reply(xid: 5), RPCCounts(calls: 1, replies: 1, latency: latency([0]))),
    ])
    func outcomes(reply: [UInt8], expected: RPCCounts) {
        var feed = Feed()
        feed.client(M.record(M.call(xid: 5)))
        feed.server(M.record(reply))
        #expect(feed.counts == expected)
        #expect(feed.parser.following)
    }

    @Test("replies out of order are matched by xid: each round trip, and whether a status follows, is its own call's")
    func outOfOrder() {
        var feed = Feed()
        feed.client(M.record(M.call(xid: 1, procedure: 0)))  // NULL: no status in its reply
        feed.milliseconds = 1
        feed.client(M.record(M.call(xid: 2, version: 3, procedure: 1)))  // NFSv3 GETATTR
        feed.milliseconds = 2
        feed.client(M.record(M.call(xid: 3)))
        feed.milliseconds = 5
        feed.server(M.record(M.reply(xid: 3, results: M.words([0]))))
        feed.milliseconds = 6
        feed.server(M.record(M.reply(xid: 1, results: M.words([70]))))  // not a status: NULL has none
        feed.milliseconds = 7
        feed.server(M.record(M.reply(xid: 2, results: M.words([70]))))  // NFS3ERR_STALE
        #expect(feed.counts == RPCCounts(calls: 3, replies: 3, nfsErrors: 1, latency: latency([3000, 6000, 6000])))
        // A reply nobody asked for: counted, not timed.
        feed.server(M.record(M.reply(xid: 99, results: M.words([2]))))
        #expect(feed.counts.replies == 4 && feed.counts.latency.count == 3 && feed.counts.nfsErrors == 1)
    }

    @Test("at most maxOutstanding calls are timed: the oldest make room, a reused xid replaces its call, both counted")
    func outstandingCap() {
        var feed = Feed(maxOutstanding: 4)
        for xid in UInt32(1)...6 {
            feed.milliseconds = UInt64(xid)
            feed.client(M.record(M.call(xid: xid)))
        }
        #expect(feed.parser.outstandingCalls == 4)
        #expect(feed.counts.untimedCalls == 2)
        feed.milliseconds = 8
        feed.client(M.record(M.call(xid: 6)))
        #expect(feed.counts.calls == 7 && feed.counts.untimedCalls == 3 && feed.parser.outstandingCalls == 4)
        feed.milliseconds = 10
        for xid in UInt32(1)...6 { feed.server(M.record(M.reply(xid: xid))) }
        // xids 1 and 2 went first; 6 was timed from its second call (at 8 ms).
        #expect(feed.counts.latency == latency([7000, 6000, 5000, 2000]))
        #expect(feed.parser.outstandingCalls == 0)
        var none = Feed(maxOutstanding: 0)
        none.client(M.record(M.call(xid: 1)))
        #expect(none.counts.untimedCalls == 1 && none.parser.outstandingCalls == 0)
    }

    @Test("a quiet connection's table shrinks and keeps its calls")
    func trim() {
        var feed = Feed()
        for xid in UInt32(1)...400 { feed.client(M.record(M.call(xid: xid))) }
        for xid in UInt32(2)...400 { feed.server(M.record(M.reply(xid: xid))) }
        feed.parser.trim()
        feed.server(M.record(M.reply(xid: 1)))
        #expect(feed.counts.latency.count == 400 && feed.parser.outstandingCalls == 0)
    }

    @Test("the backchannel (callbacks from the server, the client's replies) is passed over, even with a guest call's xid")
    func backchannel() {
        var feed = Feed()
        feed.client(M.record(M.call(xid: 8)))
        feed.server(M.record(M.call(xid: 8, program: 0x4000_0000, version: 1, procedure: 1)))  // CB_COMPOUND
        feed.client(M.record(M.reply(xid: 8)))
        #expect(feed.counts == RPCCounts(calls: 1))
        #expect(feed.parser.outstandingCalls == 1)
        feed.server(M.record(M.reply(xid: 8, results: M.words([10_008]))))  // NFS4ERR_DELAY
        #expect(feed.counts == RPCCounts(calls: 1, replies: 1, nfsErrors: 1, latency: latency([0])))
    }

    @Test("RPCSEC_GSS: the status is read only from replies in the clear (service none), not under integrity or privacy, nor of context calls",
          arguments: [(UInt32(1), UInt32(0), UInt64(1)), (2, 0, 0), (3, 0, 0), (1, 1, 0)])
    func gss(service: UInt32, gssProcedure: UInt32, nfsErrors: UInt64) {
        var feed = Feed()
        feed.client(M.record(M.gssCall(xid: 3, procedure: gssProcedure == 0 ? 1 : 0, gssProcedure: gssProcedure, service: service)))
        feed.server(M.record(M.reply(xid: 3, verifier: [UInt8](repeating: 7, count: 28), results: M.words([36, 1, 0]))))
        #expect(feed.counts.nfsErrors == nfsErrors)
        #expect(feed.counts.replies == 1 && feed.parser.following)
    }

    @Test("what it cannot follow stops it for good, counted once", arguments: [
        // direction, bytes
        (true, M.record(M.words([1, 7]))),  // msg_type 7
        (true, M.words([0x8000_0000])),  // an empty record
        (true, M.record(M.words([1]))),  // a record that ends before its message type
        (true, Array("GET / HTTP/1.1\r\nHost: nfs\r\n\r\n".utf8)),
        (false, M.record(M.words([5, 1, 2]))),  // reply_stat 2
        (false, M.record(M.words([5, 1, 0, 0, 401]) + [UInt8](repeating: 0, count: 404))),  // a verifier over 400 bytes
        (false, M.record(M.words([5, 1, 0, 0, 0]))),  // a reply that ends before its accept_stat
    ])
    func givesUp(fromClient: Bool, bytes: [UInt8]) {
        var feed = Feed()
        feed.client(M.record(M.call(xid: 5)))
        feed.feed(bytes, fromClient ? .fromClient : .fromServer)
        #expect(!feed.parser.following)
        #expect(feed.counts.unparsedConnections == 1 && feed.parser.outstandingCalls == 0)
        let before = feed.counts
        feed.client(M.record(M.call(xid: 6)))
        feed.server(M.record(M.reply(xid: 5)))
        feed.server(Array("more garbage".utf8))
        #expect(feed.counts == before, "nothing counted after it stopped")
    }

    @Test("fragment lengths near 2^31 are skipped, not buffered")
    func hugeFragment() {
        var feed = Feed()
        // A call in a first fragment of 2^31 - 1 bytes: the header words, then payload.
        let call = M.call(xid: 1)
        feed.client(M.words([0x7FFF_FFFF]) + call)
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<8 { feed.client(chunk) }
        #expect(feed.counts.calls == 0 && feed.parser.following, "the call has not ended yet")
    }

    @Test("histogram buckets: a bound belongs to its own bucket; cumulative counts end with the total")
    func histogram() {
        var histogram = RPCLatency()
        for value: UInt64 in [0, 500, 501, 1000, 4_999_999, 5_000_000, 5_000_001, 60_000_000] { histogram.record(microseconds: value) }
        #expect(histogram.perBucket == [2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2])
        #expect(histogram.cumulative.last == 8 && histogram.count == 8)
        #expect(histogram.sumMicroseconds == 75_002_001)
        var total = RPCCounts(calls: 1, latency: histogram)
        total += RPCCounts(calls: 2, unparsedConnections: 1, latency: latency([700]))
        #expect(total.calls == 3 && total.unparsedConnections == 1 && total.latency.perBucket[1] == 3)
        #expect(RPCLatency(buckets: [1, 2], sumMicroseconds: 0) == nil)
    }
}
