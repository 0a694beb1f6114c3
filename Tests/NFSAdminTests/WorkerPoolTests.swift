import Dispatch
import Glibc
import Testing
@testable import NFSAdmin
import SystemEdge

/// mountd's name lookups run here: a blocked job never delays another while
/// the limit allows, the limit holds, and a quiet pool ends its threads.
@Suite("worker pool for blocking jobs")
struct WorkerPoolTests {
    @Test("every job runs, once")
    func everyJob() {
        let pool = WorkerPool(limit: 4)
        let done = ThreadLock<[Int]>([])
        let finished = DispatchSemaphore(value: 0)
        for n in 0..<200 {
            pool.submit {
                done.withLock { $0.append(n) }
                finished.signal()
            }
        }
        for _ in 0..<200 { #expect(finished.wait(timeout: .now() + 10) == .success) }
        #expect(done.withLock { $0.sorted() } == Array(0..<200))
        #expect(pool.threadCount <= 4)
    }

    @Test("a job that blocks does not hold up the next, even when a thread was idle")
    func blockedDoesNotDelay() {
        let pool = WorkerPool(limit: 8)
        // One thread made and idle.
        let warm = DispatchSemaphore(value: 0)
        pool.submit { warm.signal() }
        #expect(warm.wait(timeout: .now() + 10) == .success)
        let release = DispatchSemaphore(value: 0)
        let second = DispatchSemaphore(value: 0)
        pool.submit { release.wait() }       // the slow lookup
        pool.submit { second.signal() }      // submitted at once behind it
        #expect(second.wait(timeout: .now() + 5) == .success, "the second job waited for the blocked one")
        release.signal()
    }

    @Test("no more threads than the limit; past it, jobs wait their turn")
    func limit() {
        let pool = WorkerPool(limit: 2)
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let third = DispatchSemaphore(value: 0)
        pool.submit { started.signal(); release.wait() }
        pool.submit { started.signal(); release.wait() }
        pool.submit { third.signal() }
        #expect(started.wait(timeout: .now() + 10) == .success)
        #expect(started.wait(timeout: .now() + 10) == .success)
        #expect(pool.threadCount == 2)
        #expect(third.wait(timeout: .now() + 0.3) == .timedOut, "a third thread ran past the limit")
        release.signal()
        #expect(third.wait(timeout: .now() + 10) == .success)
        release.signal()
    }

    @Test("idle threads end")
    func idleEnd() {
        let pool = WorkerPool(limit: 3, idleSeconds: 1)
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<3 { pool.submit { usleep(50_000); finished.signal() } }
        for _ in 0..<3 { #expect(finished.wait(timeout: .now() + 10) == .success) }
        var waited = 0
        while pool.threadCount > 0 && waited < 100 { usleep(50_000); waited += 1 }
        #expect(pool.threadCount == 0)
    }
}
