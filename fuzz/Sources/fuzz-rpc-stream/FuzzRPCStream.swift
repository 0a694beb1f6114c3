import FuzzSupport
import RPCMetrics

/// The ONC RPC stream nfs-vsock-bridge follows per connection (RPCStreamParser).
/// The input is reads each way: a byte choosing the outstanding-call cap
/// (under 128: 0 to 15, else 512), then chunks, each a byte (bit 0: 0 from
/// the guest, 1 from the server; the rest: length - 1, so 1 to 128) and
/// its bytes, read a quarter millisecond apart. Checks: the counts fit in the bytes (a call
/// or reply takes at least 12), every call is timed, untimed, outstanding
/// or dropped when the parser gave up; the cap holds; and the same reads
/// fed a byte at a time count the same.
@main
enum FuzzRPCStream {
    static func main() { FuzzHarness.run(fuzzOne) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzHarness.bytes(data, size)
    guard let first = input.first else { return 0 }
    let cap = first < 128 ? Int(first % 16) : RPCStreamParser.defaultMaxOutstanding
    var whole = RPCStreamParser(maxOutstanding: cap)
    var byByte = RPCStreamParser(maxOutstanding: cap)
    var bytes = (client: 0, server: 0)
    var index = 1
    var chunk: UInt64 = 0
    while index < input.count {
        let control = input[index]
        let direction: RPCStreamParser.Direction = control & 1 == 0 ? .fromClient : .fromServer
        let end = min(input.count, index + 1 + Int(control >> 1) + 1)
        let read = Array(input[(index + 1)..<end])
        index = end
        chunk += 1
        let now = chunk * 250_000
        read.withUnsafeBytes { whole.consume($0, from: direction, clock: { now }) }
        for byte in read { [byte].withUnsafeBytes { byByte.consume($0, from: direction, clock: { now }) } }
        if direction == .fromClient { bytes.client += read.count } else { bytes.server += read.count }
        check(whole, cap: cap, bytes: bytes, latest: now)
    }
    if whole.counts != byByte.counts || whole.outstandingCalls != byByte.outstandingCalls {
        FuzzHarness.fail("the same reads split into bytes count differently:\n\(whole.counts)\n\(byByte.counts)")
    }
    return 0
}

private func check(_ parser: RPCStreamParser, cap: Int, bytes: (client: Int, server: Int), latest: UInt64) {
    let counts = parser.counts
    let timed = counts.latency.count
    if counts.calls > UInt64(bytes.client / 12) || counts.replies > UInt64(bytes.server / 12) {
        FuzzHarness.fail("\(counts.calls) calls in \(bytes.client) bytes, \(counts.replies) replies in \(bytes.server)")
    }
    if counts.rpcErrors &+ counts.nfsErrors > counts.replies || timed > counts.replies {
        FuzzHarness.fail("more errors or round trips than replies: \(counts)")
    }
    let accounted = timed &+ counts.untimedCalls &+ UInt64(parser.outstandingCalls)
    if parser.following ? accounted != counts.calls : accounted > counts.calls {
        FuzzHarness.fail("calls \(counts.calls), timed \(timed) + untimed \(counts.untimedCalls) + outstanding \(parser.outstandingCalls)")
    }
    if parser.outstandingCalls > cap { FuzzHarness.fail("\(parser.outstandingCalls) outstanding over the cap of \(cap)") }
    if counts.unparsedConnections != (parser.following ? 0 : 1) {
        FuzzHarness.fail("unparsed \(counts.unparsedConnections) while following is \(parser.following)")
    }
    if counts.latency.sumMicroseconds > timed &* (latest / 1000) {
        FuzzHarness.fail("round trips of \(counts.latency.sumMicroseconds) µs in all, longer than the \(latest / 1000) µs the input lasted")
    }
}
