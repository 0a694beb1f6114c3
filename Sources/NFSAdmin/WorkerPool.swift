#if canImport(Glibc)
import Glibc
#endif

/// Blocking jobs (a name lookup that waits out a resolver's timeouts) on
/// threads of the project's own, never on Dispatch's shared pool. A thread
/// is made when a job arrives and no idle thread is free to take it, up to
/// `limit`; past that,
/// jobs wait in order. An idle thread ends after `idleSeconds`. So one slow
/// job never delays another while fewer than `limit` are slow at once, and
/// a quiet daemon keeps no threads.
public final class WorkerPool: @unchecked Sendable {
    public let limit: Int
    public let idleSeconds: Int
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by mutex.
    private var jobs: [@Sendable () -> Void] = []
    private var next = 0
    private var threads = 0
    /// Threads waiting for a job (each queued job beyond them needs a thread).
    private var waiting = 0

    public init(limit: Int, idleSeconds: Int = 10) {
        self.limit = max(1, limit)
        self.idleSeconds = idleSeconds
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        wake = .allocate(capacity: 1)
        wake.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(wake, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    // Workers hold the pool while they run, so it lives as long as they do.
    deinit {
        pthread_cond_destroy(wake)
        wake.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// The threads running now (for tests and status).
    public var threadCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return threads
    }

    /// Queues `job`; starts a thread for it if the waiting threads are
    /// fewer than the queued jobs and the limit allows. If no thread can be made at all, the job runs here.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(mutex)
        jobs.append(job)
        var spawn = false
        if jobs.count - next > waiting && threads < limit {
            threads += 1
            spawn = true
        }
        pthread_cond_signal(wake)
        pthread_mutex_unlock(mutex)
        guard spawn else { return }
        if !DetachedThread.start({ [self] in work() }) {
            pthread_mutex_lock(mutex)
            threads -= 1
            let orphaned = threads == 0 ? take() : []
            pthread_mutex_unlock(mutex)
            orphaned.forEach { $0() }
        }
    }

    /// Every queued job (mutex held).
    private func take() -> [@Sendable () -> Void] {
        defer { jobs = []; next = 0 }
        return Array(jobs[next...])
    }

    private func work() {
        pthread_mutex_lock(mutex)
        while true {
            if next < jobs.count {
                let job = jobs[next]
                next += 1
                if next == jobs.count { jobs.removeAll(keepingCapacity: true); next = 0 }
                pthread_mutex_unlock(mutex)
                job()
                pthread_mutex_lock(mutex)
                continue
            }
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            deadline.tv_sec += idleSeconds
            waiting += 1
            var timedOut = false
            while next >= jobs.count && !timedOut {
                timedOut = pthread_cond_timedwait(wake, mutex, &deadline) == ETIMEDOUT
            }
            waiting -= 1
            if next >= jobs.count {
                threads -= 1
                pthread_mutex_unlock(mutex)
                return
            }
        }
    }
}
