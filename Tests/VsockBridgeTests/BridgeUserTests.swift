import NFSAdmin
import NFSExports
import Testing
@testable import VsockBridge

@Suite("the bridge's user once it gives up root")
struct BridgeUserTests {
    private let accounts = ["nfs-vsock-bridge": Privileges.Account(name: "nfs-vsock-bridge", uid: 990, gid: 990),
                            "vmbridge": Privileges.Account(name: "vmbridge", uid: 991, gid: 991),
                            "toor": Privileges.Account(name: "toor", uid: 0, gid: 0)]

    @Test("the default user, or the one named")
    func chosen() throws {
        #expect(try BridgeUser.choose(configured: nil) { accounts[$0] }.uid == 990)
        #expect(try BridgeUser.choose(configured: "vmbridge") { accounts[$0] }.uid == 991)
    }

    @Test("a missing user is refused with how to create it; the default says it is the default")
    func missing() {
        #expect(throws: Problem("user nfs-vsock-bridge does not exist (the default user of the bridge): create it (useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nfs-vsock-bridge) or name another with --user / [vsock] user")) {
            try BridgeUser.choose(configured: nil) { _ in nil }
        }
        #expect(throws: Problem("user ghost does not exist: create it (useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ghost) or name another with --user / [vsock] user")) {
            try BridgeUser.choose(configured: "ghost") { accounts[$0] }
        }
    }

    @Test("a user with uid 0, whatever its name, is refused")
    func root() {
        #expect(throws: Problem("user toor is root: the bridge must not keep root (choose a system user of its own)")) {
            try BridgeUser.choose(configured: "toor") { accounts[$0] }
        }
    }
}
