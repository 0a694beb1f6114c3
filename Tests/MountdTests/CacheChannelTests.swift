import Glibc
import NFSAdmin
import Synchronization
import Testing
@testable import Mountd

@Suite("cache channel: replies, close and reopen")
struct CacheChannelTests {
    @Test("a channel that is not there: open says ENOENT, a reply says EBADF")
    func missing() throws {
        let root = try TestRoot()
        let channel = CacheChannel(cache: "nfsd.export", paths: root.paths)
        #expect(channel.open() == ENOENT)
        #expect(!channel.isOpen)
        #expect(channel.reply("dom /srv 1\n") == EBADF)
    }

    @Test("each reply arrives whole, in order, in one write")
    func replies() throws {
        let root = try TestRoot()
        try root.channelFIFO("nfsd.export")
        let channel = CacheChannel(cache: "nfsd.export", paths: root.paths)
        #expect(channel.open() == nil)
        #expect(channel.open() == nil)  // already open: nothing to do
        #expect(channel.reply("dom /srv/a 100\n") == nil)
        #expect(channel.reply("dom /srv/b 100\n") == nil)
        #expect(root.replies("nfsd.export", count: 2) == ["dom /srv/a 100", "dom /srv/b 100"])
        channel.close()
    }

    @Test("a request is read without its newline; an empty channel is nothing")
    func requests() throws {
        let root = try TestRoot()
        try root.channelFIFO("auth.unix.ip")
        let channel = CacheChannel(cache: "auth.unix.ip", paths: root.paths)
        #expect(channel.open() == nil)
        guard case .nothing = channel.read() else { Issue.record("an empty channel gave something"); return }
        let kernel = open(channel.path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        #expect(kernel >= 0)
        defer { close(kernel) }
        let request = Array("nfsd 192.168.1.5\n".utf8)
        #expect(request.withUnsafeBytes { write(kernel, $0.baseAddress, $0.count) } == request.count)
        guard case .request(let line) = channel.read() else { Issue.record("no request read"); return }
        #expect(line == "nfsd 192.168.1.5")
        channel.close()
        guard case .failed(EBADF) = channel.read() else { Issue.record("a closed channel read something"); return }
    }

    @Test("closed, a channel refuses replies; reopened, it takes them again")
    func reopen() throws {
        let root = try TestRoot()
        try root.channelFIFO("nfsd.fh")
        let channel = CacheChannel(cache: "nfsd.fh", paths: root.paths)
        #expect(channel.open() == nil)
        channel.close()
        channel.close()  // twice is harmless
        #expect(channel.reply("lost\n") == EBADF)
        #expect(channel.open() == nil)
        #expect(channel.reply("kept\n") == nil)
        #expect(root.replies("nfsd.fh") == ["kept"])
        channel.close()
    }

    /// Threads reply on two channels while this one closes both and
    /// reopens them so that each takes the descriptor number the other
    /// had: a reply written to a number taken before the close (no lock
    /// between taking the descriptor and writing to it) lands in the other
    /// channel's FIFO. Every reply counted as written
    /// must be in its own channel, and nothing else may be there.
    @Test("replies written during close and reopen land only in their own channel")
    func noReplyInAReusedDescriptor() throws {
        let root = try TestRoot()
        let caches = ["auth.unix.ip", "nfsd.export"]
        for cache in caches { try root.channelFIFO(cache) }
        // A writer that is slow between taking the descriptor and writing
        // to it (as one preempted there would be).
        let channels = caches.map { cache in
            CacheChannel(cache: cache, paths: root.paths) { fd, raw in
                usleep(20)
                return write(fd, raw.baseAddress, raw.count)
            }
        }
        for channel in channels { #expect(channel.open() == nil) }
        let run = RaceRun()
        for (index, channel) in channels.enumerated() {
            let message = index == 0 ? "A\n" : "B\n"
            let started = DetachedThread.start {
                while !run.stop.load(ordering: .relaxed) {
                    if channel.reply(message) == nil { run.wrote(index) }
                }
                run.finished.add(1, ordering: .releasing)
            }
            #expect(started)
        }
        var arrived: [[UInt8]] = [[], []]
        // Until both sides have written enough replies across enough swaps
        // (a loaded machine gets the time limit, not a failure).
        var swaps = 0
        let deadline = monotonicSeconds() + 10
        while swaps < 500 || min(run.written(0), run.written(1)) < 1000, monotonicSeconds() < deadline {
            // Closed together and reopened first one, then the other first:
            // each time, each takes the number the other had.
            channels.forEach { $0.close() }
            let order = swaps % 2 == 0 ? [1, 0] : [0, 1]
            order.forEach { channels[$0].open() }
            swaps += 1
            // Replies written now go to the numbers as they are after the swap.
            usleep(100)
            for index in 0..<2 { arrived[index] += root.drain(caches[index]) }
        }
        run.stop.store(true, ordering: .relaxed)
        while run.finished.load(ordering: .acquiring) < 2 { usleep(1_000) }
        for index in 0..<2 { arrived[index] += root.drain(caches[index]) }
        channels.forEach { $0.close() }

        let misplacedInA = arrived[0].filter { $0 == UInt8(ascii: "B") }.count
        let misplacedInB = arrived[1].filter { $0 == UInt8(ascii: "A") }.count
        #expect(misplacedInA == 0, "replies for nfsd.export arrived in auth.unix.ip")
        #expect(misplacedInB == 0, "replies for auth.unix.ip arrived in nfsd.export")
        #expect(arrived[0].count == 2 * run.written(0))
        #expect(arrived[1].count == 2 * run.written(1))
        // The run did race: both sides wrote while the channels were cycling.
        #expect(run.written(0) > 0 && run.written(1) > 0)
    }
}

final class RaceRun: Sendable {
    let stop = Atomic<Bool>(false)
    let finished = Atomic<Int>(0)
    private let writtenA = Atomic<Int>(0)
    private let writtenB = Atomic<Int>(0)

    func wrote(_ index: Int) {
        if index == 0 { writtenA.add(1, ordering: .relaxed) } else { writtenB.add(1, ordering: .relaxed) }
    }

    func written(_ index: Int) -> Int {
        index == 0 ? writtenA.load(ordering: .relaxed) : writtenB.load(ordering: .relaxed)
    }
}
