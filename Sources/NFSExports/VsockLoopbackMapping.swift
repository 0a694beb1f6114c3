/// The bridge path's identity rule: each vsock guest's connections reach
/// the kernel NFS server from its own loopback address, a pure function of
/// its CID, so the kernel's auth.unix.ip upcall names an address that
/// mountd turns back into `vsock:CID`.
///
/// The block is an IPv4 prefix inside 127.0.0.0/8 (default 127.128.0.0/9);
/// CID c maps to block base + c. CID 0 (the hypervisor) and CIDs beyond the
/// block's size have no address: the bridge refuses them. CID 1 (the local
/// loopback transport: a process on this host) and 2 (the host) do map, so
/// that explicit `vsock:1` rules work for loopback tests; `vsock:*` and
/// ranges never match them. Every address in the block is a vsock address:
/// IP rules never match it, and an address that is not a valid mapping
/// gets no access at all. The block never holds 127.0.0.0/24 (127.0.0.1 is
/// nfsd's own listener and what host processes use).
public struct VsockLoopbackMapping: Sendable, Hashable, CustomStringConvertible {
    public let base: UInt32
    public let prefix: Int

    public static let `default` = VsockLoopbackMapping(base: 0x7F80_0000, prefix: 9)

    public init(base: UInt32, prefix: Int) {
        self.base = base
        self.prefix = prefix
    }

    /// Parses "127.128.0.0/9": an aligned block inside 127.0.0.0/8, at
    /// least /9 and at most /24, that does not hold 127.0.0.0/24.
    public init?(_ text: String) {
        guard case .success(let mapping) = Self.parse(text) else { return nil }
        self = mapping
    }

    public typealias Problem = NFSExports.Problem

    /// What a block must be, in words for the administrator.
    public static let requirement = "an aligned block from /9 to /24 inside 127.0.0.0/8 that does not hold 127.0.0.0/24 (e.g. 127.128.0.0/9)"

    public static func parse(_ text: String) -> Result<VsockLoopbackMapping, Problem> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, case .v4(let address)? = IPAddress(ipv4: parts[0]),
              let prefix = Int(parts[1]), (9...24).contains(prefix),
              address >> 24 == 127
        else { return .failure(Problem("\"\(text)\" is not \(requirement)")) }
        let mask: UInt32 = ~(UInt32.max >> UInt32(prefix))
        guard address & ~mask == 0 else {
            return .failure(Problem("\"\(text)\" is not aligned: \(IPAddress.v4(address & mask))/\(prefix) is the block that holds it"))
        }
        // 127.0.0.0/24 inside the block: guests would arrive as addresses
        // host processes use, and IP rules (127.0.0.1) would match them.
        if address & mask == 0x7F00_0000 {
            return .failure(Problem("\"\(text)\" holds 127.0.0.0/24 (127.0.0.1 and the addresses host processes use): choose a block such as 127.128.0.0/9"))
        }
        return .success(VsockLoopbackMapping(base: address, prefix: prefix))
    }

    public var description: String { "\(IPAddress.v4(base))/\(prefix)" }

    var size: UInt32 { UInt32(1) << UInt32(32 - prefix) }

    /// The highest CID that has an address.
    public var maxCID: VsockCID { size - 1 }

    public func address(of cid: VsockCID) -> IPAddress? {
        guard cid >= 1, cid <= maxCID else { return nil }
        return .v4(base + cid)
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard case .v4(let value) = address.unmapped else { return false }
        return value >= base && value - base < size
    }

    public enum Resolution: Sendable, Equatable {
        /// Not in the block: an ordinary IP client.
        case notVsock
        /// A guest.
        case guest(VsockCID)
        /// In the block but no guest's address: no access.
        case invalid
    }

    public func resolve(_ address: IPAddress) -> Resolution {
        guard contains(address), case .v4(let value) = address.unmapped else { return .notVsock }
        let cid = value - base
        return cid >= 1 ? .guest(cid) : .invalid
    }

    /// What a client address means for matching.
    public func identity(of address: IPAddress) -> ClientAddress? {
        switch resolve(address) {
        case .notVsock: .ip(address)
        case .guest(let cid): .vsock(cid)
        case .invalid: nil
        }
    }
}
