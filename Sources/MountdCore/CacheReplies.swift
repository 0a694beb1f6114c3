import NFSExports

/// Reply lines for the kernel's cache channels, each ending in "\n".
public enum CacheReply {
    /// nfs-utils' default cache lifetime.
    public static let ttl = 1800
    /// Filehandle answers never expire on their own.
    public static let forever = 0x7fff_ffff

    public static func authUnixIP(_ request: AuthUnixIPRequest, expiry: Int, domain: String?) -> String {
        var line = CacheText.word(request.serviceClass) + " " + CacheText.word(request.addressText) + " \(expiry)"
        if let domain { line += " " + CacheText.word(domain) }
        return line + "\n"
    }

    /// A negative export answer: the client may not use the path.
    public static func exportDenied(domain: String, path: String, expiry: Int) -> String {
        CacheText.word(domain) + " " + CacheText.word(path) + " \(expiry)\n"
    }

    /// A positive export answer.
    public static func export(domain: String, path: String, expiry: Int, export: ExportAnswer) -> String {
        var words = [CacheText.word(domain), CacheText.word(path), "\(expiry)",
                     "\(export.flags.rawValue)", "\(export.anonUID)", "\(export.anonGID)", "\(Int32(bitPattern: export.fsid))"]
        if let locations = export.locations {
            words.append("fsloc")
            words.append("\(locations.servers.count)")
            for server in locations.servers {
                words.append(CacheText.word(server.hosts))
                words.append(CacheText.word(server.path))
            }
            words.append(locations.migrated ? "1" : "0")
        }
        if !export.security.isEmpty {
            words.append("secinfo")
            words.append("\(export.security.count)")
            for entry in export.security {
                words.append("\(entry.flavor)")
                words.append("\(entry.flags.rawValue)")
            }
        }
        if let uuid = export.uuid {
            words.append("uuid")
            words.append(CacheText.hexWord(uuid))
        }
        if !export.transportSecurity.isEmpty {
            words.append("xprtsec")
            words.append("\(export.transportSecurity.count)")
            words += export.transportSecurity.map { "\($0.kernelValue)" }
        }
        return words.joined(separator: " ") + "\n"
    }

    public static func fileHandle(_ request: FileHandleRequest, expiry: Int, path: String?) -> String {
        var line = CacheText.word(request.domain) + " \(request.fsidType) " + CacheText.hexWord(request.fsid) + " \(expiry)"
        if let path { line += " " + CacheText.word(path) }
        return line + "\n"
    }

    public static func groups(uid: UInt32, expiry: Int, gids: [UInt32]?) -> String {
        // A uid the group database does not know: no groups (the kernel
        // takes no gid answer without a count; nfs-utils writes 0 too).
        guard let gids else { return "\(uid) \(expiry) 0\n" }
        let list = gids.prefix(8192)
        return "\(uid) \(expiry) \(list.count)" + list.map { " \($0)" }.joined() + "\n"
    }
}

/// Everything an nfsd.export answer carries.
public struct ExportAnswer: Sendable, Equatable {
    public struct Security: Sendable, Equatable {
        public var flavor: UInt32
        public var flags: ExportFlags
    }

    public struct Locations: Sendable, Equatable {
        public struct Server: Sendable, Equatable {
            public var hosts: String
            public var path: String
        }
        public var servers: [Server]
        public var migrated: Bool
    }

    public var flags: ExportFlags
    public var anonUID: Int32
    public var anonGID: Int32
    public var fsid: UInt32
    public var uuid: [UInt8]?
    public var security: [Security]
    public var transportSecurity: [TransportSecurity]
    public var locations: Locations?
}
