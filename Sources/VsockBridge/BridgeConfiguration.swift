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
    }

    public var vsockPorts: [UInt32] = []
    public var unixListeners: [UnixListener] = []
    /// The kernel NFS server's loopback listener.
    public var targetHost = "127.0.0.1"
    public var targetPort: UInt16 = 2049
    public var mapping = VsockLoopbackMapping.default
    public var maxConnectionsPerGuest = 16
    public var maxConnections = 1024
    /// Bytes buffered per direction of a connection: a peer that does not
    /// read stops the other from sending, nothing grows without bound.
    public var bufferSize = 256 * 1024
    /// Connections with no traffic for this long are closed (seconds; 0 =
    /// never). NFS clients reconnect transparently.
    public var idleTimeout = 900
    /// After one side has closed, how long the other may keep sending.
    public var halfOpenTimeout = 30

    public init() {}

    /// Parses "PATH=CID" (a hybrid-vsock listener).
    public static func unixListener(_ text: String) -> UnixListener? {
        guard let equals = text.lastIndex(of: "="), let cid = VsockCID(text[text.index(after: equals)...]),
              cid >= 1, text[..<equals].hasPrefix("/")
        else { return nil }
        return UnixListener(path: String(text[..<equals]), cid: cid)
    }
}
