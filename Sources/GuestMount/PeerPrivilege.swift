/// Whether a connection the relay accepted may leave for the host from a
/// privileged vsock port (pure: /proc/self/net/tcp is read elsewhere).
///
/// A TCP source port below 1024 alone proves nothing: a guest whose
/// net.ipv4.ip_unprivileged_port_start is lowered lets any user bind one.
/// What the host's `secure` option means to ask is whether root opened the
/// connection, so the socket at the other end must belong to root too (the
/// kernel NFS client's sockets do).
enum PeerPrivilege {
    static func isPrivileged(peerPort: UInt16, owner: UInt32?) -> Bool {
        peerPort < 1024 && owner == 0
    }
}

/// An IPv4 TCP endpoint: address and port in host byte order.
struct TCPEndpoint: Sendable, Hashable, CustomStringConvertible {
    var address: UInt32
    var port: UInt16

    static let loopback: UInt32 = 0x7F00_0001

    var description: String {
        let bytes = [24, 16, 8, 0].map { String((address >> UInt32($0)) & 0xFF) }
        return bytes.joined(separator: ".") + ":\(port)"
    }
}

/// /proc/net/tcp, as the kernel prints it (net/ipv4/tcp_ipv4.c):
///
///     sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
///      0: 0100007F:0385 0100007F:03FF 01 00000000:00000000 00:00000000 00000000     0        0 20512 ...
///
/// An address is the in-memory (network order) 32 bits printed as a native
/// integer, so 127.0.0.1 reads 0100007F on little-endian machines; a port
/// is in host order.
enum TCPSocketTable {
    static let established = "01"

    /// The uid column of the ESTABLISHED socket whose local address is
    /// `local` and whose remote address is `remote`; nil if there is none.
    /// Other states are not trusted: a socket its owner closed can become
    /// a TIME_WAIT or FIN_WAIT2 mini-socket, which the kernel prints with
    /// uid 0, while the data sent before the close is still on its way.
    static func owner(in text: String, local: TCPEndpoint, remote: TCPEndpoint) -> UInt32? {
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 7, fields[0].hasSuffix(":"), fields[3] == Substring(established),
                  endpoint(fields[1]) == local, endpoint(fields[2]) == remote else { continue }
            return UInt32(fields[7])
        }
        return nil
    }

    /// "0100007F:0385" -> 127.0.0.1:901.
    static func endpoint(_ field: Substring) -> TCPEndpoint? {
        let parts = field.split(separator: ":")
        guard parts.count == 2, parts[0].count == 8, parts[1].count == 4,
              let printed = UInt32(parts[0], radix: 16), let port = UInt16(parts[1], radix: 16) else { return nil }
        return TCPEndpoint(address: UInt32(bigEndian: printed), port: port)
    }
}
