import Testing
@testable import VsockBridge

@Suite("refusals in the log, rate-limited per guest")
struct RefusalLogTests {
    @Test("a flood: the first burst logged, one line saying the rest are counted, then a sum with the next window's first")
    func flood() {
        var log = RefusalLog()
        var lines: [String] = []
        for second in 0..<RefusalLog.window {
            for _ in 0..<100 {
                if let line = log.line(cid: 7, now: 1000 + second, message: "refused 7") { lines.append(line) }
            }
        }
        #expect(lines.count == RefusalLog.burst + 1)
        #expect(lines.last == "refused 7 (further refusals of guest 7 in the next \(RefusalLog.window) s are counted, not logged)")
        let next = log.line(cid: 7, now: 1000 + RefusalLog.window, message: "refused 7")
        let suppressed = 100 * RefusalLog.window - RefusalLog.burst - 1
        #expect(next == "refused 7 (and \(suppressed) more refusals of guest 7 not logged)")
        #expect(log.line(cid: 7, now: 1000 + RefusalLog.window, message: "refused 7") == "refused 7")
    }

    @Test("connection lines: their own burst and name")
    func connectionLines() {
        var log = RefusalLog(what: "connection messages", burst: 20)
        let lines = (0..<50).compactMap { _ in log.line(cid: 9, now: 7, message: "vsock:9 closed") }
        #expect(lines.count == 21)
        #expect(lines.last == "vsock:9 closed (further connection messages of guest 9 in the next \(RefusalLog.window) s are counted, not logged)")
        #expect(log.line(cid: 9, now: 7 + RefusalLog.window, message: "vsock:9 closed") == "vsock:9 closed (and 29 more connection messages of guest 9 not logged)")
    }

    @Test("one guest's flood does not silence another's refusals")
    func perGuest() {
        var log = RefusalLog()
        for _ in 0..<50 { _ = log.line(cid: 7, now: 5, message: "x") }
        #expect(log.line(cid: 8, now: 5, message: "refused 8") == "refused 8")
    }

    @Test("guests whose window has passed are pruned, the others kept")
    func prune() {
        var log = RefusalLog()
        _ = log.line(cid: 1, now: 0, message: "a")
        for _ in 0..<20 { _ = log.line(cid: 2, now: 95, message: "b") }
        log.prune(now: 100)
        #expect(log.entries[1] == nil)
        #expect(log.entries[2]?.suppressed == 20 - RefusalLog.burst - 1)
    }
}
