#if canImport(Glibc)
import Glibc
#endif

extension SystemCall {
    /// What posix_spawn does to the child's descriptors before exec, in order.
    public enum SpawnAction: Sendable, Equatable {
        /// open(path, flags, mode) onto descriptor `fd`.
        case open(fd: Int32, path: String, flags: Int32, mode: mode_t)
        /// dup2(from, to).
        case duplicate(Int32, to: Int32)
    }

    /// Starts `arguments[0]` with `arguments` as its argv and returns its
    /// pid; the caller reaps it. `environment` ("NAME=value" each) replaces
    /// this process's (nil: the child gets this process's environ);
    /// `newSession` makes the child leave our session (POSIX_SPAWN_SETSID);
    /// `searchPath` looks a name without a slash up in PATH (posix_spawnp).
    /// The signal mask and dispositions are inherited, as posix_spawn does
    /// without attributes. Throws `SystemError("spawn", arguments[0])` with
    /// posix_spawn's error.
    public static func spawn(_ arguments: [String], environment: [String]? = nil, actions: [SpawnAction] = [],
                             newSession: Bool = false, searchPath: Bool = false) throws(SystemError) -> pid_t {
        precondition(!arguments.isEmpty, "spawn needs at least the program")
        let fileActions = UnsafeMutablePointer<posix_spawn_file_actions_t>.allocate(capacity: 1)
        defer { fileActions.deallocate() }
        posix_spawn_file_actions_init(fileActions)
        defer { posix_spawn_file_actions_destroy(fileActions) }
        for action in actions {
            switch action {
            case .open(let fd, let path, let flags, let mode): posix_spawn_file_actions_addopen(fileActions, fd, path, flags, mode)
            case .duplicate(let from, let to): posix_spawn_file_actions_adddup2(fileActions, from, to)
            }
        }
        let attributes = UnsafeMutablePointer<posix_spawnattr_t>.allocate(capacity: 1)
        defer { attributes.deallocate() }
        posix_spawnattr_init(attributes)
        defer { posix_spawnattr_destroy(attributes) }
        // POSIX_SPAWN_SETSID (glibc, 0x80).
        if newSession { posix_spawnattr_setflags(attributes, 0x80) }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envp: [UnsafeMutablePointer<CChar>?] = (environment ?? []).map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        // Neither actions nor flags: NULL for them, as posix_spawn(…, NULL, NULL, …).
        let actionsArgument = actions.isEmpty ? nil : fileActions
        let attributesArgument = newSession ? attributes : nil
        let status = envp.withUnsafeMutableBufferPointer { envp in
            let childEnvironment = environment == nil ? environ : envp.baseAddress
            return searchPath
                ? posix_spawnp(&pid, arguments[0], actionsArgument, attributesArgument, &argv, childEnvironment)
                : posix_spawn(&pid, arguments[0], actionsArgument, attributesArgument, &argv, childEnvironment)
        }
        guard status == 0 else { throw SystemError("spawn", arguments[0], errno: status) }
        return pid
    }
}
