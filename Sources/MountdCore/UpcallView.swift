import NFSExports

/// Which nfsd instance a request came from, and so what its addresses
/// mean. Pure: the rule for who a client is lives here, tested.
///
///  - `host`: the host's own nfsd (IP clients, and guests of a kernel
///    vsock transport, which the kernel names `vsock:N` itself). Any host
///    process can connect from any loopback address, so an address of a
///    guest block is nobody there: no access, never an IP identity.
///  - `bridge`: the nfsd instance in the bridge's private network
///    namespace. Only the bridge can connect to it, so an address of the
///    recorded block is the guest with that CID; anything else (the block
///    changed under a running bridge, or something that is not the bridge
///    got in) is nobody.
public enum UpcallView: Sendable, Equatable, CustomStringConvertible {
    case host(guestBlocks: [VsockLoopbackMapping])
    case bridge(VsockLoopbackMapping)

    public var description: String {
        switch self {
        case .host: "the host's nfsd"
        case .bridge(let block): "the vsock bridge's nfsd (guests from \(block))"
        }
    }

    public enum Identity: Sendable, Equatable {
        case client(ClientAddress)
        /// No access; the reason is for the log.
        case nobody(String)
    }

    public func identity(of client: ClientAddress) -> Identity {
        switch (self, client) {
        case (_, .vsock(let cid)):
            return .client(.vsock(cid))
        case (.host(let blocks), .ip(let address)):
            if let block = blocks.first(where: { $0.contains(address) }) {
                return .nobody("\(address) is in the vsock guest block \(block) but reached the host's nfsd, not the bridge's: no host process may pass as a guest")
            }
            return .client(.ip(address))
        case (.bridge(let block), .ip(let address)):
            switch block.resolve(address) {
            case .guest(let cid): return .client(.vsock(cid))
            case .invalid: return .nobody("\(address) in the bridge's namespace names no guest of \(block)")
            case .notVsock: return .nobody("\(address) reached the bridge's nfsd but is not in its guest block \(block)")
            }
        }
    }
}
