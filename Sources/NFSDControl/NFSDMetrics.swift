import NFSAdmin
import RPCMetrics

extension NFSDStatus {
    /// The status as Prometheus metrics (text exposition format 0.0.4):
    /// `nfsd-control status --prometheus`, for node_exporter's textfile
    /// collector or any scraper that runs the command. Per guest CID: open
    /// connections, connections accepted and refused, bytes each way, last
    /// activity, RPC calls, replies and errors and a histogram of their
    /// round trips; and the server's and the bridge's threads and caps.
    public var prometheus: String {
        var out = ""
        // `labels`: what follows the name, a histogram's suffix included.
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            guard !samples.isEmpty else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        metric("nfs_vsock_nfsd_threads", "gauge", "Threads of the host's nfsd (0: stopped).",
               [("", mounted ? String(threads) : "0")])
        if let guestNFSD {
            metric("nfs_vsock_guest_nfsd_threads", "gauge", "Threads of the nfsd that serves bridged guests.", [("", String(guestNFSD.threads))])
            if let limit = guestNFSD.maxConnections {
                metric("nfs_vsock_guest_nfsd_max_connections", "gauge", "max_connections of the guests' nfsd (0: the kernel's default).", [("", String(limit))])
            }
        }
        var running: BridgeStatus? = nil
        if case .running(let status)? = bridge?.reading { running = status }
        metric("nfs_vsock_bridge_up", "gauge", "1 when nfs-vsock-bridge runs and publishes its status.", [("", running == nil ? "0" : "1")])
        guard let status = running else { return out }
        metric("nfs_vsock_bridge_start_time_seconds", "gauge", "When the bridge started, seconds since the epoch.", [("", String(status.started))])
        metric("nfs_vsock_bridge_max_connections", "gauge", "The bridge's cap on connections in total.", [("", String(status.maxConnections))])
        metric("nfs_vsock_bridge_max_connections_per_guest", "gauge", "The bridge's cap per guest (privileged ports and hybrid sockets).", [("", String(status.maxPerGuest))])
        metric("nfs_vsock_bridge_connections", "gauge", "Connections open now, all guests.", [("", String(status.guests.reduce(0) { $0 + $1.open }))])
        func labels(_ guest: BridgeStatus.Guest, _ more: String = "") -> String {
            "{cid=\"\(guest.cid)\",address=\"\(Self.labelValue(guest.address))\"\(more)}"
        }
        let guests = status.guests.map { guest in (guest, labels(guest)) }
        metric("nfs_vsock_guest_connections", "gauge", "Connections of the guest open now.", guests.map { ($0.1, String($0.0.open)) })
        metric("nfs_vsock_guest_connections_accepted_total", "counter", "Connections of the guest forwarded since the bridge started.", guests.map { ($0.1, String($0.0.accepted)) })
        metric("nfs_vsock_guest_connections_refused_total", "counter", "Connections of the guest refused by a limit since the bridge started.", guests.map { ($0.1, String($0.0.refused)) })
        metric("nfs_vsock_guest_received_bytes_total", "counter", "Bytes read from the guest.", guests.map { ($0.1, String($0.0.bytesFromGuest)) })
        metric("nfs_vsock_guest_sent_bytes_total", "counter", "Bytes sent to the guest.", guests.map { ($0.1, String($0.0.bytesToGuest)) })
        metric("nfs_vsock_guest_last_activity_seconds", "gauge", "The guest's last connection change or traffic, seconds since the epoch (0: none).", guests.map { ($0.1, String($0.0.lastActivity)) })
        // Guests of a bridge that did not count RPCs have no RPC series.
        let counted = status.guests.compactMap { guest in guest.rpc.map { (guest, $0) } }
        func rpcCounter(_ name: String, _ help: String, _ value: (RPCCounts) -> UInt64) {
            metric(name, "counter", help, counted.map { (labels($0.0), String(value($0.1))) })
        }
        rpcCounter("nfs_vsock_guest_rpc_calls_total", "RPC calls read from the guest.") { $0.calls }
        rpcCounter("nfs_vsock_guest_rpc_replies_total", "RPC replies sent to the guest.") { $0.replies }
        rpcCounter("nfs_vsock_guest_rpc_errors_total", "Replies to the guest refused by the RPC layer (denied, or accept_stat not SUCCESS).") { $0.rpcErrors }
        rpcCounter("nfs_vsock_guest_nfs_errors_total", "Successful replies to the guest with an NFS status other than OK (NOENT and the like included).") { $0.nfsErrors }
        rpcCounter("nfs_vsock_guest_rpc_untimed_calls_total", "Calls of the guest whose round trip was not measured (more than 512 outstanding on a connection).") { $0.untimedCalls }
        rpcCounter("nfs_vsock_guest_rpc_unparsed_connections_total", "Connections of the guest whose RPC stream the bridge could not follow (their bytes were forwarded).") { $0.unparsedConnections }
        let bounds = RPCLatency.boundsMicroseconds.map { BridgeStatusReport.decimal($0, per: 1_000_000) } + ["+Inf"]
        var histogram: [(labels: String, value: String)] = []
        for (guest, rpc) in counted {
            for (bound, count) in zip(bounds, rpc.latency.cumulative) {
                histogram.append(("_bucket" + labels(guest, ",le=\"\(bound)\""), String(count)))
            }
            histogram.append(("_sum" + labels(guest), BridgeStatusReport.decimal(rpc.latency.sumMicroseconds, per: 1_000_000)))
            histogram.append(("_count" + labels(guest), String(rpc.latency.count)))
        }
        metric("nfs_vsock_guest_rpc_latency_seconds", "histogram",
               "Round trips of the guest's RPC calls seen from the bridge: the call's last byte read from the guest to the reply's first byte read from nfsd.",
               histogram)
        return out
    }

    /// A label value: backslash, double quote and newline escaped (the
    /// bridge, not root, writes the status file these come from).
    static func labelValue(_ text: String) -> String {
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }
}
