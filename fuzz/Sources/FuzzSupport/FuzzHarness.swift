#if canImport(Glibc)
import Glibc
#endif
import CLibFuzzer

/// The entry point every fuzz target hands to libFuzzer: one input, 0 when
/// done (libFuzzer's contract; anything else is reserved).
public typealias FuzzEntry = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

public enum FuzzHarness {
    /// Runs libFuzzer's driver with the process's arguments. The targets
    /// have a main of their own because SwiftPM links every executable
    /// against `<module>_main`; libFuzzer's own main is not used.
    public static func run(_ entry: FuzzEntry) -> Never {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, entry))
    }

    /// The input as bytes (libFuzzer passes a null pointer for size 0).
    public static func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
        guard let data, size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// A broken invariant: print what differs and abort, so that libFuzzer
    /// saves the input as a crash.
    public static func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        let text = Array("fuzz invariant broken at \(file):\(line): \(message)\n".utf8)
        _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        abort()
    }
}
