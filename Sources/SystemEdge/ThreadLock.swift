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
    /// The value lives in its own allocation, not in a stored property:
    /// ThreadSanitizer's Swift access checks placed an empty value (a
    /// ThreadLock<Void>) at the object's first word, so they reported a
    /// race between one thread's access under the lock and another's read
    /// of the object header on its way to the lock (2 runs in 15 of the
    /// hybrid-vsock tests, 2026-12-02).
    private let storage: UnsafeMutablePointer<Value>

    public init(_ value: consuming Value) {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        changed.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(changed, &attributes)
        pthread_condattr_destroy(&attributes)
        // The value is written under the lock: a ThreadLock in a global or
        // static (lazily initialized, published to other threads through
        // swift_once, which ThreadSanitizer does not see) would otherwise
        // show its first writer racing every later withLock.
        pthread_mutex_lock(mutex)
        self.mutex = mutex
        self.changed = changed
        storage = .allocate(capacity: 1)
        storage.initialize(to: value)
        pthread_mutex_unlock(mutex)
    }

    deinit {
        storage.deinitialize(count: 1)
        storage.deallocate()
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
        return try body(&storage.pointee)
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
        while !ready(storage.pointee) && !timedOut {
            timedOut = pthread_cond_timedwait(changed, mutex, &deadline) == ETIMEDOUT
        }
        return body(&storage.pointee)
    }

    /// Wakes one thread waiting in `withLock(waitingAtMost:until:_:)`; may
    /// be called with the lock held or not.
    public func signal() { pthread_cond_signal(changed) }
}
