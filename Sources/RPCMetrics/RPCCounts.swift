/// What the bridge counts of one guest's ONC RPC traffic: calls from the
/// guest, replies to it and how they went, and each call's round trip.
/// Summed over connections with `+=`; counters wrap, as the byte counts do.
public struct RPCCounts: Sendable, Equatable {
    /// CALL messages read whole from the guest.
    public var calls: UInt64 = 0
    /// REPLY messages read from the server.
    public var replies: UInt64 = 0
    /// Replies the RPC layer refused: MSG_DENIED, or accepted with an
    /// accept_stat other than SUCCESS (PROG_UNAVAIL, GARBAGE_ARGS, ...).
    public var rpcErrors: UInt64 = 0
    /// Successful replies whose procedure status (nfsstat3, or an NFSv4
    /// COMPOUND's status) is not 0. Many are normal (NOENT, EXIST).
    public var nfsErrors: UInt64 = 0
    /// Calls whose round trip was not measured: pushed out of a full table
    /// of outstanding calls, or whose xid was reused before its reply.
    public var untimedCalls: UInt64 = 0
    /// Connections whose stream stopped being followed (not RPC, or
    /// malformed); their bytes were forwarded all the same.
    public var unparsedConnections: UInt64 = 0
    /// Round trips of the calls matched with their replies.
    public var latency = RPCLatency()

    public init(calls: UInt64 = 0, replies: UInt64 = 0, rpcErrors: UInt64 = 0, nfsErrors: UInt64 = 0,
                untimedCalls: UInt64 = 0, unparsedConnections: UInt64 = 0, latency: RPCLatency = RPCLatency()) {
        self.calls = calls
        self.replies = replies
        self.rpcErrors = rpcErrors
        self.nfsErrors = nfsErrors
        self.untimedCalls = untimedCalls
        self.unparsedConnections = unparsedConnections
        self.latency = latency
    }

    public static func += (total: inout RPCCounts, more: RPCCounts) {
        total.calls &+= more.calls
        total.replies &+= more.replies
        total.rpcErrors &+= more.rpcErrors
        total.nfsErrors &+= more.nfsErrors
        total.untimedCalls &+= more.untimedCalls
        total.unparsedConnections &+= more.unparsedConnections
        total.latency += more.latency
    }
}

/// A histogram of round trips with fixed bounds (Prometheus style, but
/// each bucket counts only its own range; `cumulative` gives the "le"
/// form). Inline storage: copying one allocates nothing.
public struct RPCLatency: Sendable, Equatable {
    /// Upper bounds in microseconds: 0.5 ms to 5 s; one more bucket
    /// (+Inf) takes the rest.
    public static let boundsMicroseconds: [UInt64] = [
        500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
        1_000_000, 2_000_000, 5_000_000,
    ]
    /// Buckets, the +Inf one included (the size of `buckets`).
    public static var bucketCount: Int { boundsMicroseconds.count + 1 }

    /// Per bucket, the round trips in (previous bound, bound].
    public var buckets = InlineArray<14, UInt64>(repeating: 0)
    public var sumMicroseconds: UInt64 = 0

    public init() {}

    /// From per-bucket counts (exactly `bucketCount` of them) and a sum.
    public init?(buckets: [UInt64], sumMicroseconds: UInt64) {
        guard buckets.count == Self.bucketCount else { return nil }
        for index in buckets.indices { self.buckets[index] = buckets[index] }
        self.sumMicroseconds = sumMicroseconds
    }

    /// Round trips measured: the buckets' total.
    public var count: UInt64 {
        var total: UInt64 = 0
        for index in buckets.indices { total &+= buckets[index] }
        return total
    }

    /// The buckets as an array (for writing them out).
    public var perBucket: [UInt64] { buckets.indices.map { buckets[$0] } }

    /// Prometheus' form: each bucket counts everything up to its bound.
    public var cumulative: [UInt64] {
        var running: UInt64 = 0
        return buckets.indices.map { index in
            running &+= buckets[index]
            return running
        }
    }

    public mutating func record(microseconds: UInt64) {
        var index = 0
        while index < Self.boundsMicroseconds.count && microseconds > Self.boundsMicroseconds[index] { index += 1 }
        buckets[index] &+= 1
        sumMicroseconds &+= microseconds
    }

    public static func += (total: inout RPCLatency, more: RPCLatency) {
        for index in total.buckets.indices { total.buckets[index] &+= more.buckets[index] }
        total.sumMicroseconds &+= more.sumMicroseconds
    }

    // InlineArray is not Equatable.
    public static func == (left: RPCLatency, right: RPCLatency) -> Bool {
        left.sumMicroseconds == right.sumMicroseconds && left.buckets.indices.allSatisfy { left.buckets[$0] == right.buckets[$0] }
    }
}
