#if canImport(Glibc)
import Glibc
#endif
import CLinux
import NFSExports

/// What is left of a guest that went away (VM destroyed, migrated, its CID
/// about to be given to a new VM), released on the bridge path: the
/// bridge's connections of its CID, the NFSv4 clients (opens, locks,
/// delegations) and NLM locks the guests' nfsd holds for its loopback
/// address. Run by `nfsd-control release-guest CID` (the management
/// layer's hook) and by `exportfs -u` of a guest's last export.
///
/// The guest is known by the address the bridge gives its CID in the
/// recorded guest block; the guests' nfsd's files act on that nfsd's
/// network namespace whichever namespace writes them, so nothing here
/// enters it. Cached access needs no flush: the identity is the CID, and
/// a new VM with the same CID is granted what the exports file grants
/// that CID.
public struct GuestRelease: Sendable {
    public var paths: SystemPaths
    /// How long to wait for the bridge to close the connections.
    public var wait: Duration = .seconds(5)

    public init(paths: SystemPaths) { self.paths = paths }

    /// The signal the bridge takes a release on (a real-time signal whose
    /// value is the CID; only root's are honoured).
    public static var signal: Int32 { nfsvsock_release_signal() }

    public struct Report: Sendable, Equatable {
        public var cid: VsockCID
        public var address: String
        /// The bridge asked to close the guest's connections (nil: no
        /// bridge runs), how many it had, and how many are still open.
        public var bridgePID: Int32?
        public var connectionsBefore = 0
        public var connectionsLeft = 0
        /// NFSv4 clients expired: "clientid name" as the kernel shows them.
        public var expiredClients: [String] = []
        public var unlockedNLM = false
        /// Steps that failed; the others were still taken.
        public var problems: [String] = []

        public var text: String {
            var parts: [String] = []
            if let bridgePID {
                parts.append("closed \(connectionsBefore - connectionsLeft) of its \(connectionsBefore) bridge connection(s) (nfs-vsock-bridge pid \(bridgePID))"
                             + (connectionsLeft > 0 ? "; \(connectionsLeft) still open: the guest reconnected, so it still runs" : ""))
            } else {
                parts.append("no bridge runs")
            }
            parts.append(expiredClients.isEmpty ? "no NFSv4 client of its address"
                         : "expired \(expiredClients.count) NFSv4 client(s) (\(expiredClients.joined(separator: "; "))): their opens, locks and delegations are gone")
            if unlockedNLM { parts.append("released its NLM locks") }
            return "guest \(cid) (\(address)): " + parts.joined(separator: "; ")
                + problems.map { "; failed: \($0)" }.joined()
        }

        public var json: String {
            "{\"cid\": \(cid), \"address\": \(JSONText.quote(address)), \"bridgePID\": \(bridgePID.map(String.init) ?? "null"), "
                + "\"connectionsBefore\": \(connectionsBefore), \"connectionsLeft\": \(connectionsLeft), "
                + "\"expiredClients\": [\(expiredClients.map(JSONText.quote).joined(separator: ", "))], "
                + "\"unlockedNLM\": \(unlockedNLM), \"problems\": [\(problems.map(JSONText.quote).joined(separator: ", "))]}\n"
        }
    }

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case noBridgePath(String)
        case noAddress(VsockCID, String)

        public var description: String {
            switch self {
            case .noBridgePath(let why):
                return "vsock is not served through the bridge here (\(why)): no guest state to release"
            case .noAddress(let cid, let block):
                return "CID \(cid) has no address in the guest block \(block): no guest of that CID can have state here"
            }
        }
    }

    public func release(cid: VsockCID) throws(Problem) -> Report {
        let namespace = BridgeNamespace(paths: paths)
        let block: VsockLoopbackMapping
        do {
            block = try namespace.guestBlock()
        } catch {
            throw .noBridgePath("\(error)")
        }
        guard let address = block.address(of: cid) else { throw .noAddress(cid, "\(block)") }
        var report = Report(cid: cid, address: "\(address)")
        closeBridgeConnections(of: cid, into: &report)
        let nfsd = paths.bridgeInstance.procNFSD
        for client in Self.clients(under: nfsd + "/clients", of: "\(address)") {
            do {
                try FileSystem.writeMessage("expire\n", to: client.directory + "/ctl")
                report.expiredClients.append(client.label)
            } catch {
                report.problems.append("expiring NFSv4 client \(client.label): \(error)")
            }
        }
        if FileSystem.exists(nfsd + "/unlock_ip") {
            do {
                try FileSystem.writeMessage("\(address)\n", to: nfsd + "/unlock_ip")
                report.unlockedNLM = true
            } catch {
                report.problems.append("releasing NLM locks: \(error)")
            }
        }
        return report
    }

    /// Asks the bridge (the one its status file names, checked against
    /// its start time) to close the CID's connections, then waits for its
    /// status to show them closed.
    func closeBridgeConnections(of cid: VsockCID, into report: inout Report) {
        let file = BridgeStatusFile(paths: paths)
        guard case .running(let status) = file.read() else { return }
        report.bridgePID = status.pid
        report.connectionsBefore = status.guests.first { $0.cid == cid }?.open ?? 0
        report.connectionsLeft = report.connectionsBefore
        guard report.connectionsBefore > 0 else { return }
        guard ProcessIdentity.startTime(of: status.pid) == status.processStart,
              nfsvsock_sigqueue_int(status.pid, Self.signal, Int32(bitPattern: cid)) == 0 else {
            report.problems.append("asking nfs-vsock-bridge (pid \(status.pid)) to close the connections: \(SystemError.describe(errno))")
            return
        }
        let deadline = ContinuousClock.now + wait
        while ContinuousClock.now < deadline {
            usleep(100_000)
            guard case .running(let now) = file.read() else { report.connectionsLeft = 0; return }
            report.connectionsLeft = now.guests.first { $0.cid == cid }?.open ?? 0
            if report.connectionsLeft == 0 { return }
        }
    }

    struct Client: Equatable {
        var directory: String
        var label: String
    }

    /// The NFSv4 clients of nfsd's clients/ directory whose address is
    /// `address` (any port).
    static func clients(under directory: String, of address: String) -> [Client] {
        guard let names = (try? FileSystem.directoryEntries(directory, directories: true)) ?? nil else { return [] }
        var found: [Client] = []
        for name in names {
            guard let bytes = try? FileSystem.readIfExists(directory + "/" + name + "/info") else { continue }
            let info = ClientInfo(String(decoding: bytes, as: UTF8.self))
            if info.host == address {
                found.append(Client(directory: directory + "/" + name, label: "\(info.clientID ?? name) \(info.name ?? "?")"))
            }
        }
        return found.sorted { $0.directory < $1.directory }
    }
}

/// nfsd's clients/<id>/info: "key: value" lines; the address is quoted
/// "host:port" (IPv6 hosts in brackets).
struct ClientInfo: Equatable {
    var clientID: String?
    var name: String?
    var host: String?

    init(clientID: String?, name: String?, host: String?) {
        self.clientID = clientID
        self.name = name
        self.host = host
    }

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon]
            var value = line[line.index(after: colon)...].drop { $0 == " " }
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = value.dropFirst().dropLast() }
            switch key {
            case "clientid": clientID = String(value)
            case "name": name = "\"\(value)\""
            case "address":
                if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
                    host = String(value[value.index(after: value.startIndex)..<close])
                } else if let last = value.lastIndex(of: ":") {
                    host = String(value[..<last])
                } else {
                    host = String(value)
                }
            default: break
            }
        }
    }
}
