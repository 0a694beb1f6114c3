#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex, with a condition variable for threads
/// that wait for the value to change. Synchronization.Mutex on Linux is a
/// bare futex, whose ordering ThreadSanitizer cannot see (the suite runs the
/// unit tests under it); a lock around state that several threads touch in
/// those tests is this one, so a report is a real race.
public final class ThreadLock<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// On CLOCK_MONOTONIC, so a wait's deadline does not move with the wall clock.
    private let changed: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value

    public init(_ value: consuming Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        changed = .allocate(capacity: 1)
        changed.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(changed, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(changed)
        changed.deinitialize(count: 1)
        changed.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Takes the lock and, while `ready` is false of the value, waits for a
    /// `signal` (the lock released meanwhile) for at most `seconds`; then
    /// runs `body` with the lock held, whether `ready` came true or not.
    public func withLock<Result>(waitingAtMost seconds: Int, until ready: (borrowing Value) -> Bool,
                                 _ body: (inout Value) -> Result) -> Result {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += seconds
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var timedOut = false
        while !ready(value) && !timedOut {
            timedOut = pthread_cond_timedwait(changed, mutex, &deadline) == ETIMEDOUT
        }
        return body(&value)
    }

    /// Wakes one thread waiting in `withLock(waitingAtMost:until:_:)`; may
    /// be called with the lock held or not.
    public func signal() { pthread_cond_signal(changed) }
}
