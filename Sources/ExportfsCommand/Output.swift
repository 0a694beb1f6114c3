#if canImport(Glibc)
import Glibc
#endif

/// Where exportfs prints: standard output for listings, standard error for
/// diagnostics. A protocol so tests can capture both.
public protocol ExportfsOutput {
    func out(_ text: String)
    func err(_ text: String)
}

public struct StandardStreams: ExportfsOutput {
    public init() {}
    public func out(_ text: String) { write(1, text) }
    public func err(_ text: String) { write(2, text) }

    private func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { raw in
                // SAFETY: raw covers the remaining bytes.
                Glibc.write(fd, raw.baseAddress, raw.count)
            }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}

public final class CapturedOutput: ExportfsOutput {
    public private(set) var stdout = ""
    public private(set) var stderr = ""
    public init() {}
    public func out(_ text: String) { stdout += text }
    public func err(_ text: String) { stderr += text }
}
