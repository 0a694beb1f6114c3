import Glibc
import NFSExports
import Testing
import TestSupport
@testable import NFSAdmin

@Suite("release-guest: what a departed guest left")
struct GuestReleaseTests {
    @Test("nfsd's clients/<id>/info: the host of the quoted address, the client id and name")
    func clientInfo() {
        let v4 = ClientInfo("clientid: 0x6d2b1c3a65f0e1a2\naddress: \"127.128.0.5:876\"\nstatus: confirmed\nname: \"Linux NFSv4.1 vm5\"\nminor version: 1\n")
        #expect(v4 == ClientInfo(clientID: "0x6d2b1c3a65f0e1a2", name: "\"Linux NFSv4.1 vm5\"", host: "127.128.0.5"))
        #expect(ClientInfo("address: \"[fd00::5]:876\"\n").host == "fd00::5")
        #expect(ClientInfo("clientid: 0x1\n").host == nil)
    }

    @Test("only the clients of the guest's address are picked, whatever their port")
    func clients() throws {
        let directory = try TemporaryDirectory(prefix: "guest-release")
        let clients = directory.path + "/clients"
        for (id, address) in [("3", "127.128.0.5:876"), ("4", "127.128.0.50:876"), ("5", "127.128.0.5:1001"), ("6", "127.0.0.1:2049")] {
            try FileSystem.makeDirectories(clients + "/" + id, mode: 0o755)
            try FileSystem.replaceIfChanged(clients + "/" + id + "/info",
                                            with: Array("clientid: 0x\(id)\naddress: \"\(address)\"\nname: \"c\(id)\"\n".utf8))
        }
        let found = GuestRelease.clients(under: clients, of: "127.128.0.5")
        #expect(found.map(\.label) == ["0x3 \"c3\"", "0x5 \"c5\""])
        #expect(GuestRelease.clients(under: directory.path + "/none", of: "127.128.0.5").isEmpty)
    }

    @Test("a CID outside the recorded block, and no bridge path, are said so")
    func problems() throws {
        let directory = try TemporaryDirectory(prefix: "guest-release")
        #expect(throws: GuestRelease.Problem.self) { try GuestRelease(paths: directory.paths).release(cid: 5) }
        #expect(GuestRelease.Problem.noAddress(600, "127.128.0.0/24").description
                == "CID 600 has no address in the guest block 127.128.0.0/24: no guest of that CID can have state here")
    }

    @Test("the report says what was done and what is still there")
    func report() {
        var report = GuestRelease.Report(cid: 5, address: "127.128.0.5")
        report.bridgePID = 77
        report.connectionsBefore = 3
        report.connectionsLeft = 1
        report.expiredClients = ["0x3 \"c3\""]
        report.unlockedNLM = true
        #expect(report.text == "guest 5 (127.128.0.5): closed 2 of its 3 bridge connection(s) (nfs-vsock-bridge pid 77); 1 still open: the guest reconnected, so it still runs; expired 1 NFSv4 client(s) (0x3 \"c3\"): their opens, locks and delegations are gone; released its NLM locks")
        #expect(report.json.hasPrefix("{\"cid\": 5, \"address\": \"127.128.0.5\", \"bridgePID\": 77, \"connectionsBefore\": 3, \"connectionsLeft\": 1, "))
    }
}
