#if canImport(Glibc)
import Glibc
#endif
import CMountGlue
import CTIRPC
import SystemEdge

/// One rpcbind entry: program 100005, a version, a netid ("tcp", "udp6"...)
/// and the universal address clients are sent to.
struct RpcbindEntry: Sendable, CustomStringConvertible {
    var version: UInt32
    var netid: String
    var address: SocketAddress

    var description: String { "(mountd v\(version), \(netid), \(address.description))" }

    /// The netids an endpoint answers on: a wildcard IPv6 socket is dual
    /// stack and also serves the IPv4 netid (at 0.0.0.0, same port), as
    /// nfs-utils' separate IPv4 and IPv6 sockets would.
    static func entries(for local: SocketAddress, transport: MountTransport, versions: [UInt32], dualStack: Bool) -> [RpcbindEntry] {
        let base = transport.rawValue
        var pairs: [(String, SocketAddress)] = []
        if local.family == AF_INET6 {
            pairs.append((base + "6", local))
            if dualStack { pairs.append((base, SocketAddress.anyInet(port: local.ipPort ?? 0))) }
        } else {
            pairs.append((base, local))
        }
        return versions.flatMap { version in pairs.map { RpcbindEntry(version: version, netid: $0.0, address: $0.1) } }
    }
}

/// rpcbind registration through libtirpc (rpcb_set talks to rpcbind over
/// its local socket; rpcbind also answers portmapper v2 queries from it).
enum Rpcbind {
    /// Replaces whatever (program, version, netid) entry rpcbind has (a
    /// mountd that died without unregistering) with ours, as nfs-utils does.
    static func register(_ entry: RpcbindEntry) throws(MountRPCError) {
        guard let nconf = getnetconfigent(entry.netid) else {
            throw MountRPCError(step: .registration, subject: "\(entry)", rpcError: "no netid \(entry.netid) in /etc/netconfig")
        }
        defer { freenetconfigent(nconf) }
        _ = rpcb_unset(rpcprog_t(MountProgram.number), rpcvers_t(entry.version), nconf)
        mountglue_createerr_clear()
        let done = withNetbuf(entry.address) { rpcb_set(rpcprog_t(MountProgram.number), rpcvers_t(entry.version), nconf, $0) }
        guard done != 0 else {
            let reason = mountglue_createerr_is_set()
                ? createErrorText()
                : "rpcbind refused the registration"
            throw MountRPCError(step: .registration, subject: "\(entry)", rpcError: reason)
        }
    }

    /// Removes our entry; false when rpcbind had none or could not be reached.
    @discardableResult
    static func unregister(_ entry: RpcbindEntry) -> Bool {
        guard let nconf = getnetconfigent(entry.netid) else { return false }
        defer { freenetconfigent(nconf) }
        return rpcb_unset(rpcprog_t(MountProgram.number), rpcvers_t(entry.version), nconf) != 0
    }

    private static func withNetbuf<R>(_ address: SocketAddress, _ body: (UnsafePointer<netbuf>) -> R) -> R {
        address.withSockaddr { pointer, length in
            // rpcb_set reads the address (taddr2uaddr) and does not write it.
            var buffer = netbuf(maxlen: UInt32(length), len: UInt32(length), buf: UnsafeMutableRawPointer(mutating: pointer))
            return body(&buffer)
        }
    }

    static func createErrorText() -> String {
        var text = [CChar](repeating: 0, count: 512)
        mountglue_createerr_text(&text, text.count)
        return cleanRPCText(text)
    }
}

/// libtirpc's error texts start with the caller's prefix and ": " (we pass
/// none) and may end in a newline.
func cleanRPCText(_ text: [CChar]) -> String {
    var string = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while string.hasPrefix(":") || string.hasPrefix(" ") { string.removeFirst() }
    while string.hasSuffix("\n") { string.removeLast() }
    return string
}
