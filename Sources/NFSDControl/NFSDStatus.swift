import NFSAdmin

/// What `nfsd-control status` reports.
public struct NFSDStatus: Sendable, Equatable {
    public var mounted: Bool
    public var threads: Int
    public var versions: String
    public var listeners: [String]
    public var leaseTime: Int?
    public var graceTime: Int?

    public init(kernel: NFSDKernel) {
        mounted = kernel.isMounted
        threads = kernel.threads
        versions = kernel.versions
        listeners = kernel.portlist
        leaseTime = kernel.read("nfsv4leasetime").flatMap { Int($0.trimmingCharacters(in: " \n")) }
        graceTime = kernel.read("nfsv4gracetime").flatMap { Int($0.trimmingCharacters(in: " \n")) }
    }

    public init(mounted: Bool, threads: Int, versions: String, listeners: [String], leaseTime: Int?, graceTime: Int?) {
        self.mounted = mounted
        self.threads = threads
        self.versions = versions
        self.listeners = listeners
        self.leaseTime = leaseTime
        self.graceTime = graceTime
    }

    /// vsock ports the kernel itself listens on ("vsock 2049" lines).
    public var kernelVsockPorts: [UInt32] {
        listeners.compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, parts[0] == "vsock" else { return nil }
            return UInt32(parts[1])
        }
    }

    /// The bridge started by rpc.nfsd, if it runs.
    public var bridgePID: Int32? = nil

    /// What the bridge published (nil: not looked at).
    public var bridge: BridgeStatusReport? = nil {
        didSet { if let pid = bridge?.runningPID { bridgePID = pid } }
    }

    public var vsockState: String {
        if !kernelVsockPorts.isEmpty {
            return "served by the kernel on port " + kernelVsockPorts.map(String.init).joined(separator: ", ")
        }
        if let bridgePID { return "served by nfs-vsock-bridge (pid \(bridgePID))" }
        return "not served"
    }

    public var text: String {
        guard mounted else {
            // A bridge may outlive the server (or run before it): still show it.
            let bridgeText = bridge.map { $0.isWorthShowing ? $0.text : "" } ?? ""
            return "nfsd: not available (/proc/fs/nfsd is not mounted)\n" + bridgeText
        }
        var out = ""
        out += "state:      \(threads > 0 ? "running" : "stopped")\n"
        out += "threads:    \(threads)\n"
        out += "versions:   \(versions.isEmpty ? "-" : versions)\n"
        out += "listeners:  \(listeners.isEmpty ? "none" : listeners.joined(separator: ", "))\n"
        out += "lease time: \(leaseTime.map { "\($0) s" } ?? "-")\n"
        out += "grace time: \(graceTime.map { "\($0) s" } ?? "-")\n"
        out += "vsock:      \(vsockState)\n"
        // The bridge is worth showing when it runs or left a stale status.
        if let bridge, bridge.isWorthShowing { out += bridge.text }
        return out
    }

    public var json: String {
        let quote = JSONText.quote
        let listenerList = listeners.map(quote).joined(separator: ", ")
        return """
            {"available": \(mounted), "running": \(threads > 0), "threads": \(threads), "versions": \(quote(versions)), \
            "listeners": [\(listenerList)], "leaseTime": \(leaseTime.map(String.init) ?? "null"), \
            "graceTime": \(graceTime.map(String.init) ?? "null"), \
            "vsock": {"kernelPorts": [\(kernelVsockPorts.map(String.init).joined(separator: ", "))], "state": \(quote(vsockState)), \
            "bridge": \(bridge?.json ?? "null")}}

            """
    }
}

