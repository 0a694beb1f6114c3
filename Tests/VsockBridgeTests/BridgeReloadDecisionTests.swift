import Testing
import NFSAdmin
@testable import VsockBridge

/// Records what a reload asked of the bridge.
private final class RecordingEffects: BridgeReloadEffects, @unchecked Sendable {
    var serving: [Bridge.Listener]
    var failingPorts: Set<UInt32> = []
    var descriptorProblem: String?
    var stopped: [Int32] = []
    var opened: [UInt32] = []
    var raisedFor: [Int] = []
    var applied: BridgeConfiguration?

    init(serving: [Bridge.Listener]) { self.serving = serving }

    struct Failure: Error, CustomStringConvertible { var description: String }

    func stop(_ listener: Bridge.Listener) { stopped.append(listener.fd) }

    func openVsock(_ port: UInt32) throws {
        if failingPorts.contains(port) { throw Failure(description: "bind vsock:*:\(port): Address already in use") }
        opened.append(port)
    }

    func raiseDescriptors(maxConnections: Int, listeners: Int) throws -> String? {
        if let descriptorProblem { throw Failure(description: descriptorProblem) }
        raisedFor.append(maxConnections)
        return "descriptors raised for \(maxConnections)"
    }

    func apply(_ configuration: BridgeConfiguration) -> [String] {
        applied = configuration
        return ["applied"]
    }
}

@Suite("bridge reload decisions (BridgeReload.run)")
struct BridgeReloadDecisionTests {
    @Test("ports are opened and stopped, the target stays, the outcome says each")
    func listeners() {
        var current = BridgeConfiguration()
        current.vsockPorts = [2049, 4049]
        var read = current
        read.vsockPorts = [2049, 3049]
        read.targetPort = 3049
        let effects = RecordingEffects(serving: [.vsock(fd: 10, port: 2049), .vsock(fd: 11, port: 4049)])
        let outcome = BridgeReload.run(current: current, read: read, listenersFromSystemd: false, guestsMaxConnections: nil, effects: effects)
        #expect(effects.stopped == [11])
        #expect(effects.opened == [3049])
        #expect(effects.applied?.vsockPorts == [2049, 3049])
        #expect(outcome.notice == "reloaded: applied; the target stays 127.0.0.1:2049 (restart the bridge to change it); stopped listening on vsock:*:4049 (its open connections stay); listening on vsock:*:3049; no connection dropped")
        #expect(outcome.errors.isEmpty && outcome.warnings.isEmpty)
    }

    @Test("a port that cannot be opened is left out of the running configuration, with an error")
    func portFails() {
        let current = BridgeConfiguration()
        var read = current
        read.vsockPorts = [2049, 3049]
        let effects = RecordingEffects(serving: [.vsock(fd: 10, port: 2049)])
        effects.failingPorts = [3049]
        let outcome = BridgeReload.run(current: current, read: read, listenersFromSystemd: false, guestsMaxConnections: nil, effects: effects)
        #expect(effects.applied?.vsockPorts == [2049])
        #expect(outcome.errors == ["reload: cannot listen on vsock:*:3049: bind vsock:*:3049: Address already in use"])
    }

    @Test("no ports and no sockets read means the default port, as at start")
    func defaultPort() {
        var current = BridgeConfiguration()
        current.vsockPorts = [2049]
        let effects = RecordingEffects(serving: [.vsock(fd: 10, port: 2049)])
        let outcome = BridgeReload.run(current: current, read: BridgeConfiguration(), listenersFromSystemd: false, guestsMaxConnections: nil, effects: effects)
        #expect(effects.stopped.isEmpty && effects.opened.isEmpty)
        #expect(effects.applied?.vsockPorts == [2049])
        #expect(outcome.notice == "reloaded: applied; no connection dropped")
    }

    @Test("a new hybrid-vsock socket is refused (it takes root), the others stay")
    func hybridNeedsRestart() {
        var current = BridgeConfiguration()
        current.unixListeners = [.init(path: "/run/vm7.sock_2049", cid: 7)]
        var read = current
        read.unixListeners.append(.init(path: "/run/vm9.sock_2049", cid: 9))
        let effects = RecordingEffects(serving: [.unix(fd: 12, path: "/run/vm7.sock_2049", cid: 7)])
        let outcome = BridgeReload.run(current: current, read: read, listenersFromSystemd: false, guestsMaxConnections: nil, effects: effects)
        #expect(effects.applied?.unixListeners == current.unixListeners)
        #expect(outcome.errors.count == 1 && outcome.errors[0].hasPrefix("reload: not opening the hybrid-vsock socket /run/vm9.sock_2049 (CID 9)"))
    }

    @Test("systemd's listeners are left alone; a changed port list is a warning, an unchanged one is not")
    func systemdListeners() {
        // Under systemd the bridge was started with no ports of its own.
        let current = BridgeConfiguration()
        let serving: [Bridge.Listener] = [.vsock(fd: 3, port: 2049)]
        let quiet = RecordingEffects(serving: serving)
        let same = BridgeReload.run(current: current, read: current, listenersFromSystemd: true, guestsMaxConnections: nil, effects: quiet)
        #expect(same.warnings.isEmpty, "an unchanged reload under systemd warns of nothing")
        #expect(quiet.applied?.vsockPorts == [] && quiet.stopped.isEmpty && quiet.opened.isEmpty)
        var read = current
        read.vsockPorts = [3049]
        let effects = RecordingEffects(serving: serving)
        let changed = BridgeReload.run(current: current, read: read, listenersFromSystemd: true, guestsMaxConnections: nil, effects: effects)
        #expect(effects.stopped.isEmpty && effects.opened.isEmpty)
        #expect(effects.applied?.vsockPorts == [])
        #expect(changed.warnings == ["reload: the listeners are systemd's (nfs-vsock-bridge.socket): change them there"])
    }

    @Test("more connections raise the descriptor limit; if that fails the old cap stays")
    func descriptors() {
        var current = BridgeConfiguration()
        current.vsockPorts = [2049]
        current.maxConnections = 1024
        var read = current
        read.maxConnections = 4096
        let serving: [Bridge.Listener] = [.vsock(fd: 10, port: 2049)]
        let raising = RecordingEffects(serving: serving)
        let raised = BridgeReload.run(current: current, read: read, listenersFromSystemd: false, guestsMaxConnections: nil, effects: raising)
        #expect(raising.raisedFor == [4096] && raising.applied?.maxConnections == 4096)
        #expect(raised.notice.contains("descriptors raised for 4096"))
        let failing = RecordingEffects(serving: serving)
        failing.descriptorProblem = "setrlimit: Operation not permitted"
        let kept = BridgeReload.run(current: current, read: read, listenersFromSystemd: false, guestsMaxConnections: nil, effects: failing)
        #expect(failing.applied?.maxConnections == 1024)
        #expect(kept.errors == ["reload: setrlimit: Operation not permitted; max-connections stays 1024"])
        let fewer = RecordingEffects(serving: serving)
        read.maxConnections = 512
        _ = BridgeReload.run(current: current, read: read, listenersFromSystemd: false, guestsMaxConnections: nil, effects: fewer)
        #expect(fewer.raisedFor.isEmpty, "fewer connections need no more descriptors")
    }

    @Test("max-connections above the guests' nfsd's max_connections is a warning")
    func guestsLimit() {
        var current = BridgeConfiguration()
        current.vsockPorts = [2049]
        let serving: [Bridge.Listener] = [.vsock(fd: 10, port: 2049)]
        let over = BridgeReload.run(current: current, read: current, listenersFromSystemd: false, guestsMaxConnections: 100, effects: RecordingEffects(serving: serving))
        #expect(over.warnings == ["max-connections 1024 is above the guests' nfsd's max_connections 100: run rpc.nfsd --vsock PORT again to raise it"])
        for limit in [nil, 0, 1088] as [Int?] {
            let fine = BridgeReload.run(current: current, read: current, listenersFromSystemd: false, guestsMaxConnections: limit, effects: RecordingEffects(serving: serving))
            #expect(fine.warnings.isEmpty, "max_connections \(String(describing: limit))")
        }
    }
}
