/// A daemon's messages: to the journal with syslog priorities when systemd
/// runs it (JOURNAL_STREAM set: "<N>" prefixes), to standard error with the
/// program's name otherwise.
public struct DaemonLog: Sendable {
    public enum Priority: Int, Sendable {
        case error = 3, warning = 4, notice = 5, info = 6, debug = 7
    }

    public var name: String
    public var journal: Bool
    public var debug: Bool

    public init(name: String, environment: [String: String], debug: Bool) {
        self.name = name
        journal = environment["JOURNAL_STREAM"] != nil
        self.debug = debug
    }

    public func log(_ priority: Priority, _ message: String) {
        if priority == .debug && !debug { return }
        Console.err(journal ? "<\(priority.rawValue)>\(message)\n" : "\(name): \(message)\n")
    }

    public func error(_ message: String) { log(.error, message) }
    public func warning(_ message: String) { log(.warning, message) }
    public func notice(_ message: String) { log(.notice, message) }
    public func info(_ message: String) { log(.info, message) }
    public func trace(_ message: String) { log(.debug, message) }
}
