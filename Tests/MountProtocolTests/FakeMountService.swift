import MountProtocol
import Synchronization

/// A MountService with fixed answers that records every call.
final class FakeMountService: MountService {
    enum Call: Equatable, Sendable {
        case mount(path: String, version: UInt32, peer: MountPeer)
        case unmount(path: String, peer: MountPeer)
        case unmountAll(peer: MountPeer)
        case mountList
        case exportList
    }

    static let handle3: [UInt8] = Array(1...28)
    static let handle1: [UInt8] = Array(101...120) // 20 bytes: the server pads to 32
    static let flavors: [Int32] = [390004, 1]
    static let exports: [(directory: String, groups: [String])] = [
        ("/srv/a", ["client1", "192.0.2.0/24"]),
        ("/srv/b", []),
        ("/srv/vm5", ["vsock:5"]),
    ]
    static let mounts: [(host: String, directory: String)] = [("192.0.2.7", "/srv/a"), ("client1", "/srv/vm5")]

    private let recorded = Mutex<[Call]>([])
    /// Answers for paths other than the usual ones.
    let answers: [String: MountResult]

    init(answers: [String: MountResult] = [:]) {
        self.answers = answers
    }

    var calls: [Call] { recorded.withLock { $0 } }

    func mount(path: String, version: UInt32, from peer: MountPeer) -> MountResult {
        recorded.withLock { $0.append(.mount(path: path, version: version, peer: peer)) }
        if let answer = answers[path] { return answer }
        switch path {
        case "/srv/a": return .ok(fileHandle: version == 1 ? Self.handle1 : Self.handle3, flavors: Self.flavors)
        case "/srv/secret": return .error(.access)
        default: return .error(.noent)
        }
    }

    func unmount(path: String, from peer: MountPeer) {
        recorded.withLock { $0.append(.unmount(path: path, peer: peer)) }
    }

    func unmountAll(from peer: MountPeer) {
        recorded.withLock { $0.append(.unmountAll(peer: peer)) }
    }

    func mountList() -> [(host: String, directory: String)] {
        recorded.withLock { $0.append(.mountList) }
        return Self.mounts
    }

    func exportList() -> [(directory: String, groups: [String])] {
        recorded.withLock { $0.append(.exportList) }
        return Self.exports
    }
}

/// Collects what the server logs.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var sink: @Sendable (String) -> Void { { [self] line in lines.withLock { $0.append(line) } } }
}
