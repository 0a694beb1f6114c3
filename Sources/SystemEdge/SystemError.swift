#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: which call, on what, and the errno it returned.
///
/// The one way a failed system call becomes an error: `SystemCall.check`
/// for a call that returns -1 and sets errno, `SystemError.current` when
/// the -1 has already been seen, `SystemError.describe` for an errno's text
/// where no error is thrown (a log line, a diagnostic).
public struct SystemError: Error, Sendable, CustomStringConvertible, Equatable {
    public var call: String
    public var subject: String
    public var errno: Int32

    public init(_ call: String, _ subject: String, errno: Int32) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    /// The error for `call` on `subject` with the calling thread's errno as
    /// it is now: for right after a call has returned -1 (or NULL).
    public static func current(_ call: String, _ subject: String) -> SystemError {
        SystemError(call, subject, errno: Glibc.errno)
    }

    /// strerror(3)'s text for an errno ("Permission denied").
    public static func describe(_ errno: Int32) -> String { String(cString: strerror(errno)) }

    public var errnoName: String { Self.describe(errno) }

    public var description: String { "\(call) \(subject): \(errnoName)" }
}

/// Running system calls.
public enum SystemCall {
    /// Runs a syscall that returns -1 and sets errno on failure, retrying on
    /// EINTR, and turns failure into a thrown `SystemError` of `call` on
    /// `subject`.
    @discardableResult
    public static func check<T: BinaryInteger>(_ call: String, _ subject: String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let error = Glibc.errno
            if error == EINTR { continue }
            throw SystemError(call, subject, errno: error)
        }
    }
}
