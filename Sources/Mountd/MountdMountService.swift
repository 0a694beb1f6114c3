#if canImport(Glibc)
import Glibc
#endif
import MountdCore
import MountProtocol
import NFSAdmin
import NFSExports
import SystemEdge

/// The MOUNT protocol answers (NFSv3 clients), from the same export table
/// as the kernel upcalls: the client must be granted the path (or an
/// export above it), from a privileged port unless the export is
/// `insecure`; the filehandle comes from the kernel (/proc/fs/nfsd/filehandle)
/// after the client's domain and export are primed in its caches, as
/// nfs-utils does. rmtab records who mounted what.
public final class MountdMountService: MountService {
    let daemon: MountdDaemon
    let rmtab: RmtabStore
    let reverseLookup: Bool

    public init(daemon: MountdDaemon, reverseLookup: Bool) {
        self.daemon = daemon
        self.rmtab = RmtabStore(path: daemon.paths.rmtab)
        self.reverseLookup = reverseLookup
    }

    /// The caller as an IP client, or nil: MOUNT is the host nfsd's
    /// (NFSv3 never reaches the bridge's), so an address of a guest block
    /// is nobody here, and never gets an IP identity primed into the
    /// kernel's cache (that would give the guest IP exports and hide its
    /// own for as long as the entry lives).
    func identity(of peer: MountPeer) -> (ClientIdentity, IPAddress)? {
        guard let address = IPAddress(peer.address)?.unmapped else { return nil }
        switch daemon.hostView.identity(of: .ip(address)) {
        case .client:
            return (daemon.identity(of: address), address)
        case .nobody(let reason):
            daemon.log.notice("refused MOUNT call from \(peer.address):\(peer.port): \(reason)")
            return nil
        }
    }

    func hostName(_ peer: MountPeer, address: IPAddress) -> String {
        guard reverseLookup, let name = daemon.names.names(of: address).first else { return peer.address }
        return name
    }

    public func mount(path: String, version: UInt32, from peer: MountPeer) -> MountResult {
        daemon.reloadIfNeeded()
        let log = daemon.log
        guard let (identity, address) = identity(of: peer) else { return .error(.access) }
        let authority = daemon.authority
        guard let domain = authority.domain(for: identity, nameService: daemon.names) else {
            log.notice("refused mount request from \(peer.address) for \(path): not a client of any export")
            return .error(.access)
        }
        // EACCES, as nfs-utils answers, whether the path exists or not:
        // NOENT would tell any client which host paths exist.
        guard let real = FileSystem.realPath(daemon.paths.underRoot(path)).map(daemon.paths.unrooted) else {
            log.notice("refused mount request from \(peer.address) for \(path): no such path")
            return .error(.access)
        }
        // The export at the path, or the nearest one above it (NFSv3 may
        // mount a subdirectory of an export).
        let exports = authority.exports(forDomain: domain)
        var candidate = real
        var entry: ExportEntry? = exports[candidate]
        // Absolute, so it ends at "/" (a relative path would stop at ".").
        while entry == nil && candidate.hasPrefix("/") && candidate != "/" {
            candidate = PathName.directory(of: candidate)
            entry = exports[candidate]
        }
        guard let entry else {
            log.notice("refused mount request from \(peer.address) for \(path) (\(real)): not exported to it")
            return .error(.access)
        }
        if !entry.options.flags.contains(.insecurePort) && peer.port >= 1024 {
            log.notice("refused mount request from \(peer.address) for \(path) (\(entry.path)): illegal port \(peer.port)")
            return .error(.access)
        }
        // Prime the kernel's caches for this client and export, then ask it
        // for the filehandle.
        let expiry = Int(time(nil)) + daemon.options.ttl
        guard case .export(let answer) = authority.export(domain: domain, path: entry.path, info: daemon.filesystems.info) else {
            return .error(.access)
        }
        do {
            try FileSystem.writeMessage("nfsd \(address.kernelText) \(expiry) \(CacheText.word(domain))\n",
                                        to: daemon.paths.cacheChannel("auth.unix.ip"))
            try FileSystem.writeMessage(CacheReply.export(domain: domain, path: entry.path, expiry: expiry, export: answer),
                                        to: daemon.paths.cacheChannel("nfsd.export"))
        } catch {
            log.error("priming the kernel's caches for \(peer.address) \(entry.path): \(error)")
        }
        let size = version == 1 ? 32 : 64
        guard let handle = KernelFileHandle.get(domain: domain, path: real, maxSize: size, paths: daemon.paths) else {
            log.error("the kernel gave no filehandle for \(real) (domain \(domain))")
            return .error(.access)
        }
        rmtab.add(host: hostName(peer, address: address), path: path)
        log.info("authenticated mount request from \(peer.address):\(peer.port) for \(path) (\(entry.path))")
        let flavors = entry.options.effectiveSecurity.map { Int32(bitPattern: $0.flavor.number) }
        var unique: [Int32] = []
        for flavor in flavors where !unique.contains(flavor) { unique.append(flavor) }
        return .ok(fileHandle: handle, flavors: unique)
    }

    public func unmount(path: String, from peer: MountPeer) {
        guard let address = IPAddress(peer.address)?.unmapped else { return }
        rmtab.remove(host: hostName(peer, address: address), path: path)
    }

    public func unmountAll(from peer: MountPeer) {
        guard let address = IPAddress(peer.address)?.unmapped else { return }
        rmtab.remove(host: hostName(peer, address: address), path: nil)
    }

    public func mountList() -> [(host: String, directory: String)] { rmtab.entries() }

    public func exportList() -> [(directory: String, groups: [String])] {
        var order: [String] = []
        var groups: [String: [String]] = [:]
        for entry in daemon.authority.table.entries {
            if groups[entry.path] == nil { order.append(entry.path) }
            groups[entry.path, default: []].append(entry.clientName.isEmpty ? "*" : entry.clientName)
        }
        return order.map { ($0, groups[$0] ?? []) }
    }
}

/// /proc/fs/nfsd/filehandle: write "<domain> <path> <maxsize>", read back
/// the root filehandle as "\x<hex>".
enum KernelFileHandle {
    static func get(domain: String, path: String, maxSize: Int, paths: SystemPaths) -> [UInt8]? {
        let file = paths.procNFSD + "/filehandle"
        guard let fd = try? FileDescriptor.open(file, O_RDWR) else { return nil }
        defer { fd.close() }
        let request = Array("\(CacheText.word(domain)) \(CacheText.word(path)) \(maxSize)\n".utf8)
        guard (try? fd.writeMessage(request, for: file)) != nil else { return nil }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = (try? fd.read(into: &buffer, for: file)) ?? 0
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n").first ?? ""
        guard let words = try? CacheWords.split(text), let handle = words.first?.binary, !handle.isEmpty else { return nil }
        return handle
    }
}

/// rmtab: "host:path:0x<count>" lines, as nfs-utils keeps them.
final class RmtabStore: Sendable {
    let path: String
    private let lock = ThreadLock<Void>(())

    init(path: String) { self.path = path }

    func entries() -> [(host: String, directory: String)] {
        lock.withLock { _ in read().map { ($0.host, $0.path) } }
    }

    func add(host: String, path directory: String) {
        lock.withLock { _ in
            var list = read()
            if let index = list.firstIndex(where: { $0.host == host && $0.path == directory }) {
                list[index].count += 1
            } else {
                list.append((host, directory, 1))
            }
            write(list)
        }
    }

    func remove(host: String, path directory: String?) {
        lock.withLock { _ in
            write(read().filter { !($0.host == host && (directory == nil || $0.path == directory)) })
        }
    }

    private func read() -> [(host: String, path: String, count: Int)] {
        guard let bytes = try? FileSystem.readIfExists(path) else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            // The host has no ':' unless it is IPv6; the count is last and
            // the path is what lies between.
            guard let last = line.lastIndex(of: ":") else { return nil }
            let head = line[..<last]
            let count = Int(line[line.index(after: last)...].dropFirst(2), radix: 16) ?? 1
            guard let slash = head.firstRange(of: ":/") else { return nil }
            return (String(head[..<slash.lowerBound]), String(head[head.index(after: slash.lowerBound)...]), count)
        }
    }

    private func write(_ list: [(host: String, path: String, count: Int)]) {
        let text = list.map { entry in
            let hex = String(entry.count, radix: 16)
            return "\(entry.host):\(entry.path):0x" + String(repeating: "0", count: max(0, 8 - hex.count)) + hex + "\n"
        }.joined()
        _ = try? FileSystem.replaceIfChanged(path, with: Array(text.utf8))
    }
}
