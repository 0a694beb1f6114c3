import Dispatch
import Glibc
import SystemEdge
import Testing

@Suite("thread lock's condition")
struct ThreadLockTests {
    @Test("a waiter wakes when another thread changes the value and signals")
    func wakes() {
        let lock = ThreadLock(0)
        let woke = DispatchSemaphore(value: 0)
        let seen = ThreadLock(0)
        DispatchQueue.global().async {
            let value = lock.withLock(waitingAtMost: 10, until: { $0 == 1 }) { $0 }
            seen.withLock { $0 = value }
            woke.signal()
        }
        usleep(50_000)
        lock.withLock { $0 = 1 }
        lock.signal()
        #expect(woke.wait(timeout: .now() + 5) == .success)
        #expect(seen.withLock { $0 } == 1)
    }

    @Test("a wait ends at its deadline with the value unchanged")
    func timesOut() {
        let lock = ThreadLock(false)
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        let ready = lock.withLock(waitingAtMost: 1, until: { $0 }) { $0 }
        clock_gettime(CLOCK_MONOTONIC, &end)
        #expect(!ready)
        #expect(end.tv_sec - start.tv_sec >= 1)
    }
}
