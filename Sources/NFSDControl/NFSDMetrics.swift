import NFSAdmin

extension NFSDStatus {
    /// The status as Prometheus metrics (text exposition format 0.0.4):
    /// `nfsd-control status --prometheus`, for node_exporter's textfile
    /// collector or any scraper that runs the command. Per guest CID: open
    /// connections, connections accepted and refused, bytes each way, last
    /// activity; and the server's and the bridge's threads and caps.
    public var prometheus: String {
        var out = ""
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
        let guests = status.guests.map { guest in
            (guest, "{cid=\"\(guest.cid)\",address=\"\(Self.labelValue(guest.address))\"}")
        }
        metric("nfs_vsock_guest_connections", "gauge", "Connections of the guest open now.", guests.map { ($0.1, String($0.0.open)) })
        metric("nfs_vsock_guest_connections_accepted_total", "counter", "Connections of the guest forwarded since the bridge started.", guests.map { ($0.1, String($0.0.accepted)) })
        metric("nfs_vsock_guest_connections_refused_total", "counter", "Connections of the guest refused by a limit since the bridge started.", guests.map { ($0.1, String($0.0.refused)) })
        metric("nfs_vsock_guest_received_bytes_total", "counter", "Bytes read from the guest.", guests.map { ($0.1, String($0.0.bytesFromGuest)) })
        metric("nfs_vsock_guest_sent_bytes_total", "counter", "Bytes sent to the guest.", guests.map { ($0.1, String($0.0.bytesToGuest)) })
        metric("nfs_vsock_guest_last_activity_seconds", "gauge", "The guest's last connection change or traffic, seconds since the epoch (0: none).", guests.map { ($0.1, String($0.0.lastActivity)) })
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
