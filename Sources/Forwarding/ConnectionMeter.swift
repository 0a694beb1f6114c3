import Synchronization

/// Bytes a forwarded connection has carried each way so far: stored by its
/// Forwarder, read by the bridge's status snapshot.
public final class ConnectionMeter: Sendable {
    private let fromA = Atomic<UInt64>(0)
    private let fromB = Atomic<UInt64>(0)

    public init() {}

    /// Bytes read from the first descriptor given to `Forwarder.run`.
    public var bytesFromA: UInt64 { fromA.load(ordering: .relaxed) }
    /// Bytes read from the second.
    public var bytesFromB: UInt64 { fromB.load(ordering: .relaxed) }

    func record(fromA a: UInt64, fromB b: UInt64) {
        fromA.store(a, ordering: .relaxed)
        fromB.store(b, ordering: .relaxed)
    }
}
