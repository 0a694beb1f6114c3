#if canImport(Glibc)
import Glibc
#endif
import CMountGlue
import CTIRPC
import SystemEdge

/// "tcp" or "udp": how a call arrived or how a client calls.
public enum MountTransport: String, Sendable, CaseIterable {
    case tcp
    case udp
}

/// One MOUNT call, from the decoded RPC header to the reply: decodes the
/// argument through the C glue, asks the service, encodes the result with
/// `MountCodec`, sends it. Runs on the serving thread, inside libtirpc.
struct MountDispatcher: Sendable {
    let service: any MountService
    /// Sorted, a subset of `MountProgram.supportedVersions`.
    let versions: [UInt32]
    let log: @Sendable (String) -> Void

    /// `datagramLength`: the size of the UDP datagram being served (nil for TCP).
    func handle(_ request: UnsafeMutablePointer<svc_req>, _ xprt: UnsafeMutablePointer<SVCXPRT>,
                transport: MountTransport, datagramLength: Int?) {
        let version = UInt32(request.pointee.rq_vers)
        guard versions.contains(version) else {
            // Another server in this process may serve this version (libtirpc
            // routes by program and version only): tell the client ours.
            svcerr_progvers(xprt, rpcvers_t(versions.first ?? 0), rpcvers_t(versions.last ?? 0))
            return
        }
        let peer = Self.peer(of: xprt, transport: transport)
        guard let procedure = MountProgram.Procedure(rawValue: UInt32(request.pointee.rq_proc)),
              procedure != .exportall || version == 1
        else {
            svcerr_noproc(xprt)
            return
        }

        switch procedure {
        case .null:
            reply([], to: xprt, peer: peer, procedure: procedure)

        case .mnt:
            let result: MountResult
            switch Self.pathArgument(xprt, datagramLength: datagramLength) {
            case .garbage:
                svcerr_decode(xprt)
                return
            case .tooLong(let length):
                log("MNT from \(peer): path of \(length) bytes refused (limit \(MountProgram.maxPathLength))")
                result = .error(.nametoolong)
            case .unusable:
                // Not text, or a NUL inside: it cannot name an export, and must
                // not reach code that would read it as a shorter C string.
                log("MNT from \(peer): path is not UTF-8 text without NUL bytes")
                result = .error(.noent)
            case .path(let path):
                result = service.mount(path: path, version: version, from: peer)
            }
            let encoded = MountCodec.encodeMount(result, version: version)
            for note in encoded.notes { log("MNT from \(peer): \(note)") }
            reply(encoded.bytes, to: xprt, peer: peer, procedure: procedure)

        case .umnt:
            switch Self.pathArgument(xprt, datagramLength: datagramLength) {
            case .garbage:
                svcerr_decode(xprt)
                return
            case .tooLong, .unusable:
                break // nothing can be mounted under such a path: nothing to forget
            case .path(let path):
                service.unmount(path: path, from: peer)
            }
            reply([], to: xprt, peer: peer, procedure: procedure)

        case .umntall:
            service.unmountAll(from: peer)
            reply([], to: xprt, peer: peer, procedure: procedure)

        case .dump:
            let encoded = MountCodec.encodeMountList(service.mountList())
            for note in encoded.notes { log(note) }
            reply(encoded.bytes, to: xprt, peer: peer, procedure: procedure)

        case .export, .exportall:
            let encoded = MountCodec.encodeExports(service.exportList())
            for note in encoded.notes { log(note) }
            reply(encoded.bytes, to: xprt, peer: peer, procedure: procedure)
        }
    }

    private func reply(_ bytes: [UInt8], to xprt: UnsafeMutablePointer<SVCXPRT>, peer: MountPeer, procedure: MountProgram.Procedure) {
        let sent = bytes.withUnsafeBufferPointer {
            mountglue_sendreply_bytes(xprt, $0.baseAddress, UInt32($0.count))
        }
        if !sent {
            // UDP replies are limited to the datagram buffer (8800 bytes);
            // a TCP reply fails only when the peer is gone.
            log("\(procedure.name) reply of \(bytes.count) bytes to \(peer) could not be sent")
        }
    }

    enum PathArgument: Equatable {
        case path(String)
        case tooLong(length: UInt32)
        case unusable
        case garbage
    }

    static func pathArgument(_ xprt: UnsafeMutablePointer<SVCXPRT>, datagramLength: Int?) -> PathArgument {
        var argument = mountglue_path()
        let status = mountglue_getargs_path(xprt, &argument, UInt32(clamping: datagramLength ?? 0))
        return pathArgument(status, argument)
    }

    /// The same from the argument's bytes alone (fuzzing, tests).
    static func pathArgument(decoding bytes: [UInt8]) -> PathArgument {
        var argument = mountglue_path()
        let status = bytes.withUnsafeBufferPointer { buffer in
            // SAFETY: buffer covers the bytes for the call, which only reads them.
            mountglue_decode_path(buffer.baseAddress, UInt32(clamping: buffer.count), &argument)
        }
        return pathArgument(status, argument)
    }

    private static func pathArgument(_ status: mountglue_path_status, _ argument: mountglue_path) -> PathArgument {
        var argument = argument
        switch status {
        case MOUNTGLUE_PATH_OK:
            let bytes = withUnsafeBytes(of: &argument.bytes) { Array($0.prefix(Int(argument.length))) }
            guard !bytes.contains(0), let path = String(validating: bytes, as: UTF8.self) else { return .unusable }
            return .path(path)
        case MOUNTGLUE_PATH_TOO_LONG:
            return .tooLong(length: argument.length)
        default:
            return .garbage
        }
    }

    /// The caller's address as libtirpc recorded it for this call (the
    /// datagram's source for UDP, the connection's peer for TCP).
    static func peer(of xprt: UnsafeMutablePointer<SVCXPRT>, transport: MountTransport) -> MountPeer {
        let remote = xprt.pointee.xp_rtaddr
        guard let buffer = remote.buf,
              let address = SocketAddress(bytes: UnsafeRawBufferPointer(start: buffer, count: Int(remote.len))),
              let port = address.ipPort, let host = address.numericHost
        else {
            return MountPeer(address: "", port: 0, transport: transport.rawValue)
        }
        return MountPeer(address: host, port: port, transport: transport.rawValue)
    }
}
