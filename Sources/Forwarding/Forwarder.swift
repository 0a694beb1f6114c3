#if canImport(Glibc)
import Glibc
#endif
import RPCMetrics
import SystemEdge

/// Copies bytes both ways between two connected sockets until both sides
/// are done, with a bounded buffer per direction: a side that stops reading
/// stops the other side's reads, so nothing grows without bound and a slow
/// peer slows only its own connection.
public struct Forwarder: Sendable {
    public enum End: Sendable, Equatable {
        case closed
        case idle
        case halfOpenTimeout
        case error(String)
    }

    /// A direction's memory: anonymous pages the kernel supplies on first
    /// touch, so that an idle connection's buffers cost next to nothing
    /// until bytes move (a few pages for an NFS request or reply), and
    /// given back (MADV_DONTNEED) once the connection has been quiet for
    /// `trimAfter` seconds with both buffers empty.
    private final class Pages {
        let base: UnsafeMutableRawPointer
        let count: Int

        init?(count: Int, resident: Bool) {
            let flags = MAP_PRIVATE | MAP_ANONYMOUS | (resident ? MAP_POPULATE : 0)
            let mapped = mmap(nil, count, PROT_READ | PROT_WRITE, flags, -1, 0)
            guard let mapped, mapped != MAP_FAILED else { return nil }
            base = mapped
            self.count = count
            // Best effort: RLIMIT_MEMLOCK may refuse; the pages are there.
            if resident { _ = mlock(mapped, count) }
        }

        /// The pages go back to the kernel; the next touch gets zeroed ones.
        func release() { _ = madvise(base, count, MADV_DONTNEED) }

        deinit { munmap(base, count) }
    }

    /// One direction's buffer: bytes in [start, end).
    private struct Pipe {
        let buffer: Pages
        var start = 0
        var end = 0
        var readerDone = false
        var writerShut = false
        /// Bytes read so far (for the connection's meter).
        var received: UInt64 = 0
        /// How many bytes the last fill read: they end at `end`.
        var lastRead = 0
        /// Pages touched since they were last given back.
        var touched = false

        init?(size: Int, resident: Bool) {
            guard let pages = Pages(count: size, resident: resident) else { return nil }
            buffer = pages
        }

        var isEmpty: Bool { start == end }
        var hasSpace: Bool { end < buffer.count || start > 0 }
        var finished: Bool { readerDone && isEmpty }

        mutating func compact() {
            if start == end {
                start = 0
                end = 0
            } else if end == buffer.count && start > 0 {
                // SAFETY: both ranges lie inside the mapping; memmove allows overlap.
                _ = memmove(buffer.base, buffer.base + start, end - start)
                end -= start
                start = 0
            }
        }

        /// Reads what fits from `fd`; returns an errno on a fatal error.
        mutating func fill(from fd: Int32) -> Int32? {
            compact()
            lastRead = 0
            // SAFETY: end < buffer.count, so end..<count is inside the mapping.
            let count = read(fd, buffer.base + end, buffer.count - end)
            if count > 0 { end += count; lastRead = count; received &+= UInt64(count); touched = true; return nil }
            if count == 0 { readerDone = true; return nil }
            return errno == EAGAIN || errno == EINTR ? nil : errno
        }

        /// What the last fill read, in place (valid until the next drain).
        var lastBytes: UnsafeRawBufferPointer {
            // SAFETY: end - lastRead >= start >= 0 and end <= buffer.count.
            UnsafeRawBufferPointer(start: buffer.base + (end - lastRead), count: lastRead)
        }

        mutating func drain(to fd: Int32) -> Int32? {
            // SAFETY: start < end <= buffer.count. MSG_NOSIGNAL: a closed
            // peer is an error here, not a SIGPIPE.
            let count = send(fd, buffer.base + start, end - start, Int32(MSG_NOSIGNAL))
            if count > 0 { start += count; compact(); return nil }
            return errno == EAGAIN || errno == EINTR ? nil : errno
        }

        /// Gives the pages back if they hold nothing and were touched.
        mutating func trim() {
            guard touched && isEmpty else { return }
            buffer.release()
            touched = false
        }
    }

    /// Seconds of quiet after which an empty connection's buffer pages go
    /// back to the kernel.
    public var trimAfter = 5
    /// Buffers populated and locked from the start and never given back:
    /// the guest's relay forwards writeback, and under memory pressure it
    /// must not need a page to do so.
    public var resident = false

    let bufferSize: Int
    let idleTimeout: Int
    let halfOpenTimeout: Int
    /// Where the bytes carried each way are published, if anywhere.
    public var meter: ConnectionMeter? = nil
    /// Follow the ONC RPC stream (`a` the client, `b` the server) and
    /// publish its counts to `meter`: the bridge does, the guest's relay
    /// does not. Costs a look at each read's new bytes (record headers
    /// only; payload is skipped a fragment at a time) and a clock read per
    /// call and per reply.
    public var measuresRPC = false
    /// The most outstanding calls a connection times at once.
    public var maxOutstandingCalls = RPCStreamParser.defaultMaxOutstanding

    public init(bufferSize: Int, idleTimeout: Int, halfOpenTimeout: Int) {
        self.bufferSize = bufferSize
        self.idleTimeout = idleTimeout
        self.halfOpenTimeout = halfOpenTimeout
    }

    /// Runs until the connection ends; closes neither descriptor.
    ///
    /// Bytes read from one side are sent to the other at once (a send to a
    /// socket with room succeeds without waiting for poll to say so); only
    /// what the peer does not take waits for POLLOUT. Under load that saves
    /// a poll per chunk, and each request or reply crosses with one wakeup.
    public func run(_ a: Int32, _ b: Int32) -> End {
        for fd in [a, b] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        guard var toB = Pipe(size: bufferSize, resident: resident), var toA = Pipe(size: bufferSize, resident: resident) else {
            return .error("cannot map \(bufferSize)-byte buffers: \(SystemError.describe(errno))")
        }
        var rpc = measuresRPC ? RPCStreamParser(maxOutstanding: maxOutstandingCalls) : nil
        var publishedRevision: UInt64 = 0
        defer {
            meter?.record(fromA: toB.received, fromB: toA.received)
            if let counts = rpc?.counts { meter?.record(counts) }
        }
        var lastActivity = now()
        var halfOpenSince: Int? = nil
        // Two pollfds in a tuple: no array allocated per round.
        var fds = (pollfd(fd: a, events: 0, revents: 0), pollfd(fd: b, events: 0, revents: 0))
        while true {
            if toB.finished && !toB.writerShut { shutdown(b, Int32(SHUT_WR)); toB.writerShut = true }
            if toA.finished && !toA.writerShut { shutdown(a, Int32(SHUT_WR)); toA.writerShut = true }
            if toB.finished && toA.finished { return .closed }
            let current = now()
            if (toB.readerDone || toA.readerDone) && halfOpenSince == nil { halfOpenSince = current }

            fds.0.events = 0
            fds.1.events = 0
            if !toB.readerDone && toB.hasSpace { fds.0.events |= Int16(POLLIN) }
            if !toA.isEmpty { fds.0.events |= Int16(POLLOUT) }
            if !toA.readerDone && toA.hasSpace { fds.1.events |= Int16(POLLIN) }
            if !toB.isEmpty { fds.1.events |= Int16(POLLOUT) }
            fds.0.revents = 0
            fds.1.revents = 0

            var timeout = idleTimeout > 0 ? idleTimeout - (current - lastActivity) : Int.max
            if let since = halfOpenSince { timeout = min(timeout, halfOpenTimeout - (current - since)) }
            if timeout <= 0 { return halfOpenSince != nil ? .halfOpenTimeout : .idle }
            // Quiet, empty and holding pages: give them back, or wake up
            // when it is time to.
            if !resident && (toB.touched || toA.touched) && toB.isEmpty && toA.isEmpty {
                let quiet = current - lastActivity
                if quiet >= trimAfter {
                    toB.trim()
                    toA.trim()
                    rpc?.trim()
                } else {
                    timeout = min(timeout, trimAfter - quiet)
                }
            }
            // No timeout to keep: wait without one (a poll timeout arms a
            // high-resolution timer and reads the clocksource every call).
            let milliseconds = timeout == Int.max ? -1 : Int32(min(timeout, 3600) * 1000)
            let ready = withUnsafeMutableBytes(of: &fds) { raw in
                // SAFETY: a homogeneous tuple of two pollfd is laid out as an array of two.
                poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, milliseconds)
            }
            if ready < 0 {
                if errno == EINTR { continue }
                return .error("poll: \(SystemError.describe(errno))")
            }
            if ready == 0 { continue }
            lastActivity = now()
            // A hung-up peer we are not reading from (its buffer is full)
            // would make poll return at once forever: wait for the other
            // side to make room instead of spinning.
            if Int32(fds.0.revents) & ~POLLHUP == 0 && Int32(fds.1.revents) & ~POLLHUP == 0 {
                usleep(10_000)
                continue
            }
            if let error = step(a, fds.0, inbound: &toB, outbound: &toA, peer: b, rpc: &rpc, .fromClient) { return error }
            if let error = step(b, fds.1, inbound: &toA, outbound: &toB, peer: a, rpc: &rpc, .fromServer) { return error }
            meter?.record(fromA: toB.received, fromB: toA.received)
            if let revision = rpc?.revision, revision != publishedRevision, let counts = rpc?.counts {
                meter?.record(counts)
                publishedRevision = revision
            }
        }
    }

    /// One side's events: read into `inbound`, show the new bytes to
    /// `rpc` and pass them on to `peer` at once; send what `outbound`
    /// holds when the side can take it.
    private func step(_ fd: Int32, _ polled: pollfd, inbound: inout Pipe, outbound: inout Pipe, peer: Int32,
                      rpc: inout RPCStreamParser?, _ direction: RPCStreamParser.Direction) -> End? {
        let revents = Int32(polled.revents)
        if revents & POLLNVAL != 0 { return .error("descriptor closed") }
        if revents & (POLLIN | POLLHUP | POLLERR) != 0 && Int32(polled.events) & POLLIN != 0 {
            if let error = inbound.fill(from: fd) { return .error(SystemError.describe(error)) }
            // The bytes as read, before drain can move them.
            if inbound.lastRead > 0 { rpc?.consume(inbound.lastBytes, from: direction, clock: Self.monotonicNanoseconds) }
            if !inbound.isEmpty, let error = inbound.drain(to: peer) { return .error(SystemError.describe(error)) }
        } else if revents & POLLERR != 0 {
            return .error("socket error")
        }
        if revents & POLLOUT != 0 && !outbound.isEmpty {
            if let error = outbound.drain(to: fd) { return .error(SystemError.describe(error)) }
        }
        return nil
    }

    /// Round trips need better than the coarse clock's jiffies.
    private static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Seconds are all the timeouts need: the coarse clock is read from
    /// the vDSO without touching the clocksource, which in a VM without a
    /// stable TSC (QEMU software emulation: hpet) is an emulated device.
    private func now() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return ts.tv_sec
    }
}
