/// ONC RPC messages (RFC 5531) as bytes, for tests of what reads them.
public enum RPCMessage {
    public static let nfsProgram: UInt32 = 100_003

    /// Big-endian XDR words.
    public static func words(_ values: [UInt32]) -> [UInt8] {
        values.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
    }

    /// A CALL: rpcvers 2, the program, version and procedure, an AUTH_SYS
    /// credential (or `credential`: flavor and body words), an AUTH_NONE
    /// verifier, then `arguments`.
    public static func call(xid: UInt32, program: UInt32 = nfsProgram, version: UInt32 = 4, procedure: UInt32 = 1,
                            credential: (flavor: UInt32, body: [UInt32]) = (1, [7, 0, 0, 0, 0]),
                            arguments: [UInt8] = RPCMessage.words([0, 0, 1, 9])) -> [UInt8] {
        words([xid, 0, 2, program, version, procedure, credential.flavor, UInt32(4 * credential.body.count)] + credential.body + [0, 0])
            + arguments
    }

    /// An RPCSEC_GSS call (RFC 2203): `service` 1 none, 2 integrity, 3 privacy.
    public static func gssCall(xid: UInt32, procedure: UInt32 = 1, gssProcedure: UInt32 = 0, service: UInt32) -> [UInt8] {
        call(xid: xid, procedure: procedure, credential: (6, [1, gssProcedure, 17, service, 4, 0xDEAD_BEEF]))
    }

    /// An accepted REPLY: the verifier (flavor 0 and `verifier` as its
    /// body, padded), accept_stat, then `results` (for a successful NFS
    /// procedure, its status first).
    public static func reply(xid: UInt32, verifier: [UInt8] = [], acceptStat: UInt32 = 0, results: [UInt8] = RPCMessage.words([0])) -> [UInt8] {
        let padding = [UInt8](repeating: 0, count: (4 - verifier.count % 4) % 4)
        return words([xid, 1, 0, 0, UInt32(verifier.count)]) + verifier + padding + words([acceptStat]) + results
    }

    /// A REPLY denied for RPC_MISMATCH (versions 2 to 2).
    public static func denied(xid: UInt32) -> [UInt8] {
        words([xid, 1, 1, 0, 2, 2])
    }

    /// A record: `body` in fragments of `sizes` bytes, the rest in a last
    /// one (flagged as last).
    public static func record(_ body: [UInt8], fragments sizes: [Int] = []) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        for size in sizes {
            out += words([UInt32(size)]) + body[offset..<(offset + size)]
            offset += size
        }
        return out + words([0x8000_0000 | UInt32(body.count - offset)]) + body[offset...]
    }
}
