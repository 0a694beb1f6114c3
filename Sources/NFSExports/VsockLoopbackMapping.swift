/// The bridge path's identity rule: each vsock guest's connections reach
/// the kernel NFS server from its own loopback address, a pure function of
/// its CID, so the kernel's auth.unix.ip upcall names an address that
/// mountd turns back into `vsock:CID`.
///
/// The block is an IPv4 prefix inside 127.0.0.0/8 (default 127.128.0.0/9);
/// CID c maps to block base + c. CID 0 (the hypervisor) and CIDs beyond the
/// block's size have no address: the bridge refuses them. CID 1 (the local
/// loopback transport: a process on this host) and 2 (the host) do map, so
/// that `vsock:1` rules work for loopback tests; exports(5) warns about them.
/// Every address in the block is a vsock address: IP rules never match it,
/// and an address that is not a valid mapping gets no access at all.
public struct VsockLoopbackMapping: Sendable, Hashable, CustomStringConvertible {
    public let base: UInt32
    public let prefix: Int

    public static let `default` = VsockLoopbackMapping(base: 0x7F80_0000, prefix: 9)

    public init(base: UInt32, prefix: Int) {
        self.base = base
        self.prefix = prefix
    }

    /// Parses "127.128.0.0/9": an aligned block inside 127.0.0.0/8, at
    /// least /9 and at most /24.
    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, case .v4(let address)? = IPAddress(ipv4: parts[0]),
              let prefix = Int(parts[1]), (9...24).contains(prefix),
              address >> 24 == 127
        else { return nil }
        let mask: UInt32 = ~(UInt32.max >> UInt32(prefix))
        guard address & ~mask == 0 else { return nil }
        self.init(base: address, prefix: prefix)
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
