/// The etab line format, byte-compatible with nfs-utils 2.6
/// (support/nfs/exports.c putexportent).
public enum ETabFormat {
    /// Control characters, '"', '\', '#' and white space become `\ooo`.
    public static func escapePath(_ path: String) -> String {
        OctalEscape.escape(path) { byte in
            byte < 0x20 || byte == 0x7F || byte == 0x22 || byte == 0x5C || byte == 0x23 || byte == 0x20
        }
    }

    /// The option list nfs-utils writes for an export, without parentheses.
    public static func options(_ options: ExportOptions, features: ExportFeatures) -> String {
        let flags = options.flags
        var out = ""
        out.reserveCapacity(200)
        out += flags.contains(.readOnly) ? "ro," : "rw,"
        out += flags.contains(.async) ? "async," : "sync,"
        out += flags.contains(.gatheredWrites) ? "wdelay," : "no_wdelay,"
        out += flags.contains(.noHide) ? "nohide," : "hide,"
        out += flags.contains(.crossMount) ? "crossmnt," : "nocrossmnt,"
        out += flags.contains(.insecurePort) ? "insecure," : "secure,"
        out += flags.contains(.rootSquash) ? "root_squash," : "no_root_squash,"
        out += flags.contains(.allSquash) ? "all_squash," : "no_all_squash,"
        out += flags.contains(.noSubtreeCheck) ? "no_subtree_check," : "subtree_check,"
        out += flags.contains(.noAuthNLM) ? "insecure_locks," : "secure_locks,"
        out += flags.contains(.noACL) ? "no_acl," : "acl,"
        if flags.contains(.noReaddirPlus) { out += "nordirplus," }
        if flags.contains(.securityLabel) { out += "security_label," }
        out += flags.contains(.pnfs) ? "pnfs," : "no_pnfs,"
        if flags.contains(.fsid), let number = options.fsidNumber {
            out += "fsid=\(Int32(bitPattern: number)),"
        }
        if let uuid = options.fsidUUID { out += "fsid=\(uuid)," }
        if options.reexport != .none { out += "reexport=\(options.reexport.rawValue)," }
        if let mountpoint = options.mountpoint {
            out += mountpoint.isEmpty ? "mountpoint," : "mountpoint=\(mountpoint),"
        }
        switch options.locations {
        case .refer(let value)?: out += "refer=\(value),"
        case .replicas(let value)?: out += "replicas=\(value),"
        case nil: break
        }
        out += "anonuid=\(options.anonUID),anongid=\(options.anonGID)"
        out += securityGroups(options, features: features)
        if !options.transportSecurity.isEmpty {
            out += ",xprtsec=" + options.transportSecurity.map(\.rawValue).joined(separator: ":")
        }
        return out
    }

    /// `,sec=a:b,<per-flavor flags>` groups: consecutive flavors with equal
    /// flags share a group.
    static func securityGroups(_ options: ExportOptions, features: ExportFeatures) -> String {
        let entries = options.effectiveSecurity
        let mask = features.perFlavorFlags
        var out = ""
        var index = 0
        while index < entries.count {
            let first = entries[index]
            out += ",sec=" + first.flavor.name
            var next = index + 1
            while next < entries.count && entries[next].flags == first.flags {
                out += ":" + entries[next].flavor.name
                next += 1
            }
            if mask.contains(.readOnly) { out += first.flags.contains(.readOnly) ? ",ro" : ",rw" }
            if mask.contains(.insecurePort) { out += first.flags.contains(.insecurePort) ? ",insecure" : ",secure" }
            if mask.contains(.rootSquash) { out += first.flags.contains(.rootSquash) ? ",root_squash" : ",no_root_squash" }
            if mask.contains(.allSquash) { out += first.flags.contains(.allSquash) ? ",all_squash" : ",no_all_squash" }
            index = next
        }
        return out
    }

    /// One etab line, with its newline.
    public static func line(_ entry: ExportEntry, features: ExportFeatures) -> String {
        escapePath(entry.path) + "\t" + entry.clientName + "(" + options(entry.options, features: features) + ")\n"
    }

    /// The whole etab text for a table.
    public static func text(_ entries: [ExportEntry], features: ExportFeatures) -> String {
        String(decoding: bytes(entries, features: features), as: UTF8.self)
    }

    /// The whole etab as the bytes written to the file, built once: no
    /// String grown by doubling and copied again into bytes.
    public static func bytes<Entries: Sequence<ExportEntry>>(_ entries: Entries, features: ExportFeatures) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(entries.underestimatedCount * 96)
        for entry in entries { out.append(contentsOf: line(entry, features: features).utf8) }
        return out
    }
}

extension ETabFormat {
    /// The security groups as `exportfs -v` shows them: every per-flavor
    /// flag spelled out.
    public static func securityGroupsForListing(_ options: ExportOptions) -> String {
        securityGroups(options, features: ExportFeatures(flags: .oldFlags, perFlavorFlags: .perFlavor))
    }
}
