import ArgumentParser
import NFSAdmin
import Testing
import VsockBridge
@testable import BridgeCommand
@testable import MountdCommand

private func conf(_ text: String) -> NFSConf {
    var conf = NFSConf()
    conf.add(text, file: "/etc/nfs.conf")
    return conf
}

private func bridge(_ arguments: [String], _ text: String = "") throws -> BridgeConfiguration {
    try BridgeCommand.parse(arguments).configuration(conf: conf(text))
}

/// The message a refused configuration gives ("" when it is accepted).
private func refusal(_ body: () throws -> Void) -> String {
    do {
        try body()
        return ""
    } catch {
        return "\(error)"
    }
}

@Suite("nfs-vsock-bridge: [vsock] and its command line")
struct BridgeSettingsTests {
    @Test("the command line wins, then [vsock], then the bridge's defaults")
    func precedence() throws {
        let text = "[vsock]\nports = 3049, 4049\ntarget = 127.0.0.1:20490\nmax-per-guest = 4\nidle-timeout = 0\n"
        let fromConf = try bridge([], text)
        #expect(fromConf.vsockPorts == [3049, 4049])
        #expect(fromConf.targetHost == "127.0.0.1" && fromConf.targetPort == 20490)
        #expect(fromConf.maxConnectionsPerGuest == 4 && fromConf.idleTimeout == 0)
        let overridden = try bridge(["--vsock", "2049", "--target", "127.0.0.2:2049", "--max-per-guest", "8"], text)
        #expect(overridden.vsockPorts == [2049])
        #expect(overridden.targetHost == "127.0.0.2" && overridden.targetPort == 2049)
        #expect(overridden.maxConnectionsPerGuest == 8 && overridden.idleTimeout == 0)
        let defaults = BridgeConfiguration()
        let plain = try bridge([])
        #expect(plain.vsockPorts.isEmpty && plain.maxConnectionsPerGuest == defaults.maxConnectionsPerGuest)
        // port (singular) when ports is not set.
        #expect(try bridge([], "[vsock]\nport = 5049\n").vsockPorts == [5049])
    }

    @Test("a bad value names the nfs.conf line, or the option when it came from the command line", arguments: [
        ([String](), "\n[vsock]\nmax-per-guest = 0\n", "/etc/nfs.conf:3: [vsock] max-per-guest: expected a number of 1 or more, got \"0\""),
        ([], "[vsock]\nidle-timeout = soon\n", "/etc/nfs.conf:2: [vsock] idle-timeout: expected a number of 0 or more, got \"soon\""),
        ([], "[vsock]\ntarget = localhost:2049\n", "/etc/nfs.conf:2: [vsock] target: want IPv4-address:port, got \"localhost:2049\""),
        // Before: "--port: bad vsock port" (no such option, and the key is ports).
        ([], "[vsock]\nports = 2049 20x9\n", "/etc/nfs.conf:2: [vsock] ports: bad vsock port \"20x9\""),
        (["--vsock", "0"], "", "--vsock: bad vsock port \"0\""),
        // Before: the command line's value was blamed on nfs.conf's line.
        (["--max-per-guest", "0"], "[vsock]\nmax-per-guest = 4\n", "--max-per-guest must be 1 or more, got 0"),
        (["--target", "nfs:2049"], "[vsock]\ntarget = 127.0.0.1:2049\n", "--target: want IPv4-address:port, got \"nfs:2049\""),
    ])
    func badValues(arguments: [String], text: String, message: String) {
        #expect(refusal { _ = try bridge(arguments, text) } == message)
    }

    @Test("a value the command line overrides is not read")
    func overridden() throws {
        #expect(try bridge(["--max-connections", "64"], "[vsock]\nmax-connections = lots\n").maxConnections == 64)
    }
}

@Suite("mountd: [mountd] and its command line")
struct MountdSettingsTests {
    private func settings(_ arguments: [String], _ text: String = "") throws -> MountdCommand.Settings {
        try MountdCommand.Settings(MountdCommand.parse(arguments), conf: conf(text))
    }

    @Test("defaults: MOUNT v3 over TCP and UDP on any port")
    func defaults() throws {
        let plain = try settings([])
        #expect(plain.offersV3 && !plain.offersV2 && plain.udp && plain.port == 0)
        #expect(!plain.options.manageGids && !plain.reverseLookup && !plain.debug && plain.stateDirectory == nil)
    }

    @Test("[mountd] and [nfsd] vers2/vers3 are read; the command line wins")
    func precedence() throws {
        let text = """
            [mountd]
            manage-gids = yes
            port = 20048
            udp = off
            reverse-lookup = 1
            ttl = 300
            debug = auth
            state-directory-path = /srv/state
            [nfsd]
            vers3 = n
            vers2 = y
            """
        let fromConf = try settings([], text)
        #expect(fromConf.options.manageGids && fromConf.reverseLookup && fromConf.debug)
        #expect(fromConf.port == 20048 && !fromConf.udp && fromConf.options.ttl == 300)
        #expect(!fromConf.offersV3 && fromConf.offersV2 && fromConf.stateDirectory == "/srv/state")
        let overridden = try settings(["-p", "635", "-V", "3", "-N", "2", "-s", "/var/lib/nfs"], text)
        #expect(overridden.port == 635 && overridden.offersV3 && !overridden.offersV2)
        #expect(overridden.stateDirectory == "/var/lib/nfs")
        #expect(!(try settings(["-u"], "[mountd]\nudp = y\n").udp))
        #expect(try settings(["-g"], "[mountd]\nmanage-gids = n\n").options.manageGids)
    }

    // Before: mountd ignored these without a word (ttl = abc kept 1800 s,
    // manage-gids = maybe left groups unmanaged).
    @Test("a bad value is an error naming the file and line, as in the other tools", arguments: [
        ("[mountd]\nttl = abc\n", "/etc/nfs.conf:2: [mountd] ttl: expected a number of 1 or more, got \"abc\""),
        ("[mountd]\nmanage-gids = maybe\n", "/etc/nfs.conf:2: [mountd] manage-gids: expected y or n, got \"maybe\""),
        ("[mountd]\nport = 70000\n", "/etc/nfs.conf:2: [mountd] port: expected a number from 0 to 65535, got \"70000\""),
        ("[nfsd]\nvers3 = perhaps\n", "/etc/nfs.conf:2: [nfsd] vers3: expected y or n, got \"perhaps\""),
        ("\n[vsock]\nloopback-block = 127.0.0.0/9\n", "/etc/nfs.conf:3: [vsock] loopback-block: "),
    ])
    func badValues(text: String, message: String) {
        let said = refusal { _ = try settings([], text) }
        #expect(!said.isEmpty && said.hasPrefix(message), "\(said)")
    }
}
