import ArgumentParser
import Testing
import NFSAdmin
@testable import NFSDControl
@testable import NfsdControlCommand

private func settings(_ arguments: [String], conf: String = "") throws -> NFSDSettings {
    var nfsConf = NFSConf()
    nfsConf.add(conf, file: "/etc/nfs.conf")
    let command = try NfsdControlCommand.parse(arguments)
    return try command.settings(conf: nfsConf)
}

@Suite("rpc.nfsd settings")
struct NFSDSettingsTests {
    @Test("versions text for the command lines administrators use", arguments: [
        ([], "-2 +3 +4 +4.0 +4.1 +4.2 \n"),
        (["-N", "3"], "-2 -3 +4 +4.0 +4.1 +4.2 \n"),
        (["-N", "3", "-V", "4.1", "-H", "127.0.0.1", "8"], "-2 -3 +4 +4.0 +4.1 +4.2 \n"),
        (["-N", "4"], "-2 +3 -4 \n"),
        (["-N", "4", "-V", "4.1"], "-2 +3 +4 -4.0 +4.1 -4.2 \n"),
        (["-N", "4.0", "-N", "4.2"], "-2 +3 +4 -4.0 +4.1 -4.2 \n"),
        (["-N", "3", "-N", "4.0"], "-2 -3 +4 -4.0 +4.1 +4.2 \n"),
    ])
    func versions(arguments: [String], text: String) throws {
        #expect(NFSDProcText.versions(try settings(arguments)) == text)
    }

    @Test("nfs.conf [nfsd] is read and the command line wins")
    func merge() throws {
        let conf = """
            [nfsd]
            threads = 16
            port = 20490
            host = 127.0.0.1 ::1
            vers3 = n
            vers4.0 = n
            udp = y
            lease-time = 30
            grace-time = 40
            vsock = 2049
            """
        let fromConf = try settings([], conf: conf)
        #expect(fromConf.threads == 16)
        #expect(fromConf.port == 20490)
        #expect(fromConf.hosts == ["127.0.0.1", "::1"])
        #expect(fromConf.udp)
        #expect(fromConf.leaseTime == 30 && fromConf.graceTime == 40)
        #expect(fromConf.vsockPorts == [2049])
        #expect(NFSDProcText.versions(fromConf) == "-2 -3 +4 -4.0 +4.1 +4.2 \n")

        let overridden = try settings(["-p", "2049", "-H", "10.0.0.1", "-V", "3", "-U", "-L", "90", "--vsock", "3049", "4"], conf: conf)
        #expect(overridden.threads == 4)
        #expect(overridden.port == 2049)
        #expect(overridden.hosts == ["10.0.0.1"])
        #expect(!overridden.udp)
        #expect(overridden.leaseTime == 90 && overridden.graceTime == 40)
        #expect(overridden.vsockPorts == [3049])
        #expect(NFSDProcText.versions(overridden).hasPrefix("-2 +3 "))
    }

    @Test("bad input is refused with the option or the nfs.conf line", arguments: [
        (["-V", "5"], "", "bad NFS version \"5\" for -V"),
        (["-N", "2"], "", "bad NFS version \"2\" for -N"),
        (["-L", "5"], "", "--lease-time must be from 10 to 3600"),
        (["--vsock", "0", "--vsock", "2049"], "", "--vsock 0 stops vsock service and takes no other --vsock port"),
        (["9000"], "", "nthreads must be from 0 to 8192"),
        ([], "[nfsd]\nthreads = lots\n", "/etc/nfs.conf:2: [nfsd] threads: expected a number"),
        ([], "[nfsd]\nvers4.1 = maybe\n", "/etc/nfs.conf:2: [nfsd] vers4.1: expected y or n"),
        ([], "[nfsd]\nvsock = 20x9\n", "bad vsock port \"20x9\""),
    ])
    func badInput(arguments: [String], conf: String, message: String) {
        do {
            _ = try settings(arguments, conf: conf)
            Issue.record("accepted \(arguments) with \(conf)")
        } catch {
            #expect(NfsdControlCommand.message(for: error).contains(message), "\(NfsdControlCommand.message(for: error))")
        }
    }

    @Test("a bad nfs.conf value the command line overrides is not read; one it does not override still fails")
    func overriddenConf() throws {
        let conf = "[nfsd]\nthreads = lots\nvers4.1 = maybe\nudp = sometimes\n"
        let value = try settings(["-V", "4.1", "-U", "16"], conf: conf)
        #expect(value.threads == 16 && value.isEnabled(.v4_1) && !value.udp)
        do {
            _ = try settings(["-V", "4.1", "16"], conf: conf)
            Issue.record("udp = sometimes accepted")
        } catch {
            #expect(NfsdControlCommand.message(for: error) == "/etc/nfs.conf:4: [nfsd] udp: expected y or n, got \"sometimes\"")
        }
    }

    @Test("settings that cannot make a server", arguments: [
        (["-N", "3", "-N", "4"], "every NFS version is switched off"),
        (["-T"], "no transport left"),
    ])
    func impossible(arguments: [String], message: String) throws {
        let value = try settings(arguments)
        #expect(throws: NFSDSettings.Problem.self) { try value.validate() }
        do { try value.validate() } catch { #expect(error.message.contains(message)) }
    }

    @Test("vsock-only with -T is a valid server")
    func vsockOnly() throws {
        let value = try settings(["-T", "--vsock", "2049"])
        try value.validate()
        #expect(!value.tcp && value.vsockPorts == [2049])
    }

    @Test("the other control files get a number and a newline; portlist gets the descriptor")
    func procText() {
        #expect(NFSDProcText.number(8) == "8\n")
        #expect(NFSDProcText.number(0) == "0\n")
        #expect(NFSDProcText.portlist(fd: 5) == "5\n")
    }

    @Test("a running server's versions are compared by switch, not by spelling")
    func sameVersions() {
        #expect(NFSDController.sameVersions("-2 +3 +4 +4.1 +4.2", "-2 +3 +4 +4.0 +4.1 +4.2 \n"))
        #expect(!NFSDController.sameVersions("-2 +3 +4 +4.1 +4.2", "-2 -3 +4 +4.0 +4.1 +4.2 \n"))
    }

    @Test("status reads the kernel's files and says how vsock is served")
    func status() {
        let stopped = NFSDStatus(mounted: true, threads: 0, versions: "-2 +3 +4", listeners: [], leaseTime: 90, graceTime: 90)
        #expect(stopped.text.contains("state:      stopped"))
        #expect(stopped.vsockState == "not served")
        let running = NFSDStatus(mounted: true, threads: 8, versions: "+4.1", listeners: ["tcp 2049", "vsock 2049"], leaseTime: 90, graceTime: 90)
        #expect(running.kernelVsockPorts == [2049])
        #expect(running.json.contains("\"kernelPorts\": [2049]"))
    }
}

@Suite("rpc.nfsd and the bridge's nfsd")
struct BridgeInstanceSettingsTests {
    @Test("where the host's nfsd listens: -H / host=, else everywhere, but 127.0.0.1 only when vsock is asked for", arguments: [
        ([String](), "", [String?]([nil])),
        (["--vsock", "2049"], "", ["127.0.0.1"]),
        (["--vsock", "2049", "-H", "10.0.0.1"], "", ["10.0.0.1"]),
        ([], "[nfsd]\nvsock = 2049\n", ["127.0.0.1"]),
        ([], "[nfsd]\nvsock = 2049\nhost = 0.0.0.0\n", ["0.0.0.0"]),
    ])
    func listenHosts(arguments: [String], conf: String, expected: [String?]) throws {
        #expect(try settings(arguments, conf: conf).listenHosts == expected)
    }

    @Test("the guests' nfsd: NFSv4.1 and 4.2 as switched, never NFSv3 or NFSv4.0", arguments: [
        ([String](), "-2 -3 +4 -4.0 +4.1 +4.2 \n"),
        (["-N", "4.2"], "-2 -3 +4 -4.0 +4.1 -4.2 \n"),
        (["-N", "4.1"], "-2 -3 +4 -4.0 -4.1 +4.2 \n"),
        (["-V", "4.0", "-V", "3"], "-2 -3 +4 -4.0 +4.1 +4.2 \n"),
    ])
    func bridgeVersions(arguments: [String], text: String) throws {
        let minors = try #require(try settings(arguments).bridgeVersions)
        #expect(NFSDProcText.bridgeVersions(minors) == text)
    }

    @Test("no guest service without NFSv4.1 or 4.2")
    func noBridgeVersions() throws {
        #expect(try settings(["-N", "4.1", "-N", "4.2"]).bridgeVersions == nil)
        #expect(try settings(["-N", "4"]).bridgeVersions == nil)
        #expect(NFSDError.noBridgeVersions.description.contains("NFSv4.1 and 4.2 only"))
    }

    @Test("the guest block comes from [vsock] loopback-block; a bad one names file and line")
    func guestBlock() throws {
        #expect(try settings([]).guestBlock == .default)
        #expect(try settings([], conf: "[vsock]\nloopback-block = 127.64.0.0/10\n").guestBlock.description == "127.64.0.0/10")
        #expect(throws: (any Error).self) { try settings([], conf: "[vsock]\nloopback-block = 127.0.0.0/9\n") }
        do {
            _ = try settings([], conf: "\n[vsock]\nloopback-block = 127.0.0.0/9\n")
        } catch {
            #expect("\(error)".contains("/etc/nfs.conf:3: [vsock] loopback-block"), "\(error)")
            #expect("\(error)".contains("holds 127.0.0.0/24"), "\(error)")
        }
    }

    @Test("the guests' nfsd holds the bridge's max-connections and a margin, never the kernel's (threads + 3) x 20")
    func guestMaxConnections() throws {
        let plain = try settings([])
        #expect(plain.bridgeMaxConnections == 1024 && plain.guestMaxConnections == 1024 + NFSDSettings.closingMargin)
        // More threads do not matter: the limit follows the bridge's cap.
        #expect(try settings(["32"], conf: "[vsock]\nmax-connections = 5000\n").guestMaxConnections == 5000 + NFSDSettings.closingMargin)
        for bad in ["0", "many", "-3", "2000000"] {
            do {
                _ = try settings([], conf: "\n[vsock]\nmax-connections = \(bad)\n")
                Issue.record("max-connections = \(bad) accepted")
            } catch {
                #expect("\(error)".contains("/etc/nfs.conf:3: [vsock] max-connections"), "\(error)")
            }
        }
    }
}

@Suite("the guests' nfsd grace period")
struct BridgeGraceTests {
    @Test("10 s unless the administrator sets one: nothing can be reclaimed without client tracking", arguments: [
        ([String](), "", 10), (["-G", "45"], "", 45), ([], "[nfsd]\ngrace-time = 60\n", 60),
    ])
    func grace(arguments: [String], conf: String, expected: Int) throws {
        #expect(NFSDController.bridgeGraceTime(try settings(arguments, conf: conf)) == expected)
    }
}
