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

    public init(kernel: NFSDKernel, log: @escaping (String) -> Void) {
        self.kernel = kernel
        self.log = log
    }

    /// What a start did.
    public struct Report: Sendable, Equatable {
        public var listeners: [String] = []
        public var threads = 0
        public var vsockServedByKernel: [UInt32] = []
        /// vsock ports the kernel refused, to be served by the bridge.
        public var vsockForBridge: [UInt32] = []
        public var bridgeListener: String? = nil
        public var alreadyRunning = false
    }

    public func start(_ settings: NFSDSettings) throws(NFSDError) -> Report {
        do {
            try settings.validate()
        } catch {
            throw .badSettings(error.message)
        }
        guard geteuid() == 0 else { throw .notRoot }
        for step in try kernel.ensureMounted() { log(step) }

        if settings.threads == 0 {
            try stop()
            return Report()
        }

        var report = Report()
        let wantedVersions = NFSDProcText.versions(settings)
        if kernel.threads > 0 {
            // Running: only the thread count may change. A version change
            // is attempted so the kernel's EBUSY reaches the administrator.
            report.alreadyRunning = true
            if !Self.sameVersions(kernel.versions, wantedVersions) {
                do {
                    try kernel.write("versions", wantedVersions)
                } catch {
                    throw error.errno == EBUSY ? .versionsBusy(error) : .system(error)
                }
            }
            log("nfsd is already running; setting \(settings.threads) threads")
            try writeThreads(settings.threads)
            report.threads = settings.threads
            report.listeners = kernel.portlist
            return report
        }

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
                        continue
                    }
                    throw NFSDError.handOver(.vsock, socket.name, error)
                }
                report.vsockServedByKernel.append(port)
                report.listeners.append(socket.name)
                log("listening on vsock:*:\(port) (kernel transport)")
            }
            let hosts: [String?] = settings.hosts.isEmpty ? [nil] : settings.hosts
            var transports: [ListenerSocket.Transport] = []
            if settings.tcp { transports.append(.tcp) }
            if settings.udp { transports.append(.udp) }
            for host in hosts {
                for transport in transports {
                    report.listeners += try handOver(host: host, port: settings.port, transport: transport)
                }
            }
            // The bridge reaches nfsd over loopback TCP: make sure such a
            // listener exists even for -T or -H without a loopback address.
            if !report.vsockForBridge.isEmpty {
                let coversLoopback = settings.tcp && (settings.hosts.isEmpty || settings.hosts.contains { $0 == "127.0.0.1" || $0 == "localhost" })
                if !coversLoopback {
                    report.listeners += try handOver(host: "127.0.0.1", port: settings.port, transport: .tcp, purpose: " for the vsock bridge")
                }
                report.bridgeListener = "127.0.0.1:\(settings.port)"
            }
            try writeThreads(settings.threads)
            report.threads = settings.threads
            log("started \(settings.threads) threads")
            return report
        } catch {
            rollBack(saved: saved)
            throw error
        }
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
    public func stop() throws(NFSDError) {
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
