#if canImport(Glibc)
import Glibc
#endif
import CMountGlue
import CTIRPC
import SystemEdge

/// libtirpc keeps its server side in process globals: the table of
/// transports by descriptor, `svc_pollfd`, the program/version callouts,
/// `rpc_control` settings. Every call into it that creates, serves or
/// destroys a server transport holds this lock, so servers on different
/// threads (and the connection bookkeeping below, which reads `svc_pollfd`)
/// never see it half-changed.
enum TIRPCServerLock {
    static let mutex = ThreadLock<Void>(())

    static func withLock<R>(_ body: () -> R) -> R {
        mutex.withLock { _ in body() }
    }
}

/// A libtirpc server transport this server created: the TCP listener
/// (rendezvous) or the UDP socket. Connections accepted from the listener
/// are libtirpc's; the loop tracks them by descriptor.
struct ServerEndpoint: @unchecked Sendable {
    // @unchecked: `xprt` points into libtirpc; it is used only on the serving
    // thread or before that thread starts, always under TIRPCServerLock.
    let transport: MountTransport
    let fd: Int32
    let xprt: UnsafeMutablePointer<SVCXPRT>
    let local: SocketAddress
}

/// The serving thread: polls the endpoints, the accepted connections and a
/// wake-up pipe, and lets libtirpc read, dispatch and answer what is
/// ready. One call at a time; the service is called on this thread.
final class ServeLoop: @unchecked Sendable {
    // @unchecked: the lets are set before the thread starts; `connections`
    // is touched only by the serving thread; stop() only writes to the pipe.
    let endpoints: [ServerEndpoint]
    let dispatcher: MountDispatcher
    let wakeReadFD: Int32
    let wakeWriteFD: Int32
    let idleTimeout: Duration
    let maxConnections: Int

    /// Accepted connection descriptor -> when it was last readable.
    private var connections: [Int32: ContinuousClock.Instant] = [:]

    init(endpoints: [ServerEndpoint], dispatcher: MountDispatcher, wakeReadFD: Int32, wakeWriteFD: Int32,
         idleTimeout: Duration, maxConnections: Int) {
        self.endpoints = endpoints
        self.dispatcher = dispatcher
        self.wakeReadFD = wakeReadFD
        self.wakeWriteFD = wakeWriteFD
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }

    deinit {
        close(wakeReadFD)
        close(wakeWriteFD)
    }

    /// Asks the loop to finish (from any thread).
    func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
    }

    func run() {
        Self.blockAsynchronousSignals()
        while true {
            var fds = [pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0)]
            fds += endpoints.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            fds += connections.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), pollTimeout())
            if ready < 0 {
                if errno == EINTR { continue }
                dispatcher.log("MOUNT server: poll failed: \(SystemError.describe(errno))")
                usleep(100_000) // not a busy loop if it persists; stop() still works
                continue
            }
            if fds[0].revents != 0 { break }
            TIRPCServerLock.withLock {
                for entry in fds.dropFirst() where entry.revents != 0 {
                    serveReady(entry.fd, revents: entry.revents)
                }
                closeIdleConnections()
            }
        }
        TIRPCServerLock.withLock {
            for fd in Array(connections.keys) { closeConnection(fd) }
            for endpoint in endpoints { mountglue_destroy(endpoint.xprt) }
        }
    }

    private func serveReady(_ fd: Int32, revents: Int16) {
        if let endpoint = endpoints.first(where: { $0.fd == fd }) {
            guard endpoint.transport == .tcp else {
                // The datagram's real length (MSG_TRUNC), for argument
                // decoding; none waiting (a spurious wake-up) means no call.
                let length = recv(fd, nil, 0, Int32(MSG_PEEK | MSG_TRUNC))
                if length > 0 { serve(fd, transport: .udp, datagramLength: length) }
                return
            }
            // libtirpc accepts inside svc_getreq_common and registers the new
            // connection as a transport of its own; find it as the
            // descriptor that was not registered before.
            let before = Set(Self.registeredDescriptors())
            serve(fd, transport: .tcp)
            for new in Self.registeredDescriptors() where !before.contains(new) {
                // libtirpc's accept() does not ask for close-on-exec; a
                // child the daemon runs must not hold a client's connection.
                _ = fcntl(new, F_SETFD, fcntl(new, F_GETFD) | FD_CLOEXEC)
                connections[new] = .now
            }
            if connections.count > maxConnections, let oldest = connections.min(by: { $0.value < $1.value })?.key {
                closeConnection(oldest)
            }
            return
        }
        guard connections[fd] != nil else { return }
        if revents & Int16(POLLNVAL) != 0 {
            connections[fd] = nil // not ours any more (cannot happen while we hold the lock)
            return
        }
        connections[fd] = .now
        serve(fd, transport: .tcp)
        // libtirpc destroys (and closes) a connection that hung up or sent garbage.
        if !mountglue_fd_is_registered(fd) { connections[fd] = nil }
    }

    /// Wait for the next idle deadline when there are connections.
    private func pollTimeout() -> Int32 {
        guard let oldest = connections.values.min() else { return -1 }
        let left = oldest.advanced(by: idleTimeout) - .now
        let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(10, milliseconds + 1))
    }

    private func closeIdleConnections() {
        let now = ContinuousClock.now
        for (fd, last) in connections where now - last >= idleTimeout {
            closeConnection(fd)
        }
    }

    /// libtirpc offers no public call to destroy a connection it accepted
    /// (its transport pointer is private). Shutting the socket down makes
    /// the next read see end-of-file, and libtirpc then destroys the
    /// transport and closes the descriptor itself. Calls still buffered are
    /// dropped unanswered (`closing`).
    private func closeConnection(_ fd: Int32) {
        connections[fd] = nil
        shutdown(fd, Int32(SHUT_RDWR))
        for _ in 0..<8 where mountglue_fd_is_registered(fd) {
            serve(fd, transport: .tcp, closing: true)
        }
        if mountglue_fd_is_registered(fd) {
            dispatcher.log("MOUNT server: connection on descriptor \(fd) did not close")
        }
    }

    private struct CallContext {
        let dispatcher: MountDispatcher
        let transport: MountTransport
        let datagramLength: Int?
        let closing: Bool
    }

    private func serve(_ fd: Int32, transport: MountTransport, datagramLength: Int? = nil, closing: Bool = false) {
        var context = CallContext(dispatcher: dispatcher, transport: transport, datagramLength: datagramLength, closing: closing)
        withUnsafeMutablePointer(to: &context) { pointer in
            // The pointer is used only during this call: mountglue_serve
            // clears its thread-local before returning.
            mountglue_serve(fd, { raw, request, xprt in
                guard let raw, let request, let xprt else { return }
                let context = raw.assumingMemoryBound(to: CallContext.self).pointee
                if context.closing { return }
                context.dispatcher.handle(request, xprt, transport: context.transport, datagramLength: context.datagramLength)
            }, pointer)
        }
    }

    private static func registeredDescriptors() -> [Int32] {
        var fds = [Int32](repeating: -1, count: 64)
        while true {
            let count = Int(mountglue_registered_fds(&fds, Int32(fds.count)))
            if count <= fds.count { return Array(fds.prefix(count)) }
            fds = [Int32](repeating: -1, count: count * 2)
        }
    }

    /// The process's signal handling (a signalfd, sigwait, handlers on the
    /// main thread) must not be disturbed by this thread: it takes no
    /// asynchronous signals. Blocking SIGPIPE here also turns a write to a
    /// client that went away into EPIPE instead of killing the process.
    /// Faults stay unblocked so crashes still report.
    private static func blockAsynchronousSignals() {
        var set = sigset_t()
        sigfillset(&set)
        for fault in [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS] {
            sigdelset(&set, fault)
        }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }
}
