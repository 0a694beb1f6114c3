import NFSAdmin
import RPCMetrics

/// The bridge part of `nfsd-control status`: what the bridge published in
/// its status file, checked against the running processes.
public struct BridgeStatusReport: Sendable, Equatable {
    public var reading: BridgeStatusFile.Reading
    public var statusPath: String
    /// The pid in rpc.nfsd's pid file, when that bridge runs.
    public var pidFilePID: Int32?
    /// An older pid-only pid file whose pid runs: reported, not trusted.
    public var unverifiedPIDFile: UnverifiedPIDFile?
    /// Seconds since the epoch, for "N s ago".
    public var now: Int

    public init(reading: BridgeStatusFile.Reading, statusPath: String, pidFilePID: Int32?,
                unverifiedPIDFile: UnverifiedPIDFile? = nil, now: Int) {
        self.reading = reading
        self.statusPath = statusPath
        self.pidFilePID = pidFilePID
        self.unverifiedPIDFile = unverifiedPIDFile
        self.now = now
    }

    /// Whether `status` shows a bridge section: something runs, or left a
    /// status or pid file behind.
    public var isWorthShowing: Bool { reading != .absent || pidFilePID != nil || unverifiedPIDFile != nil }

    /// The running bridge's pid: from its status file, else rpc.nfsd's pid file.
    public var runningPID: Int32? {
        if case .running(let status) = reading { return status.pid }
        return pidFilePID
    }

    // MARK: text

    /// Every string taken from the status file (or naming it) goes through
    /// TerminalText.escape: the bridge, not root, writes that file.
    public var text: String {
        let path = TerminalText.escape(statusPath)
        var out: String
        switch reading {
        case .running(let status):
            out = running(status)
        case .stale(let status):
            out = "bridge:     not running (\(path) is stale: pid \(status.pid) is gone)\n"
            if let pidFilePID { out += "            a bridge with pid \(pidFilePID) runs but publishes no status\n" }
        case .absent:
            if let pidFilePID {
                out = "bridge:     running (pid \(pidFilePID)), no status in \(path)\n"
            } else {
                out = unverifiedPIDFile == nil ? "bridge:     not running\n" : "bridge:     unknown\n"
            }
        case .unreadable(let reason):
            out = "bridge:     status unreadable: \(TerminalText.escape(reason))\n"
        }
        if let unverifiedPIDFile { out += "            \(TerminalText.escape(unverifiedPIDFile.notice))\n" }
        return out
    }

    private func running(_ status: BridgeStatus) -> String {
        let safe = TerminalText.escape
        var out = "bridge:     running (pid \(status.pid)), up \(Self.duration(now - status.started))\n"
        let listens = status.listeners.map { listener -> String in
            switch listener {
            case .vsock(let port): "vsock port \(port) (every CID)"
            case .unix(let path, let cid): "\(safe(path)) (CID \(cid))"
            }
        }
        out += "  listens:  \(listens.isEmpty ? "nothing" : listens.joined(separator: ", "))\n"
        out += "  forwards: to \(safe(status.target)), guests from \(safe(status.loopbackBlock))\n"
        out += "  limits:   \(status.maxPerGuest) connections per guest"
            + (status.maxUnprivilegedPerGuest.map { " (and \($0) from unprivileged ports)" } ?? "")
            + ", \(status.maxConnections) in total, "
            + "idle timeout \(status.idleTimeout == 0 ? "none" : "\(status.idleTimeout) s")\n"
        guard !status.guests.isEmpty else { return out + "  guests:   none yet\n" }
        let header = ["CID", "ADDRESS", "OPEN", "ACCEPTED", "REFUSED", "FROM GUEST", "TO GUEST",
                      "CALLS", "RPC ERR", "NFS ERR", "RTT", "LAST ACTIVITY"]
        var rows = [header]
        for guest in status.guests {
            // A bridge that did not count RPCs: dashes.
            let rpc = guest.rpc.map { rpc in
                [String(rpc.calls), String(rpc.rpcErrors), String(rpc.nfsErrors),
                 rpc.latency.count == 0 ? "-" : Self.roundTrip(rpc.latency.sumMicroseconds / rpc.latency.count)]
            } ?? ["-", "-", "-", "-"]
            rows.append([String(guest.cid), safe(guest.address), String(guest.open), String(guest.accepted),
                         String(guest.refused), Self.bytes(guest.bytesFromGuest), Self.bytes(guest.bytesToGuest)]
                        + rpc + [guest.lastActivity == 0 ? "-" : "\(Self.duration(now - guest.lastActivity)) ago"])
        }
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        out += "  guests:\n"
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                // Numbers right-aligned, words left-aligned.
                return (2...10).contains(index) ? pad + cell : cell + pad
            }
            out += "    " + cells.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
        }
        let unparsed = status.guests.compactMap { guest -> String? in
            guard let count = guest.rpc?.unparsedConnections, count > 0 else { return nil }
            return "guest \(guest.cid) (\(count) connection\(count == 1 ? "" : "s"))"
        }
        if !unparsed.isEmpty {
            out += "  not RPC:  \(unparsed.joined(separator: ", ")): forwarded, not counted\n"
        }
        return out
    }

    /// A mean round trip: "0.4 ms", "12 ms", "1.5 s".
    static func roundTrip(_ microseconds: UInt64) -> String {
        if microseconds < 9_950 {
            let tenths = (microseconds + 50) / 100
            return "\(tenths / 10).\(tenths % 10) ms"
        }
        if microseconds < 999_500 { return "\((microseconds + 500) / 1000) ms" }
        let tenths = (microseconds + 50_000) / 100_000
        return "\(tenths / 10).\(tenths % 10) s"
    }

    /// `value / unit` as a decimal without trailing zeros: (500, per:
    /// 1_000_000) is "0.0005", (2_000_000, per: 1_000_000) is "2".
    static func decimal(_ value: UInt64, per unit: UInt64) -> String {
        let whole = value / unit
        var fraction = value % unit
        guard fraction != 0 else { return String(whole) }
        var digits = ""
        var scale = unit
        while scale > 1 && fraction != 0 {
            scale /= 10
            digits += String(fraction / scale)
            fraction %= scale
        }
        return "\(whole).\(digits)"
    }

    /// "512 B", "1.5 KiB", "12.3 MiB", ...
    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var unit = 0
        var scale: UInt64 = 1
        while unit < units.count - 1 && count >= scale * 1024 {
            scale *= 1024
            unit += 1
        }
        if unit == 0 { return "\(count) B" }
        let tenths = (count * 10 + scale / 2) / scale
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }

    /// "42 s", "3 min", "2 h 5 min", "4 d 3 h".
    static func duration(_ seconds: Int) -> String {
        let value = max(0, seconds)
        if value < 120 { return "\(value) s" }
        if value < 3600 { return "\(value / 60) min" }
        if value < 86400 { return "\(value / 3600) h \(value % 3600 / 60) min" }
        return "\(value / 86400) d \(value % 86400 / 3600) h"
    }

    // MARK: JSON

    /// The `"bridge"` member of `status --json`.
    public var json: String {
        let path = JSONText.quote(statusPath)
        let fromPIDFile = "\"running\": \(pidFilePID != nil), \"pid\": \(pidFilePID.map(String.init) ?? "null"), \"statusFile\": \(path)"
        var members: String
        switch reading {
        case .running(let status):
            let listeners = status.listeners.map { listener -> String in
                switch listener {
                case .vsock(let port): "{\"type\": \"vsock\", \"port\": \(port)}"
                case .unix(let path, let cid): "{\"type\": \"unix\", \"path\": \(JSONText.quote(path)), \"cid\": \(cid)}"
                }
            }
            let guests = status.guests.map { guest in
                "{\"cid\": \(guest.cid), \"address\": \(JSONText.quote(guest.address)), \"open\": \(guest.open), "
                    + "\"accepted\": \(guest.accepted), \"refused\": \(guest.refused), "
                    + "\"bytesFromGuest\": \(guest.bytesFromGuest), \"bytesToGuest\": \(guest.bytesToGuest), "
                    + "\"lastActivity\": \(guest.lastActivity == 0 ? "null" : String(guest.lastActivity)), "
                    + "\"rpc\": \(guest.rpc.map(Self.rpcJSON) ?? "null")}"
            }
            members = "\"running\": true, \"pid\": \(status.pid), \"statusFile\": \(path), \"started\": \(status.started), "
                + "\"target\": \(JSONText.quote(status.target)), \"loopbackBlock\": \(JSONText.quote(status.loopbackBlock)), "
                + "\"limits\": {\"perGuest\": \(status.maxPerGuest), "
                + "\"perGuestUnprivileged\": \(status.maxUnprivilegedPerGuest.map(String.init) ?? "null"), \"total\": \(status.maxConnections), "
                + "\"idleTimeout\": \(status.idleTimeout)}, "
                + "\"listeners\": [\(listeners.joined(separator: ", "))], \"guests\": [\(guests.joined(separator: ", "))]"
        case .stale(let status):
            members = fromPIDFile + ", \"stale\": true, \"stalePid\": \(status.pid)"
        case .absent:
            members = fromPIDFile
        case .unreadable(let reason):
            members = fromPIDFile + ", \"error\": \(JSONText.quote(reason))"
        }
        if let unverifiedPIDFile {
            members += ", \"unverifiedPidFile\": {\"path\": \(JSONText.quote(unverifiedPIDFile.path)), \"pid\": \(unverifiedPIDFile.pid)}"
        }
        return "{" + members + "}"
    }

    /// A guest's `"rpc"` object: the counts, and the round trips with
    /// each bucket's own count and upper bound in milliseconds (null: +Inf).
    static func rpcJSON(_ rpc: RPCCounts) -> String {
        let bounds = RPCLatency.boundsMicroseconds.map { decimal($0, per: 1000) } + ["null"]
        let buckets = zip(bounds, rpc.latency.perBucket).map { bound, count in "{\"upToMilliseconds\": \(bound), \"count\": \(count)}" }
        return "{\"calls\": \(rpc.calls), \"replies\": \(rpc.replies), \"rpcErrors\": \(rpc.rpcErrors), "
            + "\"nfsErrors\": \(rpc.nfsErrors), \"untimedCalls\": \(rpc.untimedCalls), "
            + "\"unparsedConnections\": \(rpc.unparsedConnections), "
            + "\"latency\": {\"count\": \(rpc.latency.count), \"sumMicroseconds\": \(rpc.latency.sumMicroseconds), "
            + "\"buckets\": [\(buckets.joined(separator: ", "))]}}"
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }
}
