#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes to standard output and standard error (the C stdio
/// globals are not concurrency-safe in Swift 6).
public enum Console {
    public static func out(_ text: String) { write(1, text) }
    public static func err(_ text: String) { write(2, text) }

    public static func write(_ fd: Int32, _ text: String) {
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
