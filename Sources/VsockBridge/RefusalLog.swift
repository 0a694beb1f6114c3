/// How many refusals (or other per-connection lines) of one guest reach
/// the log: a guest that opens connections as fast as it can must not fill
/// the journal (or the log file of a bridge rpc.nfsd started). Per CID,
/// the first `burst` lines of each `window` seconds are logged; the rest
/// are counted and summed up in one line when the next window's first is
/// logged. Pure: the caller passes the time. Every refusal and connection
/// is still counted in the guest's status (refused=, accepted=).
public struct RefusalLog: Sendable {
    public static let burst = 5
    public static let window = 10

    /// What the lines are, for the summing-up ("refusals").
    let what: String
    let burst: Int

    struct Entry {
        var windowStart: Int
        var logged: Int
        var suppressed: Int
    }

    var entries: [UInt32: Entry] = [:]

    public init(what: String = "refusals", burst: Int = RefusalLog.burst) {
        self.what = what
        self.burst = burst
    }

    /// What to log for this refusal of `cid` at `now`: nil when it is to be
    /// suppressed, else the line, with how many were suppressed before it.
    public mutating func line(cid: UInt32, now: Int, message: String) -> String? {
        var entry = entries[cid] ?? Entry(windowStart: now, logged: 0, suppressed: 0)
        defer { entries[cid] = entry }
        if now - entry.windowStart >= Self.window {
            let earlier = entry.suppressed
            entry = Entry(windowStart: now, logged: 1, suppressed: 0)
            guard earlier > 0 else { return message }
            return message + " (and \(earlier) more \(what) of guest \(cid) not logged)"
        }
        // The line after the burst is logged too, saying what follows.
        if entry.logged == burst {
            entry.logged += 1
            return message + " (further \(what) of guest \(cid) in the next \(Self.window) s are counted, not logged)"
        }
        guard entry.logged < burst else {
            entry.suppressed += 1
            return nil
        }
        entry.logged += 1
        return message
    }

    /// Forgets guests whose window has passed (keeps the table small when
    /// many guests are refused; the status file still counts every
    /// refusal, a sum line not yet logged is dropped).
    public mutating func prune(now: Int) {
        entries = entries.filter { now - $0.value.windowStart < Self.window }
    }
}
