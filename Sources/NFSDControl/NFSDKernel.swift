#if canImport(Glibc)
import Glibc
#endif
import NFSAdmin

/// The kernel NFS server's control files under /proc/fs/nfsd.
public struct NFSDKernel: Sendable {
    public var paths: SystemPaths

    public init(paths: SystemPaths) { self.paths = paths }

    func file(_ name: String) -> String { paths.procNFSD + "/" + name }

    public var isMounted: Bool { FileSystem.exists(file("threads")) }

    public func read(_ name: String) -> String? {
        guard let bytes = try? FileSystem.readIfExists(file(name)) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func write(_ name: String, _ text: String) throws(SystemError) {
        try FileSystem.writeMessage(text, to: file(name))
    }

    /// A file holding one number (nil: absent or not a number).
    public func integer(_ name: String) -> Int? {
        read(name).flatMap { Int($0.trimmingCharacters(in: " \n")) }
    }

    /// Running threads (0 when the server is stopped or absent).
    public var threads: Int { integer("threads") ?? 0 }

    /// The listeners, one "<transport> <port>" per line.
    public var portlist: [String] {
        (read("portlist") ?? "").split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// "+3 +4 +4.1 ..." as the kernel reports it.
    public var versions: String { (read("versions") ?? "").trimmingCharacters(in: " \n") }

    /// Loads the nfsd module if the kernel does not know the nfsd
    /// filesystem, then mounts it, as proc-fs-nfsd.mount does. Returns what
    /// it did, for the log.
    public func ensureMounted() throws(NFSDError) -> [String] {
        if isMounted { return [] }
        var done: [String] = []
        if !Self.kernelKnowsNFSDFilesystem() {
            let status = Self.runProgram(["/sbin/modprobe", "-q", "nfsd"])
            guard status == 0, Self.kernelKnowsNFSDFilesystem() else { throw .moduleMissing }
            done.append("loaded the nfsd module")
        }
        if mount("nfsd", paths.procNFSD, "nfsd", 0, nil) != 0 {
            throw .system(SystemError.current("mount -t nfsd nfsd", paths.procNFSD))
        }
        done.append("mounted \(paths.procNFSD)")
        return done
    }

    static func kernelKnowsNFSDFilesystem() -> Bool {
        guard let bytes = try? FileSystem.readIfExists("/proc/filesystems") else { return false }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").contains { $0.hasSuffix("\tnfsd") }
    }

    /// Runs a program and waits; returns its exit status (127 if it could
    /// not start).
    static func runProgram(_ arguments: [String]) -> Int32 {
        guard let pid = try? SystemCall.spawn(arguments) else { return 127 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

public enum NFSDError: Error, Sendable, CustomStringConvertible {
    case notRoot
    case moduleMissing
    case badSettings(String)
    case versionsBusy(SystemError)
    case system(SystemError)
    case listener(ListenerError)
    case handOver(ListenerSocket.Transport, String, SystemError)
    case noVsockTransport(port: UInt32, SystemError)
    /// The bridge's namespace or its nfsd instance could not be set up:
    /// vsock is not served (fail closed).
    case bridgeNamespace(SystemError)
    case noBridgeVersions
    /// --vsock 0 where the kernel serves vsock itself.
    case vsockListenerStays(String)

    public var description: String {
        switch self {
        case .notRoot:
            return "must be run as root (it writes /proc/fs/nfsd and binds privileged ports)"
        case .moduleMissing:
            return "the kernel has no NFS server: modprobe nfsd failed (install the kernel's nfsd module)"
        case .badSettings(let message):
            return message
        case .versionsBusy(let error):
            return "cannot change the NFS versions of a running server (\(error)): stop the server first: rpc.nfsd 0"
        case .system(let error):
            return "\(error)"
        case .listener(let error):
            return "\(error)"
        case .handOver(let transport, let name, let error):
            if error.errno == EBUSY {
                return "the kernel already has a \(transport.rawValue) listener on \(name) (\(error))"
            }
            if error.errno == ECONNREFUSED {
                return "the kernel could not register the \(transport.rawValue) listener \(name) with rpcbind (\(error)): NFSv3 needs rpcbind running; start it, or serve NFSv4 only with -N 3"
            }
            return "the kernel refused the \(transport.rawValue) listener \(name) (\(error))"
        case .bridgeNamespace(let error):
            return "cannot set up the vsock bridge's network namespace (\(error)); vsock is not served: without the namespace any host process could pass as a guest"
        case .vsockListenerStays(let listener):
            return "the kernel serves vsock itself (\(listener)), and a running server's listener cannot be taken away: stop the server (rpc.nfsd 0) and start it without --vsock"
        case .noBridgeVersions:
            return "vsock guests are served NFSv4.1 and 4.2 only (NFSv4.0 callbacks would have nfsd connect out from this host): enable 4.1 or 4.2"
        case .noVsockTransport(let port, let error):
            return "this kernel's NFS server has no AF_VSOCK transport (portlist refused the vsock:*:\(port) listener: \(error.errnoName)); vsock is not served: start the vsock bridge (nfs-vsock-bridge) for it"
        }
    }
}
