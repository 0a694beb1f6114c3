import Testing
@testable import NFSAdmin

@Suite("system paths under a movable root")
struct SystemPathsTests {
    @Test("unrooted undoes underRoot; the root itself is \"/\"", arguments: [
        ("/tmp/r", "/tmp/r", "/"),                 // one copy gave ""
        ("/tmp/r/", "/tmp/r", "/"),
        ("/tmp/r", "/tmp/r/etc/exports", "/etc/exports"),
        ("/tmp/r", "/tmp/rx/etc", "/tmp/rx/etc"),  // every copy gave "x/etc"
        ("/tmp/r", "/elsewhere", "/elsewhere"),
        ("/", "/etc/exports", "/etc/exports"),
        ("/", "/", "/"),
    ])
    func unrooted(root: String, path: String, shown: String) {
        #expect(SystemPaths(root: root).unrooted(path) == shown)
    }

    @Test("unrooted(underRoot(p)) == p for absolute paths", arguments: ["/", "/etc/exports", "/srv/a b"])
    func roundTrip(path: String) {
        let paths = SystemPaths(root: "/tmp/root")
        #expect(paths.unrooted(paths.underRoot(path)) == path)
    }
}
