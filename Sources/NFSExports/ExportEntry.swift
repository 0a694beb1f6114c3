/// One export of one path to one client, as read from an exports file,
/// an etab or a command line.
public struct ExportEntry: Sendable, Hashable {
    /// The exported path: decoded from quotes and `\ooo` escapes, and, once
    /// the I/O layer has resolved it, the real path (symlinks followed).
    public var path: String
    public var client: ClientSpec
    /// The client name as etab and the kernel see it: the spec as written,
    /// or a host's canonical name once resolved.
    public var clientName: String
    public var options: ExportOptions
    /// Where the client spec was written.
    public var location: SourceLocation

    public init(path: String, client: ClientSpec, clientName: String, options: ExportOptions, location: SourceLocation) {
        self.path = path
        self.client = client
        self.clientName = clientName
        self.options = options
        self.location = location
    }

    /// "client:/path", the way exportfs names an export in messages.
    public var displayName: String { "\(clientName.isEmpty ? "*" : clientName):\(path)" }
}
