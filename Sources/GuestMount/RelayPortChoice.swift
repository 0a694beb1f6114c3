/// Which guest loopback port the relay listens on (pure: the sysctl is read
/// and the ports are bound elsewhere).
///
/// The NFS client reconnects to the relay's port for as long as the mount
/// lives. If the relay died on an unprivileged port, any guest user could
/// listen there and serve the mount; a port only root may bind keeps that
/// to root. Which ports those are is the namespace's
/// net.ipv4.ip_unprivileged_port_start, not a fixed 1024.
enum RelayPortChoice {
    static let sysctl = "net.ipv4.ip_unprivileged_port_start"
    static let sysctlPath = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
    /// Kernels before 4.11 have no sysctl: ports below 1024 are privileged.
    static let defaultStart = 1024

    /// The first port an unprivileged process may bind, from the sysctl's
    /// text (nil: the file does not exist). Nil for text that is not a
    /// number, which leaves no port the relay can trust.
    static func unprivilegedPortStart(sysctlText: String?) -> Int? {
        guard let text = sysctlText else { return defaultStart }
        return Int(text.filter { !$0.isWhitespace })
    }

    /// The ports to try, best first: the highest privileged one downward.
    /// The start counts as 1024 at most: ports above that are privileged
    /// only while the sysctl stays raised, and services expect them to be
    /// ordinary ones. Empty when no port is privileged (0 or 1: port 0 is
    /// no port).
    static func candidates(unprivilegedPortStart start: Int) -> [UInt16] {
        let highest = min(start, defaultStart) - 1
        guard highest >= 1 else { return [] }
        return (1...highest).reversed().map { UInt16($0) }
    }
}
