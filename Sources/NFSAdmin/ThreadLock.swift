#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex. Synchronization.Mutex on Linux is a bare
/// futex, whose ordering ThreadSanitizer cannot see (the suite runs the unit
/// tests under it); a lock around state that several threads touch in
/// those tests is this one, so a report is a real race.
public final class ThreadLock<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: consuming Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
