import NFSExports

/// `mount.vsock CID:/export DIR [-o options]`, as mount(8) calls a helper.
/// Pure parsing: which host CID and vsock port, which export, which NFS
/// options go through to mount.nfs4.
public struct MountVsockRequest: Sendable, Equatable {
    public var cid: UInt32 = 2
    public var vsockPort: UInt32 = 2049
    public var export: String
    public var directory: String
    /// Options for the NFS mount (vsock-only ones removed).
    public var nfsOptions: [String]
    /// A bare vers=4: mount.vsock negotiates the minor version (4.2, then 4.1).
    public var negotiatesMinorVersion = false
    public var verbose = false
    public var fake = false
    public var noMtab = false

    public typealias Problem = NFSExports.Problem

    /// The default NFS options: NFSv4.1 over TCP (the only transport the
    /// helper offers), hard mounts as an administrator expects.
    public static let defaultNFSOptions = ["vers=4.1", "proto=tcp"]

    /// fstab options meant for mount(8), fstab tools and systemd, which
    /// mount(8) may still pass to a helper; they never reach the kernel.
    static let userspaceOptions: Set<String> = [
        "defaults", "auto", "noauto", "_netdev", "nofail", "nouser", "sloppy",
    ]

    public static func parse(_ arguments: [String]) throws(Problem) -> MountVsockRequest {
        var positional: [String] = []
        var optionText: [String] = []
        var request = MountVsockRequest(export: "", directory: "", nfsOptions: [])
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "-o":
                index += 1
                guard index < arguments.count else { throw Problem(message: "-o needs options") }
                optionText.append(arguments[index])
            case "-v": request.verbose = true
            case "-f": request.fake = true
            case "-n": request.noMtab = true
            case "-s", "-r", "-w": if argument == "-r" { optionText.append("ro") } else if argument == "-w" { optionText.append("rw") }
            case "-t":
                // mount(8) passes "-t vsock.subtype" for a subtype; the type is ours.
                index += 1
                guard index < arguments.count else { throw Problem(message: "-t needs a type") }
            case "-N", "--namespace":
                throw Problem(message: "\(argument) (mount --namespace) is not supported: run mount.vsock inside the namespace (nsenter)")
            default:
                if argument.hasPrefix("-o") && argument.count > 2 {
                    optionText.append(String(argument.dropFirst(2)))
                } else if argument.hasPrefix("-") {
                    throw Problem(message: "unknown option \(argument)")
                } else {
                    positional.append(argument)
                }
            }
            index += 1
        }
        guard positional.count == 2 else {
            throw Problem(message: "usage: mount.vsock [CID]:/export DIR [-o options]")
        }
        let spec = positional[0]
        guard let colon = spec.firstIndex(of: ":") else {
            throw Problem(message: "\"\(spec)\" is not CID:/export (e.g. 2:/srv/vm5)")
        }
        let cidText = spec[..<colon]
        if !cidText.isEmpty {
            guard let cid = UInt32(cidText), cid < UInt32.max else { throw Problem(message: "bad CID \"\(cidText)\" in \(spec)") }
            request.cid = cid
        }
        request.export = String(spec[spec.index(after: colon)...])
        guard request.export.hasPrefix("/") else { throw Problem(message: "the export path in \(spec) must be absolute") }
        request.directory = positional[1]

        var nfs: [String] = []
        // Split on the scalar ',': as Characters, a combining mark after a
        // comma would merge with it and two options would stay one.
        let options = optionText.flatMap { $0.unicodeScalars.split(separator: ",").map { String(String.UnicodeScalarView($0)) } }
        for option in options where !option.isEmpty {
            if option.hasPrefix("vsock_port=") || option.hasPrefix("vsockport=") {
                // The text after the first '=': may be empty ("vsock_port=").
                guard let port = UInt32(option.drop { $0 != "=" }.dropFirst()), port > 0, port < UInt32.max else {
                    throw Problem(message: "bad vsock port in \(option)")
                }
                request.vsockPort = port
            } else if option.hasPrefix("cid=") {
                guard let cid = UInt32(option.dropFirst(4)), cid < UInt32.max else { throw Problem(message: "bad \(option)") }
                request.cid = cid
            } else if option.hasPrefix("port=") || option.hasPrefix("addr=") || option.hasPrefix("proto=")
                        || option.hasPrefix("mountport=") || option.hasPrefix("mountproto=") {
                throw Problem(message: "\(option) is chosen by mount.vsock (the NFS traffic goes through its loopback relay)")
            } else if ["user", "users", "owner", "group"].contains(option) {
                // fstab(5): these imply noexec, nosuid and nodev unless a
                // later option says otherwise (flags apply in order).
                nfs += ["nosuid", "nodev", "noexec"]
            } else if Self.userspaceOptions.contains(option) || option.hasPrefix("x-") || option.hasPrefix("comment=") {
                // For mount(8), fstab and systemd only; the kernel rejects them.
                continue
            } else {
                nfs.append(option)
            }
        }
        switch try NFSVersionChoice.choose(nfs) {
        case .unspecified:
            request.nfsOptions = defaultNFSOptions + nfs
        case .v4AnyMinor:
            request.nfsOptions = ["proto=tcp"] + nfs
            request.negotiatesMinorVersion = true
        case .v4:
            request.nfsOptions = ["proto=tcp"] + nfs
        }
        return request
    }

    /// The NFS options for mount(2) once the relay listens on `relayPort`,
    /// one set per attempt: tried in turn while the kernel answers that the
    /// version is not available (a bare vers=4: 4.2, then 4.1).
    public func mountOptionAttempts(relayPort: UInt16) -> [String] {
        let relay = ["port=\(relayPort)", "addr=127.0.0.1"]
        guard negotiatesMinorVersion else { return [(nfsOptions + relay).joined(separator: ",")] }
        return NFSVersionChoice.negotiatedMinors.map { (nfsOptions + ["minorversion=\($0)"] + relay).joined(separator: ",") }
    }
}
