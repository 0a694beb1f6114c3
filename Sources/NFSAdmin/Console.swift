#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes to standard output and standard error (the C stdio
/// globals are not concurrency-safe in Swift 6).
public enum Console {
    public static func out(_ text: String) { write(1, text) }
    public static func err(_ text: String) { write(2, text) }

    /// All of `text`, or as much as goes before a write fails (a closed
    /// pipe): there is nowhere left to report that.
    public static func write(_ fd: Int32, _ text: String) {
        try? FileDescriptor(rawValue: fd).writeAll(Array(text.utf8), for: "the console")
    }
}
