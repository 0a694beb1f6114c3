#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin

/// Brings the kernel NFS server up and down in the order the kernel needs:
/// versions, then lease and grace times, then listeners, then threads.
/// Support for a transport is found by trying it; a failed start undoes
/// what this run set up.
public struct NFSDController {
    public var kernel: NFSDKernel
    public var log: (String) -> Void
    /// Whether this process may start a server (root: it writes
    /// /proc/fs/nfsd and binds privileged ports). Tests against a fake
    /// /proc under a moved root pass their own.
    public var isPrivileged: () -> Bool

    public init(kernel: NFSDKernel, log: @escaping (String) -> Void,
                isPrivileged: @escaping () -> Bool = { geteuid() == 0 }) {
        self.kernel = kernel
        self.log = log
        self.isPrivileged = isPrivileged
    }

    /// What a start did.
    public struct Report: Sendable, Equatable {
        public var listeners: [String] = []
        public var threads = 0
        public var vsockServedByKernel: [UInt32] = []
        /// vsock ports the kernel refused, to be served by the bridge.
        public var vsockForBridge: [UInt32] = []
        public var bridgeListener: String? = nil
        /// The nfsd instance in the bridge's network namespace, when the
        /// bridge serves vsock.
        public var bridgeInstance: BridgeInstance? = nil
        /// The guests' nfsd was already running and was kept (not started
        /// by this run).
        public var bridgeInstanceKept = false
        public var alreadyRunning = false
        /// On a running server: what this run changed, and what it left
        /// as it was (each a short phrase for rpc.nfsd to print).
        public var changed: [String] = []
        public var left: [String] = []
    }

    /// The nfsd instance that serves bridged guests, alone in the
    /// bridge's network namespace.
    public struct BridgeInstance: Sendable, Equatable {
        public var namespace: String
        public var listener: String
        public var versions: [NFSVersion]
        public var threads: Int
        public var guestBlock: String
        /// The bridge's cap its max_connections was derived from.
        public var bridgeMaxConnections: Int
        /// What was written to its max_connections; nil: the kernel has
        /// no such file (newer kernels limit only connections that have
        /// presented no file handle, to 64, and take no setting).
        public var maxConnections: Int?

        /// How rpc.nfsd reports the limit.
        public var connectionLimit: String {
            guard let maxConnections else {
                return "no max_connections in this kernel (it closes only connections that have presented no file handle, past 64)"
            }
            return "max_connections \(maxConnections) (the bridge's max-connections \(bridgeMaxConnections) + \(NFSDSettings.closingMargin))"
        }
    }

    public func start(_ settings: NFSDSettings) throws(NFSDError) -> Report {
        do {
            try settings.validate()
        } catch {
            throw .badSettings(error.message)
        }
        guard isPrivileged() else { throw .notRoot }
        for step in try kernel.ensureMounted() { log(step) }

        if settings.threads == 0 {
            try stop()
            return Report()
        }

        let bridgeKernel = NFSDKernel(paths: kernel.paths.bridgeInstance)
        let bridgeRunning = BridgeNamespace(paths: kernel.paths).exists && bridgeKernel.threads > 0
        if kernel.threads > 0 || bridgeRunning {
            return try reconfigure(settings, bridgeRunning: bridgeRunning)
        }

        var report = Report()
        let wantedVersions = NFSDProcText.versions(settings)
        // Not running: remember what we change, to put it back on failure.
        let saved = ["versions", "nfsv4leasetime", "nfsv4gracetime"].compactMap { name in
            kernel.read(name).map { (name, $0.trimmingCharacters(in: " \n")) }
        }
        do throws(NFSDError) {
            do {
                try kernel.write("versions", wantedVersions)
            } catch {
                throw error.errno == EBUSY ? NFSDError.versionsBusy(error) : NFSDError.system(error)
            }
            log("versions: \(wantedVersions.trimmingCharacters(in: " \n"))")
            if let lease = settings.leaseTime {
                try writeOrThrow("nfsv4leasetime", NFSDProcText.number(lease))
            }
            if let grace = settings.graceTime {
                try writeOrThrow("nfsv4gracetime", NFSDProcText.number(grace))
            }
            // vsock first: on a kernel without the transport nothing else
            // has been handed over yet when it is refused.
            for port in settings.vsockPorts {
                try handOverVsock(port: port, settings: settings, into: &report)
            }
            var transports: [ListenerSocket.Transport] = []
            if settings.tcp { transports.append(.tcp) }
            if settings.udp { transports.append(.udp) }
            for host in settings.listenHosts {
                for transport in transports {
                    report.listeners += try handOver(host: host, port: settings.port, transport: transport)
                }
            }
            // Threads on an nfsd without listeners would make the kernel
            // open TCP and UDP 2049 on every address itself: a server
            // asked for vsock only (-T -U --vsock) runs no host instance.
            if !report.listeners.isEmpty {
                try writeThreads(settings.threads)
                report.threads = settings.threads
                log("started \(settings.threads) threads")
            }
            if !report.vsockForBridge.isEmpty {
                let instance = try startBridgeInstance(settings)
                report.bridgeInstance = instance
                report.bridgeListener = instance.listener
            }
            return report
        } catch {
            rollBack(saved: saved)
            stopBridgeInstance()
            throw error
        }
    }

    /// rpc.nfsd on a running server (the host's nfsd, the guests' or
    /// both), as nfs-utils' rpc.nfsd treats one: nothing is stopped or
    /// restarted, so no client sees a new grace period. It adds the
    /// listeners asked for that the server lacks (TCP, UDP, vsock on the
    /// kernel path, or the guests' nfsd on the bridge path), sets the
    /// thread count, and writes versions only when they are named (on the
    /// command line or in nfs.conf); the kernel's EBUSY then reaches the
    /// administrator. Listeners already there are left, and said so.
    func reconfigure(_ settings: NFSDSettings, bridgeRunning: Bool) throws(NFSDError) -> Report {
        var report = Report()
        report.alreadyRunning = true
        let hostThreads = kernel.threads
        let current = kernel.versions
        if settings.versions.isEmpty {
            report.left.append("versions \(current) (none named)")
        } else {
            let wanted = NFSDProcText.versions(settings)
            if Self.sameVersions(current, wanted) {
                report.left.append("versions \(current)")
            } else {
                do {
                    try kernel.write("versions", wanted)
                } catch {
                    throw error.errno == EBUSY ? .versionsBusy(error) : .system(error)
                }
                report.changed.append("versions \(current) -> \(kernel.versions)")
            }
        }
        for (name, file, value) in [("lease time", "nfsv4leasetime", settings.leaseTime), ("grace time", "nfsv4gracetime", settings.graceTime)] {
            guard let value, let now = kernel.integer(file), now != value else { continue }
            report.left.append("\(name) \(now) s (a running server keeps it; to have \(value) s: rpc.nfsd 0, then start it again)")
        }
        // vsock: on the bridge path the guests' nfsd is kept when it runs
        // (the bridge holds the vsock ports; rpc.nfsd decides about it).
        if bridgeRunning {
            if !settings.vsockPorts.isEmpty {
                report.vsockForBridge = settings.vsockPorts
                report.bridgeInstance = liveBridgeInstance(settings)
                report.bridgeInstanceKept = true
            }
        } else {
            for port in settings.vsockPorts {
                if try handOverVsock(port: port, settings: settings, into: &report) {
                    report.changed.append("listening on vsock:*:\(port) (kernel transport)")
                }
            }
        }
        var transports: [ListenerSocket.Transport] = []
        if settings.tcp { transports.append(.tcp) }
        if settings.udp { transports.append(.udp) }
        var added: [String] = []
        for host in settings.listenHosts {
            for transport in transports {
                do throws(NFSDError) {
                    added += try handOver(host: host, port: settings.port, transport: transport)
                } catch .listener(.system(_, let address, let error))
                            where error.errno == EADDRINUSE && kernel.portlist.contains("\(transport.rawValue) \(settings.port)") {
                    report.left.append("\(transport.rawValue) \(host == nil ? "*:\(settings.port)" : address) (nfsd already listens on \(transport.rawValue) port \(settings.port))")
                }
            }
        }
        report.changed += added.map { "listening on \($0)" }
        if hostThreads > 0 {
            if hostThreads != settings.threads {
                try writeThreads(settings.threads)
                report.changed.append("threads \(hostThreads) -> \(settings.threads)")
            } else {
                report.left.append("threads \(hostThreads)")
            }
            report.threads = settings.threads
        } else if !added.isEmpty {
            try writeThreads(settings.threads)
            report.threads = settings.threads
            report.changed.append("started \(settings.threads) threads")
        }
        report.listeners = kernel.portlist
        let bridgeKernel = NFSDKernel(paths: kernel.paths.bridgeInstance)
        if bridgeRunning {
            let threads = bridgeKernel.threads
            if threads != settings.threads {
                do {
                    try bridgeKernel.write("threads", NFSDProcText.number(settings.threads))
                } catch {
                    throw .system(error)
                }
                report.changed.append("threads of the nfsd for vsock guests \(threads) -> \(settings.threads)")
            }
            // A bridge reloaded with a higher max-connections needs room
            // here too; never lowered (nfsd would close connections).
            if let limit = bridgeKernel.integer("max_connections"), limit < settings.guestMaxConnections {
                do {
                    try bridgeKernel.write("max_connections", NFSDProcText.number(settings.guestMaxConnections))
                } catch {
                    throw .system(error)
                }
                report.changed.append("max_connections of the nfsd for vsock guests \(limit) -> \(settings.guestMaxConnections) (the bridge's max-connections \(settings.bridgeMaxConnections) + \(NFSDSettings.closingMargin))")
                report.bridgeInstance?.maxConnections = settings.guestMaxConnections
            }
        } else if !report.vsockForBridge.isEmpty {
            let instance = try startBridgeInstance(settings)
            report.bridgeInstance = instance
            report.bridgeListener = instance.listener
            report.changed.append("started the nfsd for vsock guests (tcp \(instance.listener) in namespace \(BridgeNamespace.name))")
        }
        return report
    }

    /// The running guests' nfsd as rpc.nfsd reports it: its listener from
    /// its portlist, its versions, threads, block and limit.
    func liveBridgeInstance(_ settings: NFSDSettings) -> BridgeInstance {
        let bridgeKernel = NFSDKernel(paths: kernel.paths.bridgeInstance)
        let namespace = BridgeNamespace(paths: kernel.paths)
        let port = bridgeKernel.portlist.lazy.compactMap { line -> String? in
            let fields = line.split(separator: " ")
            return fields.count == 2 && fields[0] == "tcp" ? String(fields[1]) : nil
        }.first ?? String(settings.port)
        let versions = NFSVersion.minorVersions.filter { bridgeKernel.versions.split(separator: " ").contains("+\($0.rawValue)") }
        let block = (try? FileSystem.readIfExists(kernel.paths.bridgeGuestBlock)).map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: " \n") }
        return BridgeInstance(namespace: namespace.pin, listener: "127.0.0.1:\(port)", versions: versions,
                              threads: bridgeKernel.threads, guestBlock: block ?? "\(settings.guestBlock)",
                              bridgeMaxConnections: settings.bridgeMaxConnections, maxConnections: bridgeKernel.integer("max_connections"))
    }

    /// `rpc.nfsd --vsock 0`: stops serving vsock and changes nothing else:
    /// the guests' nfsd and its namespace go (stop the bridge first), the
    /// host's nfsd and its IP clients stay. A vsock listener the kernel
    /// serves itself cannot be taken from a running server. Returns
    /// whether anything served vsock.
    public func stopVsock() throws(NFSDError) -> Bool {
        guard geteuid() == 0 else { throw .notRoot }
        if let listener = kernel.portlist.first(where: { $0.hasPrefix("vsock") }) {
            throw .vsockListenerStays(listener)
        }
        return stopBridgeInstance()
    }

    /// Starts the nfsd instance that serves bridged guests, in a new
    /// bridge namespace (a leftover one is stopped and replaced): NFSv4.1
    /// and 4.2 only, the host's lease and grace times, TCP on 127.0.0.1
    /// of that namespace, the host's thread count.
    func startBridgeInstance(_ settings: NFSDSettings) throws(NFSDError) -> BridgeInstance {
        guard let minors = settings.bridgeVersions else { throw .noBridgeVersions }
        let namespace = BridgeNamespace(paths: kernel.paths)
        if namespace.exists || FileSystem.exists(namespace.pin) {
            log("replacing the bridge's namespace left by an earlier server")
            stopBridgeInstance()
        }
        do {
            try namespace.create(block: settings.guestBlock)
        } catch {
            throw .bridgeNamespace(error)
        }
        log("created network namespace \(BridgeNamespace.name) (\(namespace.pin)), guests from \(settings.guestBlock)")
        let bridgeKernel = NFSDKernel(paths: kernel.paths.bridgeInstance)
        let listener = "127.0.0.1:\(settings.port)"
        var maxConnections: Int?
        try namespace.withEntered(enterFailed: { NFSDError.bridgeNamespace($0) }) { () throws(NFSDError) in
            do throws(SystemError) {
                try bridgeKernel.write("versions", NFSDProcText.bridgeVersions(minors))
                if let lease = settings.leaseTime { try bridgeKernel.write("nfsv4leasetime", NFSDProcText.number(lease)) }
                try bridgeKernel.write("nfsv4gracetime", NFSDProcText.number(Self.bridgeGraceTime(settings)))
            } catch {
                throw .system(error)
            }
            // Before the threads: each nfsd thread takes the limit from
            // here as it loops. Kernels that count only connections that
            // presented no file handle dropped the file (and the setting).
            do throws(SystemError) {
                try bridgeKernel.write("max_connections", NFSDProcText.number(settings.guestMaxConnections))
                maxConnections = settings.guestMaxConnections
            } catch where error.errno == ENOENT {
                maxConnections = nil
            } catch {
                throw .system(error)
            }
            // Opened here, so that the socket belongs to the namespace
            // (portlist refuses sockets of another namespace).
            let sockets: [ListenerSocket]
            do throws(ListenerError) {
                sockets = try ListenerSocket.inet(host: "127.0.0.1", port: settings.port, transport: .tcp)
            } catch {
                throw .listener(error)
            }
            defer { sockets.forEach { $0.close() } }
            for socket in sockets {
                do throws(SystemError) {
                    try bridgeKernel.write("portlist", NFSDProcText.portlist(fd: socket.fd))
                } catch {
                    throw .handOver(.tcp, "\(socket.name) in namespace \(BridgeNamespace.name)", error)
                }
            }
            do throws(SystemError) {
                try bridgeKernel.write("threads", NFSDProcText.number(settings.threads))
            } catch {
                throw .system(error)
            }
        }
        let instance = BridgeInstance(namespace: namespace.pin, listener: listener, versions: minors,
                                      threads: settings.threads, guestBlock: "\(settings.guestBlock)",
                                      bridgeMaxConnections: settings.bridgeMaxConnections, maxConnections: maxConnections)
        log("nfsd for vsock guests: \(settings.threads) threads, tcp \(listener) in namespace \(BridgeNamespace.name), NFSv\(minors.map(\.rawValue).joined(separator: ", ")), grace \(Self.bridgeGraceTime(settings)) s, \(instance.connectionLimit)")
        return instance
    }

    /// The grace period of the guests' nfsd: what the administrator set,
    /// else the kernel's minimum (10 s). The kernel keeps NFSv4 client
    /// tracking (legacy /var/lib/nfs/v4recovery, nfsdcltrack) for the
    /// initial network namespace; in another one it has none unless
    /// nfsdcld runs there, and without tracking no client can reclaim its
    /// state, so a longer grace period would only keep guests waiting
    /// (the kernel's default 90 s, and it refuses v4_end_grace there).
    public static func bridgeGraceTime(_ settings: NFSDSettings) -> Int {
        settings.graceTime ?? 10
    }

    /// Stops the bridge's nfsd instance and removes its namespace, if
    /// there is one. Stop the bridge first: its sockets keep the
    /// namespace alive.
    @discardableResult
    public func stopBridgeInstance() -> Bool {
        let namespace = BridgeNamespace(paths: kernel.paths)
        let bridgeKernel = NFSDKernel(paths: kernel.paths.bridgeInstance)
        // A pin file may outlive its namespace (unpinned elsewhere): it goes too.
        guard namespace.exists || bridgeKernel.isMounted || FileSystem.exists(namespace.pin) else { return false }
        // threads and versions act on the namespace of the filesystem
        // they belong to, whichever thread writes them.
        if bridgeKernel.isMounted && bridgeKernel.threads > 0 { try? bridgeKernel.write("threads", "0\n") }
        namespace.remove()
        log("stopped the nfsd for vsock guests and removed namespace \(BridgeNamespace.name)")
        return true
    }

    /// Hands a vsock listener on `port` to the kernel; where the kernel
    /// has no AF_VSOCK transport, leaves the port to the bridge (or fails
    /// with --no-vsock-bridge). Returns true when the kernel serves it.
    @discardableResult
    private func handOverVsock(port: UInt32, settings: NFSDSettings, into report: inout Report) throws(NFSDError) -> Bool {
        let socket: ListenerSocket
        do {
            socket = try ListenerSocket.vsock(port: port)
        } catch {
            throw NFSDError.listener(error)
        }
        defer { socket.close() }
        do {
            try kernel.write("portlist", NFSDProcText.portlist(fd: socket.fd))
        } catch {
            if [EAFNOSUPPORT, EPROTONOSUPPORT, EINVAL].contains(error.errno) {
                guard settings.vsockBridge else { throw NFSDError.noVsockTransport(port: port, error) }
                log("the kernel has no AF_VSOCK transport (\(error.errnoName)): vsock port \(port) goes through nfs-vsock-bridge")
                report.vsockForBridge.append(port)
                return false
            }
            throw NFSDError.handOver(.vsock, socket.name, error)
        }
        report.vsockServedByKernel.append(port)
        report.listeners.append(socket.name)
        log("listening on vsock:*:\(port) (kernel transport)")
        return true
    }

    /// Opens TCP or UDP listeners for `host` (nil: every address) and hands
    /// each to the kernel; returns their names.
    private func handOver(host: String?, port: UInt16, transport: ListenerSocket.Transport, purpose: String = "") throws(NFSDError) -> [String] {
        let sockets: [ListenerSocket]
        do {
            sockets = try ListenerSocket.inet(host: host, port: port, transport: transport)
        } catch {
            throw .listener(error)
        }
        defer { sockets.forEach { $0.close() } }
        var names: [String] = []
        for socket in sockets {
            do {
                try kernel.write("portlist", NFSDProcText.portlist(fd: socket.fd))
            } catch {
                throw .handOver(transport, socket.name, error)
            }
            names.append("\(transport.rawValue) \(socket.name)")
            log("listening on \(transport.rawValue) \(socket.name)\(purpose)")
        }
        return names
    }

    /// `rpc.nfsd 0`: stop every thread; the kernel drops the listeners.
    /// The bridge's instance and namespace go too.
    public func stop() throws(NFSDError) {
        stopBridgeInstance()
        guard kernel.isMounted else { return }
        try writeThreads(0)
        log("stopped the NFS server")
    }

    private func writeThreads(_ count: Int) throws(NFSDError) {
        try writeOrThrow("threads", NFSDProcText.number(count))
    }

    private func writeOrThrow(_ name: String, _ text: String) throws(NFSDError) {
        do {
            try kernel.write(name, text)
        } catch {
            throw .system(error)
        }
    }

    /// Tears down the server this run created and restores the settings.
    private func rollBack(saved: [(String, String)]) {
        try? kernel.write("threads", "0\n")
        for (name, value) in saved where !value.isEmpty {
            try? kernel.write(name, value + "\n")
        }
        if !kernel.portlist.isEmpty {
            log("warning: listeners remain after undoing the start: \(kernel.portlist.joined(separator: ", "))")
        }
    }

    /// Whether two version strings switch the same versions.
    static func sameVersions(_ current: String, _ wanted: String) -> Bool {
        func switches(_ text: String) -> [String: Bool] {
            var result: [String: Bool] = [:]
            for token in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                guard let sign = token.first, sign == "+" || sign == "-" else { continue }
                result[String(token.dropFirst())] = sign == "+"
            }
            return result
        }
        let have = switches(current)
        return switches(wanted).allSatisfy { key, value in have[key] == nil || have[key] == value }
    }
}
