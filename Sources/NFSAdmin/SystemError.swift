#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: which call, on what, and the errno it returned.
public struct SystemError: Error, Sendable, CustomStringConvertible, Equatable {
    public var call: String
    public var subject: String
    public var errno: Int32

    public init(_ call: String, _ subject: String, errno: Int32) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    public var errnoName: String { String(cString: strerror(errno)) }

    public var description: String { "\(call) \(subject): \(errnoName)" }
}

/// Runs a syscall that returns -1 and sets errno on failure, retrying on
/// EINTR, and turns failure into a thrown `SystemError`.
@discardableResult
func check<T: BinaryInteger>(_ call: String, _ subject: String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let error = Glibc.errno
        if error == EINTR { continue }
        throw SystemError(call, subject, errno: error)
    }
}
