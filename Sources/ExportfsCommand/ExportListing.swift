import NFSExports
import NFSAdmin

/// `exportfs`, `exportfs -v` and `exportfs -s` listings, laid out as
/// nfs-utils lays them out.
enum ExportListing {
    static func render(_ table: ExportTable, verbose: Bool, exportsFormat: Bool) -> String {
        var out = ""
        for entry in table.entries {
            let options = entry.options
            let host: String
            if entry.client == .anonymous {
                host = exportsFormat ? "*" : "<world>"
            } else {
                host = entry.clientName
            }
            let path = entry.path
            if exportsFormat {
                out += CacheText.word(path) + " " + host
            } else if path.utf8.count > 14 {
                out += path + "\n\t\t" + host
            } else {
                out += path + String(repeating: " ", count: 14 - path.utf8.count) + "\t" + host
            }
            if !verbose && !exportsFormat {
                out += "\n"
                continue
            }
            var list: [String] = []
            let flags = options.flags
            list.append(flags.contains(.async) ? "async" : "sync")
            list.append(flags.contains(.gatheredWrites) ? "wdelay" : "no_wdelay")
            list.append(flags.contains(.noHide) ? "nohide" : "hide")
            if flags.contains(.crossMount) { list.append("crossmnt") }
            if flags.contains(.noSubtreeCheck) { list.append("no_subtree_check") }
            if flags.contains(.noAuthNLM) { list.append("insecure_locks") }
            if flags.contains(.noReaddirPlus) { list.append("nordirplus") }
            if flags.contains(.securityLabel) { list.append("security_label") }
            if flags.contains(.noACL) { list.append("no_acl") }
            if flags.contains(.pnfs) { list.append("pnfs") }
            if flags.contains(.fsid), let number = options.fsidNumber { list.append("fsid=\(Int32(bitPattern: number))") }
            if let uuid = options.fsidUUID { list.append("fsid=\(uuid)") }
            if let mountpoint = options.mountpoint { list.append(mountpoint.isEmpty ? "mountpoint" : "mountpoint=\(mountpoint)") }
            if options.anonUID != 65534 { list.append("anonuid=\(options.anonUID)") }
            if options.anonGID != 65534 { list.append("anongid=\(options.anonGID)") }
            switch options.locations {
            case .refer(let value)?: list.append("refer=\(value)")
            case .replicas(let value)?: list.append("replicas=\(value)")
            case nil: break
            }
            out += "(" + list.joined(separator: ",")
            // The per-flavor groups, including the flags the kernel checks
            // per flavor, always shown with the full mask as nfs-utils does
            // when the kernel supports it.
            out += ETabFormat.securityGroupsForListing(options)
            if !options.transportSecurity.isEmpty {
                out += ",xprtsec=" + options.transportSecurity.map(\.rawValue).joined(separator: ":")
            }
            out += ")\n"
        }
        return out
    }
}

/// `exportfs --json`: the table for management tools.
enum ExportTableJSON {
    static func render(_ table: ExportTable, features: ExportFeatures) -> String {
        var out = "[\n"
        for (index, entry) in table.entries.enumerated() {
            let options = entry.options
            var fields: [String] = []
            fields.append("\"path\": \(JSONText.quote(entry.path))")
            fields.append("\"client\": \(JSONText.quote(entry.clientName))")
            fields.append("\"clientKind\": \(JSONText.quote(kindName(entry.client)))")
            switch entry.client {
            case .vsock(let cid):
                fields.append("\"vsockCIDs\": {\"first\": \(cid), \"last\": \(cid)}")
            case .vsockRange(let first, let last):
                fields.append("\"vsockCIDs\": {\"first\": \(first), \"last\": \(last)}")
            case .vsockAny:
                fields.append("\"vsockCIDs\": {\"first\": 3, \"last\": \(ClientSpec.maxCID)}")
            default:
                break
            }
            fields.append("\"readOnly\": \(options.isReadOnly)")
            fields.append("\"flags\": \(options.flags.rawValue)")
            fields.append("\"anonuid\": \(options.anonUID)")
            fields.append("\"anongid\": \(options.anonGID)")
            switch options.filesystemID {
            case .number(let number)?: fields.append("\"fsid\": \(number)")
            case .uuid(let uuid)?: fields.append("\"fsid\": \(JSONText.quote(uuid))")
            case nil: fields.append("\"fsid\": null")
            }
            let sec = options.effectiveSecurity.map { entry in
                "{\"flavor\": \(JSONText.quote(entry.flavor.name)), \"readOnly\": \(entry.flags.contains(.readOnly)), \"rootSquash\": \(entry.flags.contains(.rootSquash)), \"allSquash\": \(entry.flags.contains(.allSquash)), \"insecure\": \(entry.flags.contains(.insecurePort))}"
            }
            fields.append("\"sec\": [\(sec.joined(separator: ", "))]")
            fields.append("\"options\": \(JSONText.quote(ETabFormat.options(options, features: features)))")
            out += "  {" + fields.joined(separator: ", ") + "}" + (index + 1 < table.entries.count ? "," : "") + "\n"
        }
        return out + "]\n"
    }

    static func kindName(_ client: ClientSpec) -> String {
        switch client {
        case .host: "host"
        case .address: "address"
        case .network, .maskedNetwork: "network"
        case .wildcard: "wildcard"
        case .netgroup: "netgroup"
        case .anonymous: "anonymous"
        case .gss: "gss"
        case .vsock: "vsock"
        case .vsockRange: "vsock-range"
        case .vsockAny: "vsock-any"
        }
    }
}
