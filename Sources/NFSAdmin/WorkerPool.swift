#if canImport(Glibc)
import Glibc
#endif
import SystemEdge

/// Blocking jobs (a name lookup that waits out a resolver's timeouts) on
/// threads of the project's own, never on Dispatch's shared pool. A thread
/// is made when a job arrives and no idle thread is free to take it, up to
/// `limit`; past that,
/// jobs wait in order. An idle thread ends after `idleSeconds`. So one slow
/// job never delays another while fewer than `limit` are slow at once, and
/// a quiet daemon keeps no threads.
public final class WorkerPool: Sendable {
    public typealias Job = @Sendable () -> Void

    public let limit: Int
    public let idleSeconds: Int

    private struct State {
        var jobs: [Job] = []
        var next = 0
        var threads = 0
        /// Threads waiting for a job (each queued job beyond them needs a thread).
        var waiting = 0

        var hasJob: Bool { next < jobs.count }

        /// The next queued job, if there is one.
        mutating func takeNext() -> Job? {
            guard hasJob else { return nil }
            let job = jobs[next]
            next += 1
            if next == jobs.count { jobs.removeAll(keepingCapacity: true); next = 0 }
            return job
        }

        /// Every queued job.
        mutating func takeAll() -> [Job] {
            defer { jobs = []; next = 0 }
            return Array(jobs[next...])
        }
    }

    private let state = ThreadLock(State())

    public init(limit: Int, idleSeconds: Int = 10) {
        self.limit = max(1, limit)
        self.idleSeconds = idleSeconds
    }

    /// The threads running now (for tests and status).
    public var threadCount: Int { state.withLock { $0.threads } }

    /// Queues `job`; starts a thread for it if the waiting threads are
    /// fewer than the queued jobs and the limit allows. If no thread can be made at all, the job runs here.
    public func submit(_ job: @escaping Job) {
        let spawn = state.withLock { state in
            state.jobs.append(job)
            var spawn = false
            if state.jobs.count - state.next > state.waiting && state.threads < limit {
                state.threads += 1
                spawn = true
            }
            self.state.signal()
            return spawn
        }
        guard spawn else { return }
        // Workers hold the pool while they run, so it lives as long as they do.
        if !DetachedThread.start({ [self] in work() }) {
            let orphaned = state.withLock { state in
                state.threads -= 1
                return state.threads == 0 ? state.takeAll() : []
            }
            orphaned.forEach { $0() }
        }
    }

    private func work() {
        while let job = nextJob() { job() }
    }

    /// The next job, waiting up to idleSeconds for one when none is queued;
    /// nil (the thread counted out) when none came.
    private func nextJob() -> Job? {
        let queued: Job? = state.withLock { state in
            if let job = state.takeNext() { return job }
            state.waiting += 1
            return nil
        }
        if let queued { return queued }
        return state.withLock(waitingAtMost: idleSeconds, until: { $0.hasJob }) { state in
            state.waiting -= 1
            if let job = state.takeNext() { return job }
            state.threads -= 1
            return nil
        }
    }
}
