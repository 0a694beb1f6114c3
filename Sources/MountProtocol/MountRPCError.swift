#if canImport(Glibc)
import Glibc
#endif
import SystemEdge

/// A MOUNT server or client step that failed: which step, on what, and the
/// OS error or RPC error text that explains it. The OS error's text is
/// SystemError's (SystemEdge), so it reads as every other tool's.
public struct MountRPCError: Error, Sendable, CustomStringConvertible {
    public enum Step: String, Sendable {
        /// The server or client was configured wrong (no transport, unknown version, bad address).
        case configuration
        /// start() on a server already started or stopped.
        case state
        case socket
        case bind
        case listen
        /// libtirpc refused the socket (svc_vc_create, svc_dg_create, svc_reg).
        case transport
        /// rpcbind (rpcb_set / rpcb_unset).
        case registration
        /// The serving thread could not be created.
        case thread
        /// Client: creating the RPC client (connecting).
        case connect
        /// Client: the call failed (the RPC status says how).
        case call
        /// Client: the reply did not decode.
        case reply
    }

    public var step: Step
    /// What the step was working on, e.g. "tcp [::]:20048" or "MNT v3".
    public var subject: String
    public var errno: Int32?
    /// RPC-level explanation (libtirpc's text) where there is one.
    public var rpcError: String?
    /// Client calls: the RPC status (`clnt_stat`) of the call.
    public var rpcStatus: RPCStatus?

    public init(step: Step, subject: String, errno: Int32? = nil, rpcError: String? = nil, rpcStatus: RPCStatus? = nil) {
        self.step = step
        self.subject = subject
        self.errno = errno
        self.rpcError = rpcError
        self.rpcStatus = rpcStatus
    }

    public var description: String {
        var text = "\(step.rawValue) \(subject)"
        if let errno { text += ": \(SystemError.describe(errno))" }
        if let rpcError, !rpcError.isEmpty { text += ": \(rpcError)" }
        return text
    }

    /// `step` on `subject` failed with the calling thread's errno.
    static func system(_ step: Step, _ subject: String) -> MountRPCError {
        MountRPCError(step: step, subject: subject, errno: Glibc.errno)
    }
}

/// ONC RPC call statuses (`enum clnt_stat`, RFC 5531 accept/reject states as
/// libtirpc reports them), for callers that need to tell them apart.
public enum RPCStatus: Int32, Sendable {
    case success = 0
    case cantEncodeArguments = 1
    case cantDecodeResults = 2
    case cantSend = 3
    case cantReceive = 4
    case timedOut = 5
    case rpcVersionMismatch = 6
    case authenticationError = 7
    case programUnavailable = 8
    case programVersionMismatch = 9
    case procedureUnavailable = 10
    case cantDecodeArguments = 11
    case systemError = 12
    case unknownHost = 13
    case rpcbindFailure = 14
    case programNotRegistered = 15
    case failed = 16
    case unknownProtocol = 17
    case interrupted = 18
    case unknownAddress = 19
    case cantConnect = 26
    case transportFailed = 27
}

extension MountRPCError.Step {
    /// The step of SocketAddress.listen(_:) that failed.
    init(_ step: ListenFailure.Step) {
        switch step {
        case .socket: self = .socket
        case .bind: self = .bind
        case .listen: self = .listen
        }
    }
}
