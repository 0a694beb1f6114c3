#if canImport(Glibc)
import Glibc
#endif
import CMountGlue
import CTIRPC
import SystemEdge

/// A MOUNT client on libtirpc (clnt_tli_create to a known address and port,
/// AUTH_SYS credentials as mount.nfs and showmount send): what the tests
/// call the server with, and a way for tools to ask a MOUNT server
/// directly. One caller at a time.
public final class MountRPCClient {
    public let version: UInt32
    public let transport: MountTransport
    /// "127.0.0.1:20048", for messages.
    public let server: String
    /// How long one call may take (UDP retransmits every 500 ms within it).
    public var timeout: Duration

    private let client: UnsafeMutablePointer<CLIENT>

    public init(host: String, port: UInt16, transport: MountTransport, version: UInt32, timeout: Duration = .seconds(5)) throws(MountRPCError) {
        guard let address = SocketAddress(numericHost: host, port: port) else {
            throw MountRPCError(step: .configuration, subject: "MOUNT server \"\(host)\"", rpcError: "not a numeric IPv4 or IPv6 address")
        }
        self.version = version
        self.transport = transport
        self.timeout = timeout
        server = address.description
        let netid = transport.rawValue + (address.family == AF_INET6 ? "6" : "")
        guard let nconf = getnetconfigent(netid) else {
            throw MountRPCError(step: .connect, subject: "\(server)/\(netid)", rpcError: "no netid \(netid) in /etc/netconfig")
        }
        defer { freenetconfigent(nconf) }
        mountglue_createerr_clear()
        let created = address.withSockaddr { pointer, length in
            // clnt_tli_create copies the address and does not write it.
            var target = netbuf(maxlen: UInt32(length), len: UInt32(length), buf: UnsafeMutableRawPointer(mutating: pointer))
            return clnt_tli_create(RPC_ANYFD, nconf, &target, rpcprog_t(MountProgram.number), rpcvers_t(version), 0, 0)
        }
        guard let created else {
            throw MountRPCError(step: .connect, subject: "\(server)/\(netid) MOUNT v\(version)", rpcError: Rpcbind.createErrorText())
        }
        client = created
        mountglue_clnt_use_authsys(client)
        if transport == .udp { _ = mountglue_clnt_set_retry(client, 500) }
    }

    deinit {
        mountglue_clnt_destroy(client)
    }

    public func null() throws(MountRPCError) {
        try decode(.null, try call(.null)) { bytes throws(XDRDecodingError) in try MountCodec.decodeVoid(bytes) }
    }

    public func mount(_ path: String) throws(MountRPCError) -> MountResult {
        let bytes = try call(.mnt, arguments: MountCodec.encodePath(path))
        let version = version
        return try decode(.mnt, bytes) { bytes throws(XDRDecodingError) in try MountCodec.decodeMount(bytes, version: version) }
    }

    public func unmount(_ path: String) throws(MountRPCError) {
        try decode(.umnt, try call(.umnt, arguments: MountCodec.encodePath(path))) { bytes throws(XDRDecodingError) in
            try MountCodec.decodeVoid(bytes)
        }
    }

    public func unmountAll() throws(MountRPCError) {
        try decode(.umntall, try call(.umntall)) { bytes throws(XDRDecodingError) in try MountCodec.decodeVoid(bytes) }
    }

    public func dump() throws(MountRPCError) -> [(host: String, directory: String)] {
        try decode(.dump, try call(.dump)) { bytes throws(XDRDecodingError) in try MountCodec.decodeMountList(bytes) }
    }

    /// EXPORT, or with `all` the v1 EXPORTALL procedure.
    public func exports(all: Bool = false) throws(MountRPCError) -> [(directory: String, groups: [String])] {
        let procedure: MountProgram.Procedure = all ? .exportall : .export
        return try decode(procedure, try call(procedure)) { bytes throws(XDRDecodingError) in try MountCodec.decodeExports(bytes) }
    }

    public func call(_ procedure: MountProgram.Procedure, arguments: [UInt8] = []) throws(MountRPCError) -> [UInt8] {
        try call(procedure: procedure.rawValue, arguments: arguments)
    }

    /// Any procedure number with any argument bytes (they are sent as they
    /// are: XDR, 4-byte aligned); returns the result bytes undecoded.
    public func call(procedure: UInt32, arguments: [UInt8]) throws(MountRPCError) -> [UInt8] {
        var result = mountglue_bytes()
        defer { mountglue_bytes_free(&result) }
        let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
        let status = arguments.withUnsafeBufferPointer { arguments in
            mountglue_call(client, rpcproc_t(procedure), arguments.baseAddress, UInt32(arguments.count),
                           &result, 1 << 20, UInt32(clamping: milliseconds))
        }
        guard status == RPC_SUCCESS else {
            var text = [CChar](repeating: 0, count: 512)
            mountglue_clnt_error_text(client, &text, text.count)
            let name = MountProgram.Procedure(rawValue: procedure)?.name ?? "procedure \(procedure)"
            throw MountRPCError(step: .call, subject: "\(name) v\(version) to \(server)/\(transport.rawValue)",
                                rpcError: cleanRPCText(text), rpcStatus: RPCStatus(rawValue: Int32(bitPattern: status.rawValue)))
        }
        guard let data = result.data else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: Int(result.length)))
    }

    private func decode<T>(_ procedure: MountProgram.Procedure, _ bytes: [UInt8],
                           _ body: ([UInt8]) throws(XDRDecodingError) -> T) throws(MountRPCError) -> T {
        do {
            return try body(bytes)
        } catch {
            throw MountRPCError(step: .reply, subject: "\(procedure.name) v\(version) from \(server)/\(transport.rawValue)",
                                rpcError: error.description)
        }
    }
}
