/// Which NFS version the kernel will mount with a list of NFS options,
/// read the way fs/nfs/fs_context.c reads them (pure):
///  - vers=, nfsvers= and the flags v2, v3, v4, v4.0, v4.1, v4.2 set the
///    version; a bare 4 sets only the major version and leaves the minor
///    one as it was: 0 unless minorversion= said otherwise;
///  - minorversion=N sets the minor version (a number as kstrtouint reads
///    it: decimal, 0x hex or 0 octal);
///  - a later option overrides an earlier one.
///
/// mount.vsock calls mount(2) itself, so nobody negotiates the minor
/// version as mount.nfs does: a bare vers=4 would be NFSv4.0. It does the
/// negotiation instead (4.2, then 4.1) and never offers 4.0.
enum NFSVersionChoice: Sendable, Equatable {
    /// No version option: mount.vsock adds its default, vers=4.1.
    case unspecified
    /// NFSv4 with this minor version (1 and up: 0 is refused).
    case v4(minor: UInt32)
    /// vers=4 with no minor version: try 4.2, then 4.1.
    case v4AnyMinor

    /// The minor versions tried, in order, for a bare vers=4.
    static let negotiatedMinors: [UInt32] = [2, 1]

    /// What each option, in order, does to the version; nil for options
    /// that do not touch it.
    enum Setting: Equatable {
        case major(String)
        case majorMinor(UInt32)
        case minor(UInt32)
        case invalid
    }

    static func setting(_ option: String) -> Setting? {
        let value: Substring
        if option.hasPrefix("vers=") {
            value = option.dropFirst("vers=".count)
        } else if option.hasPrefix("nfsvers=") {
            value = option.dropFirst("nfsvers=".count)
        } else if ["v2", "v3", "v4", "v4.0", "v4.1", "v4.2"].contains(option) {
            value = option.dropFirst()
        } else if option.hasPrefix("minorversion=") {
            guard let minor = kernelUInt32(option.dropFirst("minorversion=".count)) else { return .invalid }
            return .minor(minor)
        } else {
            return nil
        }
        switch value {
        case "2", "3", "4": return .major(String(value))
        case "4.0": return .majorMinor(0)
        case "4.1": return .majorMinor(1)
        case "4.2": return .majorMinor(2)
        default: return .invalid
        }
    }

    static func choose(_ options: [String]) throws(MountVsockRequest.Problem) -> NFSVersionChoice {
        var major = "4"
        var majorOption: String? = nil
        var minor: UInt32? = nil
        var minorOption = ""
        for option in options {
            switch setting(option) {
            case nil: continue
            case .invalid?:
                throw MountVsockRequest.Problem(message: "\(option): not an NFS version mount.vsock knows (use vers=4.1 or vers=4.2)")
            case .major(let value)?:
                major = value
                majorOption = option
            case .majorMinor(let value)?:
                major = "4"
                majorOption = option
                minor = value
                minorOption = option
            case .minor(let value)?:
                minor = value
                minorOption = option
            }
        }
        if major != "4", let option = majorOption {
            throw MountVsockRequest.Problem(message: "\(option): NFS over vsock is NFSv4 only (NFSv3 needs MOUNT and NLM side channels)")
        }
        switch minor {
        case 0?: throw MountVsockRequest.Problem(message: refusal(minorOption))
        case let value?: return .v4(minor: value)
        case nil: return majorOption == nil ? .unspecified : .v4AnyMinor
        }
    }

    /// Why NFSv4.0 is refused: its callback channel is a connection the
    /// host's NFS server opens to an address the client names (SETCLIENTID's
    /// callback address), which over the bridge could point the host at
    /// anything. NFSv4.1 and 4.2 call back over the client's own connection.
    static func refusal(_ option: String) -> String {
        "\(option): NFSv4.0 is refused: the host serves only NFSv4.1 and 4.2 to vsock guests, because an NFSv4.0 "
            + "callback would make the host's NFS server connect out to an address the guest names; "
            + "use vers=4.1 or vers=4.2 (4.1 is the default)"
    }

    /// A number as the kernel's fsparam_u32 (kstrtouint, base 0) reads it.
    static func kernelUInt32(_ text: Substring) -> UInt32? {
        var digits = text
        if digits.hasPrefix("+") { digits = digits.dropFirst() }
        // Swift's parser would also take a sign here; the kernel would not.
        guard digits.allSatisfy({ $0.isHexDigit || $0 == "x" || $0 == "X" }) else { return nil }
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { return digits.count > 2 ? UInt32(digits.dropFirst(2), radix: 16) : nil }
        if digits.hasPrefix("0") && digits.count > 1 { return UInt32(digits.dropFirst(), radix: 8) }
        return UInt32(digits, radix: 10)
    }
}
