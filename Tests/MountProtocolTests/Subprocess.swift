#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Runs system tools (rpcbind, rpcinfo, showmount) for the tests.
enum Subprocess {
    struct Finished {
        var status: Int32
        var output: String
    }

    /// The first of `/usr/sbin`, `/sbin`, `/usr/bin`, `/bin` holding `name`.
    static func tool(_ name: String) -> String? {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// Runs to completion (under coreutils' `timeout`), stdout and stderr together.
    static func run(_ arguments: [String], seconds: Int = 20) throws -> Finished {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        let pid = try spawn(["/usr/bin/timeout", "\(seconds)"] + arguments, output: fds[1])
        close(fds[1])
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fds[0], &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        close(fds[0])
        return Finished(status: wait(pid), output: String(decoding: output, as: UTF8.self))
    }

    /// Starts a process with its output sent to `output` (a descriptor) or /dev/null.
    static func spawn(_ arguments: [String], output: Int32? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, output, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        // Test threads block signals (the child would inherit that and
        // ignore SIGTERM): give the child an empty mask and default actions.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, environ)
        try #require(spawned == 0, "posix_spawn \(arguments[0]): \(String(cString: strerror(spawned)))")
        return pid
    }

    /// Waits for `pid`; its exit status, or 128 + signal.
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
