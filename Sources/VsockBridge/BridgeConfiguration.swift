import NFSAdmin
import NFSExports

/// What the bridge listens on, where it forwards, and its limits.
public struct BridgeConfiguration: Sendable {
    /// A hybrid-vsock Unix socket (Firecracker `<uds_path>_<port>`, Cloud
    /// Hypervisor): every connection on it comes from one VM, whose CID is
    /// configured because the socket cannot tell.
    public struct UnixListener: Sendable, Equatable {
        public var path: String
        public var cid: VsockCID
        /// The uid of the VM's VMM process, the one client of the socket:
        /// the socket the bridge creates is its (mode 0600), and a
        /// connection from any other uid, root's included, is refused.
        public var vmmUID: UInt32

        public init(path: String, cid: VsockCID, vmmUID: UInt32 = 0) {
            self.path = path
            self.cid = cid
            self.vmmUID = vmmUID
        }
    }

    /// A setting the bridge refuses, with a message naming it.
    public typealias Problem = NFSExports.Problem

    public var vsockPorts: [UInt32] = []
    public var unixListeners: [UnixListener] = []
    /// The kernel NFS server's loopback listener.
    public var targetHost = "127.0.0.1"
    public var targetPort: UInt16 = 2049
    public var mapping = VsockLoopbackMapping.default
    /// A guest's connections from privileged vsock ports (its kernel's
    /// NFS client's, through mount.vsock), and every connection of a
    /// hybrid-vsock VM (its VMM does not pass the guest's port).
    public var maxConnectionsPerGuest = 16
    /// A guest's connections from unprivileged vsock ports (any process
    /// of the guest): a quota of their own, so they cannot take the slots
    /// the guest's kernel needs to reconnect.
    public var maxUnprivilegedPerGuest = 4
    public var maxConnections = 1024
    /// The last slots of maxConnections, kept for guests that hold no
    /// connection: guests that flood the bridge fill it only up to here,
    /// and a guest arriving then still gets its first connection (an NFS
    /// mount needs one). A sixteenth of the total, at least 1.
    public var reservedForNewGuests: Int { max(1, maxConnections / 16) }
    /// Bytes buffered per direction of a connection: a peer that does not
    /// read stops the other from sending, nothing grows without bound.
    public var bufferSize = 256 * 1024
    /// Connections with no traffic for this long are closed (seconds; 0 =
    /// never). NFS clients reconnect transparently.
    public var idleTimeout = 900
    /// After one side has closed, how long the other may keep sending.
    public var halfOpenTimeout = 30

    public init() {}

    /// Parses "PATH=CID" (a hybrid-vsock listener whose VMM runs as root)
    /// or "PATH=CID:USER", USER a uid (which need not be in the user
    /// database: jailers use bare ones) or a user name that `userID` turns
    /// into one (nil: no such user). `origin` says where the text came
    /// from (`--unix`, or file:line), for the message.
    public static func unixListener(_ text: String, origin: String, userID: (String) -> UInt32?) throws(Problem) -> UnixListener {
        let malformed = Problem("\(origin) wants /absolute/path=CID or /absolute/path=CID:USER (USER: the VMM's user name or uid; root when left out), got \"\(text)\"")
        // The path may hold "=" and ":"; CID and USER hold neither.
        guard let equals = text.lastIndex(of: "=") else { throw malformed }
        let path = String(text[..<equals])
        let rest = text[text.index(after: equals)...]
        let cidText = rest.prefix { $0 != ":" }
        guard path.hasPrefix("/"), let cid = VsockCID(cidText), cidText.allSatisfy(\.isASCIIDigit) else { throw malformed }
        guard cidText.endIndex < rest.endIndex else { return UnixListener(path: path, cid: cid) }
        let user = String(rest[rest.index(after: cidText.endIndex)...])
        guard !user.isEmpty, !user.contains(":") else { throw malformed }
        if user.allSatisfy(\.isASCIIDigit) {
            // (uid_t)-1 means "no change" to chown(2), not a user.
            guard let uid = UInt32(user), uid != UInt32.max else {
                throw Problem("\(origin): \"\(user)\" is not a uid (in \"\(text)\")")
            }
            return UnixListener(path: path, cid: cid, vmmUID: uid)
        }
        guard let uid = userID(user) else {
            throw Problem("\(origin): no user \"\(user)\" (in \"\(text)\"); USER is the user name or uid the VM's VMM runs as")
        }
        return UnixListener(path: path, cid: cid, vmmUID: uid)
    }

    /// Refuses hybrid-vsock listeners that would blur guest identities: a
    /// reserved CID (0 the hypervisor, 1 vsock loopback, 2 the host), a CID
    /// without an address in the block, one CID on two sockets (two VMs
    /// would be one guest to mountd; Firecracker setups commonly give
    /// every VM CID 3), and one socket given twice.
    public func checkUnixListeners() throws(Problem) {
        for listener in unixListeners {
            let cid = listener.cid
            if cid < 3 {
                let owner = [0: "the hypervisor's", 1: "vsock loopback's (any process on this host)", 2: "the host's"][cid] ?? ""
                throw Problem("hybrid-vsock socket \(listener.path): CID \(cid) is \(owner); a VM's CID is 3 or more")
            }
            if mapping.address(of: cid) == nil {
                throw Problem("hybrid-vsock socket \(listener.path): CID \(cid) has no address in \(mapping) (CIDs up to \(mapping.maxCID))")
            }
        }
        // One pass with two tables: a host names a socket per VM, a
        // thousand of them, and pairs would be half a million.
        var byPath: [String: UnixListener] = [:]
        var byCID: [VsockCID: UnixListener] = [:]
        for listener in unixListeners {
            if let first = byPath.updateValue(listener, forKey: Self.pathKey(listener.path)) {
                throw Problem("hybrid-vsock socket \(first.path) is given twice (\(first.path)=\(first.cid) and \(listener.path)=\(listener.cid)): one socket carries one VM")
            }
            if let first = byCID.updateValue(listener, forKey: listener.cid) {
                throw Problem("hybrid-vsock sockets \(first.path) and \(listener.path) both have CID \(first.cid): mountd would take the two VMs for one guest; give each VM a CID of its own (Firecracker: guest_cid, Cloud Hypervisor: --vsock cid=) and name it here")
            }
        }
    }

    /// The configured hybrid-vsock listener on `path`, if any.
    public func unixListener(at path: String) -> UnixListener? {
        let key = Self.pathKey(path)
        return unixListeners.first { Self.pathKey($0.path) == key }
    }

    /// The configured hybrid-vsock listeners by `pathKey`, for callers
    /// that look up many paths.
    public var unixListenersByPath: [String: UnixListener] {
        Dictionary(unixListeners.map { (Self.pathKey($0.path), $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Whether two spellings name the same socket file as far as the text
    /// tells ("//" and "/./" do not count; symbolic links are not followed).
    static func samePath(_ a: String, _ b: String) -> Bool { pathKey(a) == pathKey(b) }

    /// A path with empty and "." components dropped: equal keys are the
    /// same file as far as the text tells.
    static func pathKey(_ path: String) -> String {
        (path.hasPrefix("/") ? "/" : "") + path.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }.joined(separator: "/")
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension BridgeConfiguration {
    /// What a reload does to the listeners: vsock ports to open, listeners
    /// to stop, and hybrid-vsock sockets it cannot open (handing a new one
    /// to its VMM takes root, which the bridge gave up).
    public struct ListenerChanges {
        public var openVsock: [UInt32] = []
        public var stop: [Bridge.Listener] = []
        public var cannotOpen: [UnixListener] = []
    }

    /// The listeners `self` asks for, against those being served.
    public func listenerChanges(serving: [Bridge.Listener]) -> ListenerChanges {
        var changes = ListenerChanges()
        var servedPorts: Set<UInt32> = []
        let wanted = unixListenersByPath
        var servedUnix: Set<String> = []
        for listener in serving {
            switch listener {
            case .vsock(_, let port):
                servedPorts.insert(port)
                if !vsockPorts.contains(port) { changes.stop.append(listener) }
            case .unix(_, let path, let cid):
                let key = Self.pathKey(path)
                if wanted[key]?.cid == cid { servedUnix.insert(key) } else { changes.stop.append(listener) }
            }
        }
        changes.openVsock = vsockPorts.filter { !servedPorts.contains($0) }
        changes.cannotOpen = unixListeners.filter { !servedUnix.contains(Self.pathKey($0.path)) }
        return changes
    }
}
