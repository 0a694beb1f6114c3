import Glibc
import Testing
import Forwarding
import NFSAdmin
import RPCMetrics
import Synchronization
import SystemEdge
import TestSupport

/// A connected TCP pair on loopback: (the connecting end, the accepted end).
private func tcpPair() -> (Int32, Int32) {
    let listener = tcpListener()
    defer { close(listener.fd) }
    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    _ = loopbackAddress(port: listener.port).withSockaddr { connect(client, $0, $1) }
    return (client, accept(listener.fd, nil, nil))
}

private func unixPair() -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
    return (fds[0], fds[1])
}

/// How a forwarder running on its own thread ended.
private final class Outcome: Sendable {
    // Written by the forwarder's thread before `done` is signalled. Behind a
    // lock: the pipe orders the two threads for the kernel, but poll(2)
    // alone is no synchronization in the memory model (ThreadSanitizer
    // reported the read after `done.wait` as a race with this write).
    private let ended = Mutex<Forwarder.End?>(nil)
    var end: Forwarder.End? { ended.withLock { $0 } }
    let done = OneShotSignal()

    /// Both outer ends stop sending: the forwarder ends cleanly. Then
    /// `descriptors` are closed.
    func expectClosed(_ outerA: Int32, _ outerB: Int32, closing descriptors: [Int32]) {
        shutdown(outerA, Int32(SHUT_WR))
        shutdown(outerB, Int32(SHUT_WR))
        #expect(done.wait(seconds: 10))
        #expect(end == .closed)
        for fd in descriptors { close(fd) }
    }

    /// Starts a forwarder (64 KiB per direction) between `a` and `b`;
    /// with `meter`, following the RPC stream if `measuresRPC`.
    static func forwarding(_ a: Int32, _ b: Int32, trimAfter: Int = 5, resident: Bool = false,
                           meter: ConnectionMeter? = nil, measuresRPC: Bool = false) -> Outcome {
        let outcome = Outcome()
        var configured = Forwarder(bufferSize: 64 * 1024, idleTimeout: 0, halfOpenTimeout: 30)
        configured.trimAfter = trimAfter
        configured.resident = resident
        configured.meter = meter
        configured.measuresRPC = measuresRPC
        let forwarder = configured
        DetachedThread.start {
            let end = forwarder.run(a, b)
            outcome.ended.withLock { $0 = end }
            outcome.done.signal()
        }
        return outcome
    }
}

/// A one-shot signal between two threads, on a pipe (no Foundation).
private struct OneShotSignal: @unchecked Sendable {
    private let fds: (Int32, Int32) = {
        var pair: [Int32] = [-1, -1]
        _ = pipe(&pair)
        return (pair[0], pair[1])
    }()
    func signal() { var byte: UInt8 = 1; _ = write(fds.1, &byte, 1) }
    /// False if `seconds` pass first.
    func wait(seconds: Int32) -> Bool {
        var descriptor = pollfd(fd: fds.0, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, seconds * 1000) == 1
    }
}

@Suite("forwarder")
struct ForwarderTests {
    @Test("bytes cross intact both ways at once, and the ends close in order", arguments: [true, false])
    func intact(tcp: Bool) throws {
        // outer A <-> (inner A | forwarder | inner B) <-> outer B
        let (outerA, innerA) = tcp ? tcpPair() : unixPair()
        let (innerB, outerB) = tcpPair()
        let outcome = Outcome.forwarding(innerA, innerB)
        let up = pattern(3_000_001, seed: 1)
        let down = pattern(2_500_003, seed: 2)
        DetachedThread.start { sendAll(outerA, up); shutdown(outerA, Int32(SHUT_WR)) }
        DetachedThread.start { sendAll(outerB, down); shutdown(outerB, Int32(SHUT_WR)) }
        let atB = receive(outerB, up.count + 1)
        let atA = receive(outerA, down.count + 1)
        #expect(atB == up, "A to B: \(atB.count) bytes of \(up.count)")
        #expect(atA == down, "B to A: \(atA.count) bytes of \(down.count)")
        #expect(outcome.done.wait(seconds: 10))
        #expect(outcome.end == .closed)
        for fd in [outerA, innerA, innerB, outerB] { close(fd) }
    }

    @Test("a connection quiet long enough to give its buffer pages back carries bytes intact afterwards")
    func afterTrim() throws {
        let (outerA, innerA) = tcpPair()
        let (innerB, outerB) = tcpPair()
        let outcome = Outcome.forwarding(innerA, innerB, trimAfter: 1)
        for round in 0..<2 {
            let up = pattern(200_003, seed: UInt64(10 + round))
            let down = pattern(150_001, seed: UInt64(20 + round))
            DetachedThread.start { sendAll(outerA, up) }
            DetachedThread.start { sendAll(outerB, down) }
            #expect(receive(outerB, up.count) == up, "round \(round): A to B")
            #expect(receive(outerA, down.count) == down, "round \(round): B to A")
            // Quiet past trimAfter (whole seconds of the coarse clock).
            if round == 0 { usleep(2_500_000) }
        }
        #expect(!outcome.done.wait(seconds: 0), "the forwarder ended on a quiet connection")
        outcome.expectClosed(outerA, outerB, closing: [outerA, innerA, innerB, outerB])
    }

    @Test("a resident forwarder (the guest's relay) has its buffers locked from the start and keeps them through quiet")
    func resident() throws {
        func lockedKiB() -> Int {
            let status = (try? FileSystem.readIfExists("/proc/self/status")).map { String(decoding: $0!, as: UTF8.self) } ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmLck:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }
        // ThreadSanitizer and AddressSanitizer make mlock(2) a no-op: then
        // only the forwarding itself can be checked.
        let probe = mmap(nil, 64 * 1024, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        let unlocked = lockedKiB()
        _ = mlock(probe, 64 * 1024)
        let mlockWorks = lockedKiB() - unlocked >= 64
        munmap(probe, 64 * 1024)
        let before = lockedKiB()
        let (outerA, innerA) = tcpPair()
        let (innerB, outerB) = tcpPair()
        let outcome = Outcome.forwarding(innerA, innerB, trimAfter: 1, resident: true)
        let up = pattern(100_000, seed: 31)
        DetachedThread.start { sendAll(outerA, up) }
        #expect(receive(outerB, up.count) == up)
        usleep(2_500_000)  // past trimAfter: a resident forwarder gives nothing back
        if mlockWorks {
            #expect(lockedKiB() - before >= 128, "two 64 KiB buffers locked (VmLck \(before) -> \(lockedKiB()) KiB)")
        }
        shutdown(outerA, Int32(SHUT_WR))
        shutdown(outerB, Int32(SHUT_WR))
        #expect(outcome.done.wait(seconds: 10))
        for fd in [outerA, innerA, innerB, outerB] { close(fd) }
    }

    @Test("following the RPC stream (the bridge; not the guest's relay): counted, and garbage stops the counting, never the bytes",
          arguments: [true, false])
    func rpcCounts(measuresRPC: Bool) throws {
        let (outerA, innerA) = unixPair()
        let (innerB, outerB) = unixPair()
        let meter = ConnectionMeter()
        let outcome = Outcome.forwarding(innerA, innerB, meter: meter, measuresRPC: measuresRPC)
        let call = RPCMessage.record(RPCMessage.call(xid: 1))
        let reply = RPCMessage.record(RPCMessage.reply(xid: 1, results: RPCMessage.words([2])))  // NFS4ERR_NOENT
        func exchange() {
            sendAll(outerA, call)
            #expect(receive(outerB, call.count) == call)
            sendAll(outerB, reply)
            #expect(receive(outerA, reply.count) == reply)
        }
        exchange()
        for _ in 0..<200 where measuresRPC && meter.rpc.replies < 1 { usleep(10_000) }
        var counted = meter.rpc
        #expect(counted == (measuresRPC ? RPCCounts(calls: 1, replies: 1, nfsErrors: 1, latency: counted.latency) : RPCCounts()))
        #expect(counted.latency.count == (measuresRPC ? 1 : 0))
        // A record with msg_type 9, payload, and a call: all of it crosses.
        let garbage = RPCMessage.record(RPCMessage.words([2, 9])) + pattern(300_000, seed: 5) + call
        DetachedThread.start { sendAll(outerA, garbage) }
        #expect(receive(outerB, garbage.count) == garbage)
        exchange()
        for _ in 0..<200 where measuresRPC && meter.rpc.unparsedConnections < 1 { usleep(10_000) }
        counted = meter.rpc
        #expect(counted.unparsedConnections == (measuresRPC ? 1 : 0))
        #expect(counted.calls == (measuresRPC ? 1 : 0) && counted.replies == (measuresRPC ? 1 : 0), "nothing counted after garbage")
        outcome.expectClosed(outerA, outerB, closing: [outerA, innerA, innerB, outerB])
    }

    @Test("a peer that goes away mid-stream ends the connection with an error, not the process with SIGPIPE")
    func peerGone() throws {
        let (outerA, innerA) = tcpPair()
        let (innerB, outerB) = tcpPair()
        let outcome = Outcome.forwarding(innerA, innerB)
        close(outerB)
        // Keep sending until the forwarder gives up on B (EPIPE/ECONNRESET);
        // non-blocking, so a forwarder that stopped reading cannot hang it.
        _ = fcntl(outerA, F_SETFL, fcntl(outerA, F_GETFL) | O_NONBLOCK)
        let chunk = pattern(1 << 20, seed: 3)
        for _ in 0..<500 {
            sendAll(outerA, chunk)
            if outcome.done.wait(seconds: 0) { break }
            usleep(10_000)
        }
        #expect(outcome.done.wait(seconds: 10))
        if case .error = outcome.end {} else { Issue.record("ended \(String(describing: outcome.end))") }
        for fd in [outerA, innerA, innerB] { close(fd) }
    }
}
