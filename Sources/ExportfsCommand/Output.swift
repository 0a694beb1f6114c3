import NFSAdmin

/// Where exportfs prints: standard output for listings, standard error for
/// diagnostics. A protocol so tests can capture both.
public protocol ExportfsOutput {
    func out(_ text: String)
    func err(_ text: String)
}

public struct StandardStreams: ExportfsOutput {
    public init() {}
    public func out(_ text: String) { Console.out(text) }
    public func err(_ text: String) { Console.err(text) }
}

public final class CapturedOutput: ExportfsOutput {
    public private(set) var stdout = ""
    public private(set) var stderr = ""
    public init() {}
    public func out(_ text: String) { stdout += text }
    public func err(_ text: String) { stderr += text }
}
