/// How many refusals of one guest reach the log: a guest that opens
/// connections as fast as it can must not fill the journal (or the log
/// file of a bridge rpc.nfsd started). Per CID, the first `burst`
/// refusals of each `window` seconds are logged; the rest are counted and
/// summed up in one line when the next window's first refusal is logged.
/// Pure: the caller passes the time. Every refusal is still counted in the
/// guest's status (refused=).
public struct RefusalLog: Sendable {
    public static let burst = 5
    public static let window = 10

    struct Entry {
        var windowStart: Int
        var logged: Int
        var suppressed: Int
    }

    var entries: [UInt32: Entry] = [:]

    public init() {}

    /// What to log for this refusal of `cid` at `now`: nil when it is to be
    /// suppressed, else the line, with how many were suppressed before it.
    public mutating func line(cid: UInt32, now: Int, message: String) -> String? {
        var entry = entries[cid] ?? Entry(windowStart: now, logged: 0, suppressed: 0)
        defer { entries[cid] = entry }
        if now - entry.windowStart >= Self.window {
            let earlier = entry.suppressed
            entry = Entry(windowStart: now, logged: 1, suppressed: 0)
            guard earlier > 0 else { return message }
            return message + " (and \(earlier) more refusals of guest \(cid) not logged)"
        }
        guard entry.logged < Self.burst else {
            entry.suppressed += 1
            if entry.suppressed == 1 { return message + " (further refusals of guest \(cid) in the next \(Self.window) s are counted, not logged)" }
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
