import NFSAdmin

/// What `nfsd-control status` reports.
public struct NFSDStatus: Sendable, Equatable {
    public var mounted: Bool
    public var threads: Int
    public var versions: String
    public var listeners: [String]
    public var leaseTime: Int?
    public var graceTime: Int?

    /// The nfsd instance that serves bridged guests, in the bridge's
    /// network namespace (nil: there is none).
    public struct GuestNFSD: Sendable, Equatable {
        public var namespace: String
        public var threads: Int
        public var versions: String
        public var listeners: [String]
        /// The recorded guest block (nil: missing or unreadable record).
        public var guestBlock: String?
        /// Its max_connections (0: the kernel's default; nil: the kernel
        /// has no such file, or it is unreadable).
        public var maxConnections: Int?

        public init(namespace: String, threads: Int, versions: String, listeners: [String], guestBlock: String?, maxConnections: Int? = nil) {
            self.namespace = namespace
            self.threads = threads
            self.versions = versions
            self.listeners = listeners
            self.guestBlock = guestBlock
            self.maxConnections = maxConnections
        }
    }

    public var guestNFSD: GuestNFSD? = nil

    public init(kernel: NFSDKernel) {
        mounted = kernel.isMounted
        threads = kernel.threads
        versions = kernel.versions
        listeners = kernel.portlist
        leaseTime = kernel.integer("nfsv4leasetime")
        graceTime = kernel.integer("nfsv4gracetime")
        let namespace = BridgeNamespace(paths: kernel.paths)
        let guestKernel = NFSDKernel(paths: kernel.paths.bridgeInstance)
        if namespace.exists || guestKernel.isMounted {
            guestNFSD = GuestNFSD(namespace: namespace.pin, threads: guestKernel.threads, versions: guestKernel.versions,
                                  listeners: guestKernel.portlist, guestBlock: (try? namespace.guestBlock()).map { "\($0)" },
                                  maxConnections: guestKernel.integer("max_connections"))
        }
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
            return "nfsd: not available (/proc/fs/nfsd is not mounted)\n" + (guestNFSD.map(guestNFSDText) ?? "") + bridgeText
        }
        var out = ""
        out += "state:      \(threads > 0 ? "running" : "stopped")\n"
        out += "threads:    \(threads)\n"
        out += "versions:   \(versions.isEmpty ? "-" : versions)\n"
        out += "listeners:  \(listeners.isEmpty ? "none" : listeners.joined(separator: ", "))\n"
        out += "lease time: \(leaseTime.map { "\($0) s" } ?? "-")\n"
        out += "grace time: \(graceTime.map { "\($0) s" } ?? "-")\n"
        out += "vsock:      \(vsockState)\n"
        if let guestNFSD { out += guestNFSDText(guestNFSD) }
        // The bridge is worth showing when it runs or left a stale status.
        if let bridge, bridge.isWorthShowing { out += bridge.text }
        return out
    }

    var guestNFSDJSON: String {
        guard let guest = guestNFSD else { return "null" }
        let quote = JSONText.quote
        return "{\"namespace\": \(quote(guest.namespace)), \"threads\": \(guest.threads), \"versions\": \(quote(guest.versions)), "
            + "\"listeners\": [\(guest.listeners.map(quote).joined(separator: ", "))], "
            + "\"guestBlock\": \(guest.guestBlock.map(quote) ?? "null"), \"maxConnections\": \(guest.maxConnections.map(String.init) ?? "null")}"
    }

    /// "guest nfsd: 8 threads in network namespace nfs-vsock (...), versions ..., listeners ..., guests from ..."
    func guestNFSDText(_ guest: GuestNFSD) -> String {
        let state = guest.threads > 0 ? "\(guest.threads) threads" : "stopped"
        return "guest nfsd: \(state) in network namespace \(BridgeNamespace.name) (\(guest.namespace)), "
            + "versions \(guest.versions.isEmpty ? "-" : guest.versions), "
            + "listeners \(guest.listeners.isEmpty ? "none" : guest.listeners.joined(separator: ", ")), "
            + "guests from \(guest.guestBlock ?? "? (no block recorded)"), "
            + "max_connections \(guest.maxConnections.map { $0 == 0 ? "0 (the kernel's default)" : String($0) } ?? "none (not in this kernel)")\n"
    }

    public var json: String {
        let quote = JSONText.quote
        let listenerList = listeners.map(quote).joined(separator: ", ")
        return """
            {"available": \(mounted), "running": \(threads > 0), "threads": \(threads), "versions": \(quote(versions)), \
            "listeners": [\(listenerList)], "leaseTime": \(leaseTime.map(String.init) ?? "null"), \
            "graceTime": \(graceTime.map(String.init) ?? "null"), \
            "vsock": {"kernelPorts": [\(kernelVsockPorts.map(String.init).joined(separator: ", "))], "state": \(quote(vsockState)), \
            "guestNFSD": \(guestNFSDJSON), "bridge": \(bridge?.json ?? "null")}}

            """
    }
}

