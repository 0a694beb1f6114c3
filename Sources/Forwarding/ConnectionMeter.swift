import RPCMetrics
import Synchronization
import SystemEdge

/// What a forwarded connection has carried so far: bytes each way and,
/// when its Forwarder follows the RPC stream, the RPC counts. Stored by
/// the Forwarder, read by the bridge's status snapshot.
public final class ConnectionMeter: Sendable {
    private let fromA = Atomic<UInt64>(0)
    private let fromB = Atomic<UInt64>(0)
    private let calls = ThreadLock(RPCCounts())

    public init() {}

    /// Bytes read from the first descriptor given to `Forwarder.run`.
    public var bytesFromA: UInt64 { fromA.load(ordering: .relaxed) }
    /// Bytes read from the second.
    public var bytesFromB: UInt64 { fromB.load(ordering: .relaxed) }
    /// The RPC counts as of the Forwarder's last round (zero when it does
    /// not follow the stream).
    public var rpc: RPCCounts { calls.withLock { $0 } }

    func record(fromA a: UInt64, fromB b: UInt64) {
        fromA.store(a, ordering: .relaxed)
        fromB.store(b, ordering: .relaxed)
    }

    func record(_ counts: RPCCounts) {
        calls.withLock { $0 = counts }
    }
}
