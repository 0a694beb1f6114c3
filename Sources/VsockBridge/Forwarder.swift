#if canImport(Glibc)
import Glibc
#endif
import CLinux

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

    /// One direction's bytes in flight, bounded: either in a user-space
    /// buffer (bytes in [start, end)) or, when the direction splices, in a
    /// kernel pipe (`queued` bytes), which spares one copy each way through
    /// user space: a TCP source hands its pages to the pipe, a TCP
    /// destination takes them by reference.
    private struct Pipe {
        var buffer: [UInt8] = []
        var start = 0
        var end = 0
        /// The kernel pipe of a splicing direction: (read end, write end).
        var kernel: (read: Int32, write: Int32)? = nil
        var capacity: Int
        var queued = 0
        /// The pipe took nothing although the source was readable (its
        /// slots, one per page or fragment, ran out before its bytes did):
        /// no more reading until something drained.
        var stalled = false
        var readerDone = false
        var writerShut = false
        /// Bytes read so far (for the connection's meter).
        var received: UInt64 = 0

        init(size: Int, splice: Bool) {
            capacity = size
            if splice, let pipe = Pipe.makeKernelPipe(size: size) {
                kernel = pipe.fds
                capacity = pipe.size
            } else {
                buffer = [UInt8](repeating: 0, count: size)
            }
        }

        /// A non-blocking pipe holding up to `size` bytes (less if the
        /// system's pipe-max-size says so); nil if there is none to have.
        static func makeKernelPipe(size: Int) -> (fds: (read: Int32, write: Int32), size: Int)? {
            var fds: [Int32] = [-1, -1]
            guard clinux_pipe2(&fds, O_NONBLOCK | O_CLOEXEC) == 0 else { return nil }
            _ = fcntl(fds[1], CLINUX_F_SETPIPE_SZ, Int32(size))
            let actual = Int(fcntl(fds[1], CLINUX_F_GETPIPE_SZ))
            return ((fds[0], fds[1]), actual > 0 ? min(actual, size) : 65536)
        }

        /// Gives up splicing (the kernel refused it for this pair of
        /// sockets before any byte went through): a user-space buffer.
        mutating func dropKernelPipe() {
            guard let pipe = kernel else { return }
            close(pipe.read)
            close(pipe.write)
            kernel = nil
            buffer = [UInt8](repeating: 0, count: capacity)
        }

        func release() {
            if let pipe = kernel {
                close(pipe.read)
                close(pipe.write)
            }
        }

        var isEmpty: Bool { kernel == nil ? start == end : queued == 0 }
        var hasSpace: Bool { kernel == nil ? end < buffer.count || start > 0 : queued < capacity && !stalled }
        var finished: Bool { readerDone && isEmpty }

        mutating func compact() {
            if start == end {
                start = 0
                end = 0
            } else if end == buffer.count && start > 0 {
                buffer.withUnsafeMutableBytes { raw in
                    // SAFETY: both ranges lie inside the buffer; memmove allows overlap.
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + start, end - start)
                }
                end -= start
                start = 0
            }
        }

        /// Reads what fits from `fd`; returns an errno on a fatal error.
        mutating func fill(from fd: Int32) -> Int32? {
            if let pipe = kernel {
                let count = clinux_splice(fd, pipe.write, capacity - queued, CLINUX_SPLICE_F_MOVE | CLINUX_SPLICE_F_NONBLOCK)
                if count > 0 { queued += count; received &+= UInt64(count); return nil }
                if count == 0 { readerDone = true; return nil }
                let error = errno
                if error == EAGAIN { if queued > 0 { stalled = true }; return nil }
                if error == EINTR { return nil }
                if error == EINVAL && received == 0 && queued == 0 {
                    dropKernelPipe()
                    return fill(from: fd)
                }
                return error
            }
            compact()
            let count = buffer.withUnsafeMutableBytes { raw in
                // SAFETY: end < raw.count, so the range end..<count is inside the buffer.
                read(fd, raw.baseAddress! + end, raw.count - end)
            }
            if count > 0 { end += count; received &+= UInt64(count); return nil }
            if count == 0 { readerDone = true; return nil }
            return errno == EAGAIN || errno == EINTR ? nil : errno
        }

        mutating func drain(to fd: Int32) -> Int32? {
            if let pipe = kernel {
                // A closed peer is EPIPE here (run blocks SIGPIPE).
                let count = clinux_splice(pipe.read, fd, queued, CLINUX_SPLICE_F_MOVE | CLINUX_SPLICE_F_NONBLOCK)
                if count > 0 { queued -= count; stalled = false; return nil }
                return errno == EAGAIN || errno == EINTR ? nil : errno
            }
            let count = buffer.withUnsafeBytes { raw in
                // SAFETY: start < end <= raw.count. MSG_NOSIGNAL: a closed
                // peer is an error here, not a SIGPIPE.
                send(fd, raw.baseAddress! + start, end - start, Int32(MSG_NOSIGNAL))
            }
            if count > 0 { start += count; compact(); return nil }
            return errno == EAGAIN || errno == EINTR ? nil : errno
        }
    }

    /// Which directions move their bytes through a kernel pipe with
    /// splice(2) rather than through a user-space buffer.
    public enum Splicing: String, Sendable, CaseIterable {
        /// never: read(2) and send(2) through a buffer
        case off
        /// every direction
        case all
        /// the directions whose destination is a TCP socket: the pipe's
        /// pages go to TCP by reference; a vsock destination copies each
        /// page into a packet of its own instead
        case intoTCP = "into-tcp"

        /// NFS_VSOCK_SPLICE (off, all, into-tcp) when set and valid, for
        /// measuring; else the default.
        public static func fromEnvironment(default fallback: Splicing = .all) -> Splicing {
            guard let raw = getenv("NFS_VSOCK_SPLICE") else { return fallback }
            return Splicing(rawValue: String(cString: raw)) ?? fallback
        }
    }

    let bufferSize: Int
    let idleTimeout: Int
    let halfOpenTimeout: Int
    let splicing: Splicing
    /// Where the bytes carried each way are published, if anywhere.
    public var meter: ConnectionMeter? = nil

    public init(bufferSize: Int, idleTimeout: Int, halfOpenTimeout: Int, splicing: Splicing = .fromEnvironment()) {
        self.bufferSize = bufferSize
        self.idleTimeout = idleTimeout
        self.halfOpenTimeout = halfOpenTimeout
        self.splicing = splicing
    }

    private func splices(into fd: Int32) -> Bool {
        switch splicing {
        case .off: return false
        case .all: return true
        case .intoTCP:
            var domain: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 else { return false }
            return domain == AF_INET || domain == AF_INET6
        }
    }

    /// Runs until the connection ends; closes neither descriptor.
    ///
    /// Bytes read from one side are sent to the other at once (a send to a
    /// socket with room succeeds without waiting for poll to say so); only
    /// what the peer does not take waits for POLLOUT. Under load that saves
    /// a poll per chunk, and each request or reply crosses with one wakeup.
    public func run(_ a: Int32, _ b: Int32) -> End {
        for fd in [a, b] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        var toB = Pipe(size: bufferSize, splice: splices(into: b))
        var toA = Pipe(size: bufferSize, splice: splices(into: a))
        // splice(2) to a closed peer raises SIGPIPE (it has no
        // MSG_NOSIGNAL): blocked on this thread, taken back at the end.
        var pipeOnly = sigset_t()
        var saved = sigset_t()
        sigemptyset(&pipeOnly)
        sigaddset(&pipeOnly, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeOnly, &saved)
        defer {
            meter?.record(fromA: toB.received, fromB: toA.received)
            toB.release()
            toA.release()
            if sigismember(&saved, SIGPIPE) == 0 {
                var zero = timespec()
                while sigtimedwait(&pipeOnly, nil, &zero) == SIGPIPE {}
                pthread_sigmask(SIG_SETMASK, &saved, nil)
            }
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
            // No timeout to keep: wait without one (a poll timeout arms a
            // high-resolution timer and reads the clocksource every call).
            let milliseconds = timeout == Int.max ? -1 : Int32(min(timeout, 3600) * 1000)
            let ready = withUnsafeMutableBytes(of: &fds) { raw in
                // SAFETY: a homogeneous tuple of two pollfd is laid out as an array of two.
                poll(raw.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, milliseconds)
            }
            if ready < 0 {
                if errno == EINTR { continue }
                return .error("poll: \(String(cString: strerror(errno)))")
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
            if let error = step(a, fds.0, inbound: &toB, outbound: &toA, peer: b) { return error }
            if let error = step(b, fds.1, inbound: &toA, outbound: &toB, peer: a) { return error }
            meter?.record(fromA: toB.received, fromB: toA.received)
        }
    }

    /// One side's events: read into `inbound` and pass it on to `peer` at
    /// once; send what `outbound` holds when the side can take it.
    private func step(_ fd: Int32, _ polled: pollfd, inbound: inout Pipe, outbound: inout Pipe, peer: Int32) -> End? {
        let revents = Int32(polled.revents)
        if revents & POLLNVAL != 0 { return .error("descriptor closed") }
        if revents & (POLLIN | POLLHUP | POLLERR) != 0 && Int32(polled.events) & POLLIN != 0 {
            if let error = inbound.fill(from: fd) { return .error(String(cString: strerror(error))) }
            if !inbound.isEmpty, let error = inbound.drain(to: peer) { return .error(String(cString: strerror(error))) }
        } else if revents & POLLERR != 0 {
            return .error("socket error")
        }
        if revents & POLLOUT != 0 && !outbound.isEmpty {
            if let error = outbound.drain(to: fd) { return .error(String(cString: strerror(error))) }
        }
        return nil
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
