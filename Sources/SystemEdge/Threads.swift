#if canImport(Glibc)
import Glibc
#endif

/// POSIX threads running a closure: for blocking work (accept loops, one
/// forwarder per connection, the MOUNT server's poll loop, name lookups)
/// that must not occupy Dispatch's small shared pool. The one place the
/// tools call pthread_create.
public enum PosixThread {
    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread, detached (it cleans up after itself)
    /// or joinable (the caller joins or detaches it). The error carries
    /// pthread_create's error number.
    public static func start(detached: Bool, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) -> Result<pthread_t, SystemError> {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if detached { pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED)) }
        if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, &attributes, { raw in
            // SAFETY: raw is the retained Box passed below; released here once.
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, context)
        if status != 0 {
            Unmanaged<Box>.fromOpaque(context).release()
            return .failure(SystemError("pthread_create", detached ? "detached thread" : "thread", errno: status))
        }
        return .success(thread)
    }
}

/// A detached thread with a small stack (256 KiB: forwarders and accept
/// loops need little, and a bridge runs one per connection).
public enum DetachedThread {
    /// Returns false if the thread could not be created.
    @discardableResult
    public static func start(stackSize: Int = 256 * 1024, _ body: @escaping @Sendable () -> Void) -> Bool {
        if case .success = PosixThread.start(detached: true, stackSize: stackSize, body) { return true }
        return false
    }
}
