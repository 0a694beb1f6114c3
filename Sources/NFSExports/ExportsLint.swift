/// Warnings about entries that parse but probably do not say what the
/// administrator meant. Never errors: nfs-utils accepts all of these.
enum ExportsLint {
    static func check(_ entry: ExportEntry, written: [(name: String, location: SourceLocation)]) -> [Diagnostic] {
        var warnings: [Diagnostic] = []
        let options = entry.options

        // Conflicting switches in one list: the last one wins, as in nfs-utils.
        var seen: [UInt32: (name: String, set: Bool)] = [:]
        for (name, location) in written {
            if name.hasPrefix("sec=") {
                // Options after a sec= clause legitimately repeat per flavor.
                seen = [:]
                continue
            }
            guard let meaning = ExportOptionsParser.flagOptions[name] else { continue }
            if let earlier = seen[meaning.flag.rawValue], earlier.set != meaning.set {
                warnings.append(Diagnostic(.warning, location,
                                           "\"\(earlier.name)\" and \"\(name)\" conflict for \(entry.displayName); the last one (\(name)) wins",
                                           hint: "keep only the one you mean"))
            }
            seen[meaning.flag.rawValue] = (name, meaning.set)
        }

        switch entry.client {
        case .anonymous, .wildcard("*"):
            if !options.flags.contains(.readOnly) && !options.flags.contains(.rootSquash) && !options.flags.contains(.allSquash) {
                warnings.append(Diagnostic(.warning, entry.location,
                                           "\(entry.path) is exported read-write to every IP client with no_root_squash: any host can act as root on it",
                                           hint: "name the clients, or drop no_root_squash"))
            }
        case .maskedNetwork(_, let mask):
            warnings.append(Diagnostic(.warning, entry.location,
                                       "netmask \(IPAddress.v4(mask)) of \(entry.clientName) is not contiguous; addresses are matched bit by bit",
                                       hint: "use a prefix length such as /24 unless you mean exactly this"))
        case .vsock(let cid):
            warnings += reservedCIDWarnings(first: cid, last: cid, entry: entry)
        case .vsockRange(let first, let last):
            warnings += reservedCIDWarnings(first: first, last: last, entry: entry)
        default:
            break
        }
        if entry.client.isVsock, let secure = written.last(where: { $0.name == "secure" }) {
            warnings.append(Diagnostic(.warning, secure.location,
                                       "\"secure\" on the vsock client \(entry.clientName) is enforced only by the vsock bridge (guest source port below 1024); a kernel vsock transport does not check it",
                                       hint: "use insecure if guests connect from unprivileged ports"))
        }
        return warnings
    }

    private static func reservedCIDWarnings(first: VsockCID, last: VsockCID, entry: ExportEntry) -> [Diagnostic] {
        let names: [VsockCID: String] = [
            0: "the hypervisor, which never connects",
            1: "the local loopback transport: every process and container on this host can connect as CID 1",
            2: "the host itself (seen only when this host is a VM)",
        ]
        if first == last {
            guard let name = names[first] else { return [] }
            return [Diagnostic(.warning, entry.location,
                               "vsock CID \(first) is \(name); \(entry.clientName) grants \(entry.path) to it",
                               hint: "guests have CIDs 3 and up; name CID \(first) only for tests on this host")]
        }
        guard first < ClientSpec.firstGuestCID else { return [] }
        return [Diagnostic(.warning, entry.location,
                           "\(entry.clientName) matches guests only (CIDs 3 and up): CIDs \(first)-\(min(last, ClientSpec.firstGuestCID - 1)) are not guests and are never matched by a range",
                           hint: "start the range at 3; name vsock:1 or vsock:2 explicitly if you mean them")]
    }
}
