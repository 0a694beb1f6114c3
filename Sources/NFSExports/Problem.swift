/// What is wrong with a setting, an argument or a start-up step, in words
/// for the administrator: the one error type of that shape (the bridge's
/// configuration, the guest block, rpc.nfsd's settings, mount.vsock's
/// arguments, exportfs's client:path, the bridge's start, a kernel cache
/// line mountd cannot read, an nfs.conf value of the wrong type), each of
/// which names it as its own `Problem` (`CacheWords.Malformed`,
/// `NFSConf.Mismatch`).
public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }
    public init(message: String) { self.message = message }

    public var description: String { message }
}
