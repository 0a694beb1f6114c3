import Glibc
import NFSAdmin
import Testing
@testable import NFSDControl

private let instance = NFSDController.BridgeInstance(
    namespace: "nfs-vsock", listener: "127.0.0.1:2049", versions: [.v4_1, .v4_2], threads: 8,
    guestBlock: "127.128.0.0/9", bridgeMaxConnections: 1024, maxConnections: 1088)

private let through = "through its own nfsd (tcp 127.0.0.1:2049 in network namespace nfs-vsock, NFSv4.1 and 4.2; NFSv4.0 is off for guests: its callbacks would have nfsd connect out from this host; max_connections 1088 (the bridge's max-connections 1024 + 64))"

private func report(ports: [UInt32] = [2049], running: Bool = false, kept: Bool = false) -> NFSDController.Report {
    var report = NFSDController.Report()
    report.vsockForBridge = ports
    report.bridgeInstance = ports.isEmpty ? nil : instance
    report.alreadyRunning = running
    report.bridgeInstanceKept = kept
    return report
}

private func bridged(ports: [UInt32] = [2049], running: Bool = false, kept: Bool = false) throws -> BridgeServicePolicy.Bridged {
    try #require(BridgeServicePolicy.Bridged(report(ports: ports, running: running, kept: kept)))
}

@Suite("rpc.nfsd's bridge policy")
struct BridgeServicePolicyTests {
    @Test("no bridge without vsock ports the kernel refused, or without the guests' nfsd")
    func nothingBridged() {
        #expect(BridgeServicePolicy.Bridged(report(ports: [])) == nil)
        var noInstance = report()
        noInstance.bridgeInstance = nil
        #expect(BridgeServicePolicy.Bridged(noInstance) == nil)
    }

    @Test("how the ports are served", arguments: [
        // systemd's socket units serve them, whatever runs.
        (true, false, false, pid_t?(77), [UInt32]?([2049]), BridgeServicePolicy.Decision.servedBySystemd),
        (true, true, true, nil, nil, .servedBySystemd),
        // A fresh server: a bridge is started.
        (false, false, false, nil, nil, .start(stopping: nil)),
        // A fresh server never stops a bridge by its marker (start replaces a stray one).
        (false, false, false, 77, [3049], .start(stopping: nil)),
        // A running server whose bridge serves exactly these ports keeps it.
        (false, true, true, 77, [2049], .keep(pid: 77)),
        // ... but not when the bridge is gone.
        (false, true, true, nil, [2049], .start(stopping: [2049])),
        // ... nor when it serves other ports: it is stopped and replaced.
        (false, true, true, 77, [3049], .start(stopping: [3049])),
        // The guests' nfsd was started by this run: a new bridge for it.
        (false, true, false, 77, [2049], .start(stopping: [2049])),
        (false, true, false, nil, nil, .start(stopping: nil)),
    ])
    func decide(underSystemd: Bool, running: Bool, kept: Bool, pid: pid_t?, wanted: [UInt32]?,
                decision: BridgeServicePolicy.Decision) throws {
        let bridged = try bridged(running: running, kept: kept)
        #expect(bridged.decide(underSystemd: underSystemd, running: .init(pid: pid, wantedPorts: wanted)) == decision)
    }

    // Before: the marker was rewritten with the new ports and then read as
    // the running bridge's, so a bridge serving 2049 was "left running"
    // for --vsock 3049, and the stop message named the new ports.
    @Test("a running bridge for other ports is replaced, and the message names the ports it served")
    func otherPorts() throws {
        let replacing = try bridged(ports: [3049], running: true, kept: true)
        let decision = replacing.decide(underSystemd: false, running: .init(pid: 77, wantedPorts: [2049]))
        #expect(decision == .start(stopping: [2049]))
        #expect(BridgeServicePolicy.Bridged.stoppedLine(served: [2049])
                == .always("rpc.nfsd: stopped nfs-vsock-bridge, which served vsock port 2049 (its guests reconnect)"))
        // The same ports in another order are the same bridge.
        let two = try bridged(ports: [3049, 2049], running: true, kept: true)
        #expect(two.decide(underSystemd: false, running: .init(pid: 77, wantedPorts: [2049, 3049])) == .keep(pid: 77))
    }

    @Test("what it says for each way of serving")
    func lines() throws {
        let bridged = try bridged(ports: [2049, 3049])
        #expect(bridged.target == "127.0.0.1:2049")
        #expect(bridged.servedBySystemdLine == .always("rpc.nfsd: vsock port 2049, 3049: the kernel has no AF_VSOCK transport; served by nfs-vsock-bridge.socket (systemd) \(through)"))
        #expect(bridged.keptLine(pid: 77) == .always("rpc.nfsd: vsock port 2049, 3049: served by nfs-vsock-bridge (pid 77) \(through); left running, its guests keep their connections"))
        #expect(bridged.startedLine(pid: 78, user: "nfs-vsock-bridge", log: "/var/log/nfs-vsock-bridge.log")
                == .always("rpc.nfsd: vsock port 2049, 3049: the kernel has no AF_VSOCK transport; served by nfs-vsock-bridge (pid 78, user nfs-vsock-bridge) \(through); its log: /var/log/nfs-vsock-bridge.log"))
        #expect(BridgeServicePolicy.Bridged.missingUser("nobody2").description.contains("nobody2, the user nfs-vsock-bridge runs as (create it: useradd --system"))
    }

    @Test("a bridge that cannot start: what is undone", arguments: [
        // A server this run started goes with it.
        (false, false, BridgeServicePolicy.Cleanup.stopServer, "the server was stopped"),
        // A running server keeps its IP clients; the guests' nfsd this run started goes.
        (true, false, .stopBridgeInstance, "vsock is not served, IP service is left as it was"),
        // A guests' nfsd that was running already stays.
        (true, true, .none, "vsock is not served, IP service is left as it was"),
    ])
    func failedStart(running: Bool, kept: Bool, cleanup: BridgeServicePolicy.Cleanup, ending: String) throws {
        let failure = try bridged(running: running, kept: kept).afterFailedStart("no such file")
        #expect(failure.cleanup == cleanup)
        #expect(failure.line == .error("rpc.nfsd: cannot start nfs-vsock-bridge for vsock port 2049: no such file; " + ending))
    }

    @Test("rpc.nfsd 0 stops the bridge first; the wanted marker goes only where a fresh start bridges nothing")
    func beforeAndAfter() {
        var settings = NFSDSettings()
        #expect(!BridgeServicePolicy.stopsBridgeBeforeStart(settings))
        settings.threads = 0
        #expect(BridgeServicePolicy.stopsBridgeBeforeStart(settings))
        #expect(BridgeServicePolicy.clearsWanted(after: report(ports: [])))
        #expect(!BridgeServicePolicy.clearsWanted(after: report(ports: [], running: true)))
        #expect(!BridgeServicePolicy.clearsWanted(after: report()))
    }

    @Test("what a start says about the host's nfsd")
    func serverLines() {
        var fresh = report(ports: [])
        fresh.threads = 8
        fresh.listeners = ["tcp 2049", "udp 2049"]
        fresh.vsockServedByKernel = [2049]
        #expect(BridgeServicePolicy.serverLines(fresh, threads: 8) == [
            .verbose("nfsd: 8 threads; listening on tcp 2049, udp 2049"),
            .always("rpc.nfsd: listening on tcp 2049"), .always("rpc.nfsd: listening on udp 2049"),
            .always("rpc.nfsd: vsock port 2049: served by the kernel"),
        ])
        var vsockOnly = report(ports: [])
        vsockOnly.threads = 8
        #expect(BridgeServicePolicy.serverLines(vsockOnly, threads: 8) == [
            .verbose("nfsd: 8 threads; listening on "), .always("rpc.nfsd: no IP listener: IP clients are not served"),
        ])
        #expect(BridgeServicePolicy.serverLines(report(ports: []), threads: 0).isEmpty)
        var running = report(ports: [], running: true)
        #expect(BridgeServicePolicy.serverLines(running, threads: 8) == [.always("rpc.nfsd: the server is running; nothing changed")])
        running.changed = ["threads 8 -> 16", "listening on tcp 127.0.0.2:2049"]
        running.left = ["versions -2 +3 +4 (none named)"]
        #expect(BridgeServicePolicy.serverLines(running, threads: 16) == [
            .always("rpc.nfsd: the server is running; changed: threads 8 -> 16; listening on tcp 127.0.0.2:2049"),
            .always("rpc.nfsd: left as it was: versions -2 +3 +4 (none named)"),
        ])
    }

    @Test("what --vsock 0 says", arguments: [
        (pid_t?(77), true, 8, false, ["rpc.nfsd: vsock is no longer served: stopped nfs-vsock-bridge (pid 77) and the nfsd for vsock guests and network namespace nfs-vsock; IP service is left as it was (8 threads; tcp 2049)"]),
        (nil, true, 0, false, ["rpc.nfsd: vsock is no longer served: stopped the nfsd for vsock guests and network namespace nfs-vsock; no IP service was running"]),
        (nil, false, 8, true, ["rpc.nfsd: vsock was not served; nothing changed; IP service is left as it was (8 threads; tcp 2049)",
                               "rpc.nfsd: nfs-vsock-bridge.socket still holds its vsock ports: systemctl stop nfs-vsock-bridge.socket"]),
    ])
    func stopVsock(pid: pid_t?, instance: Bool, threads: Int, underSystemd: Bool, texts: [String]) {
        #expect(BridgeServicePolicy.stopVsockLines(stoppedBridgePID: pid, stoppedInstance: instance, threads: threads,
                                                   portlist: ["tcp 2049"], underSystemd: underSystemd)
                == texts.map { .always($0) })
    }
}
