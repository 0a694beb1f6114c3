import Glibc
import Testing
@testable import ExportfsCommand
import NFSAdmin
import NFSExports

/// A throwaway root with /etc, /var/lib/nfs and a few export directories.
final class FakeRoot {
    let path: String

    init() {
        var template = Array("/tmp/exportfs-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { buffer in
            // SAFETY: mkdtemp writes into the NUL-terminated template in place.
            String(cString: mkdtemp(buffer.baseAddress!)!)
        }
        _ = system("mkdir -p '\(path)/etc/exports.d' '\(path)/var/lib/nfs' '\(path)/srv/a' '\(path)/srv/b' '\(path)/srv/vm5'")
    }

    deinit { _ = system("rm -rf '\(path)'") }

    func write(_ relative: String, _ text: String) {
        let fd = open(path + relative, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }

    func read(_ relative: String) -> String? {
        (try? FileSystem.readIfExists(path + relative)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
    }

    func run(_ request: Exportfs.Request, verbose: Bool = false) -> (status: Int32, out: String, err: String) {
        let output = CapturedOutput()
        let exportfs = Exportfs(paths: SystemPaths(root: path), verbose: verbose, output: output, clock: { 1000 })
        let status = exportfs.run(request)
        return (status, output.stdout, output.stderr)
    }

    var etabLines: [String] {
        (read("/var/lib/nfs/etab") ?? "").split(separator: "\n").map(String.init)
    }
}

private let tail = "anonuid=65534,anongid=65534,sec=sys,"

@Suite("exportfs")
struct ExportfsTests {
    @Test("-ra writes exactly what the exports files say, exports.d included")
    func reexportAll() {
        let root = FakeRoot()
        root.write("/etc/exports", "/srv/a 10.0.0.0/8(rw) vsock:5(rw)\n")
        root.write("/etc/exports.d/vm.exports", "/srv/vm5 vsock:5(rw,insecure)\n")
        root.write("/var/lib/nfs/etab", "/srv/old\t*(ro)\n")
        let result = root.run(Exportfs.Request(reexport: true))
        #expect(result.status == 0, "\(result.err)")
        #expect(root.etabLines.count == 3)
        #expect(root.etabLines.contains { $0.hasPrefix("/srv/vm5\tvsock:5(rw,") && $0.contains(",insecure,") })
        #expect(!root.etabLines.contains { $0.hasPrefix("/srv/old") })
    }

    @Test("an error anywhere leaves etab untouched and names file:line:column")
    func errorsLeaveEtab() {
        let root = FakeRoot()
        root.write("/etc/exports", "/srv/a *(rw)\n")
        #expect(root.run(Exportfs.Request(reexport: true)).status == 0)
        let before = root.read("/var/lib/nfs/etab")
        root.write("/etc/exports", "/srv/a *(rw)\n/srv/b vsock:5-1(rw)\n")
        let result = root.run(Exportfs.Request(reexport: true))
        #expect(result.status == 1)
        #expect(result.err.contains("/etc/exports:2:14: error: empty vsock CID range"), "\(result.err)")
        #expect(root.read("/var/lib/nfs/etab") == before)
    }

    @Test("-a merges with the current etab; -r replaces it")
    func mergeVersusReplace() {
        let root = FakeRoot()
        root.write("/etc/exports", "/srv/a *(rw)\n")
        _ = root.run(Exportfs.Request(arguments: ["vsock:7:/srv/b"]))
        #expect(root.etabLines.count == 1)
        _ = root.run(Exportfs.Request(all: true))
        #expect(root.etabLines.count == 2)
        _ = root.run(Exportfs.Request(reexport: true))
        #expect(root.etabLines.count == 1)
    }

    @Test("client:/path with -o, then -u removes it; unknown entries fail")
    func commandLineEntries() {
        let root = FakeRoot()
        var result = root.run(Exportfs.Request(options: "rw,insecure", arguments: ["vsock:5:/srv/vm5", "[2001:db8::1]:/srv/a"]), verbose: true)
        #expect(result.status == 0, "\(result.err)")
        #expect(result.out.contains("exporting vsock:5:/srv/vm5"))
        #expect(root.etabLines.contains { $0.hasPrefix("/srv/vm5\tvsock:5(rw,sync,wdelay,hide,nocrossmnt,insecure,") })
        #expect(root.etabLines.contains { $0.hasPrefix("/srv/a\t2001:db8::1(rw,") })
        result = root.run(Exportfs.Request(unexport: true, arguments: ["vsock:5:/srv/vm5"]))
        #expect(result.status == 0)
        #expect(root.etabLines.count == 1)
        result = root.run(Exportfs.Request(unexport: true, arguments: ["vsock:6:/srv/vm5"]))
        #expect(result.status == 1)
        #expect(result.err.contains("could not find 'vsock:6:/srv/vm5' to unexport"))
        #expect(root.run(Exportfs.Request(all: true, unexport: true)).status == 0)
        #expect(root.etabLines.isEmpty)
    }

    @Test("bad command-line entries", arguments: [
        ("vsock:x:/srv/a", "bad vsock CID"),
        ("host/srv", "write client:/path"),
        ("host:srv", "must be absolute"),
        ("[::1/srv", "[IPv6-address]:/path"),
    ])
    func badArguments(argument: String, message: String) {
        let root = FakeRoot()
        let result = root.run(Exportfs.Request(arguments: [argument]))
        #expect(result.status == 1)
        #expect(result.err.contains(message), "\(result.err)")
        #expect(root.read("/var/lib/nfs/etab") == nil)
    }

    @Test("--check reports every diagnostic and changes nothing")
    func check() {
        let root = FakeRoot()
        root.write("/etc/exports", "/srv/a host (rw)\n/srv/b 10.0.0.0/33(rw)\n/srv/c vsock:2(rw,bogus)\n")
        let output = CapturedOutput()
        let status = Exportfs(paths: SystemPaths(root: root.path), verbose: false, output: output).check(files: [])
        #expect(status == 1)
        #expect(output.stderr.contains("/etc/exports:1:13: warning"))
        #expect(output.stderr.contains("/etc/exports:2:17: error"))
        #expect(output.stderr.contains("/etc/exports:3:19: error: unknown option \"bogus\""))
        #expect(output.stderr.contains("2 errors"))
        #expect(root.read("/var/lib/nfs/etab") == nil)
    }

    @Test("listing: plain, -v, -s and --json")
    func listing() {
        let root = FakeRoot()
        root.write("/etc/exports", "/srv/a *(rw,async) vsock:3-9(ro,fsid=7)\n")
        _ = root.run(Exportfs.Request(reexport: true))
        let plain = root.run(Exportfs.Request()).out
        #expect(plain == "/srv/a        \tvsock:3-9\n/srv/a        \t<world>\n")
        let verbose = root.run(Exportfs.Request(), verbose: true).out
        #expect(verbose.contains("/srv/a        \t<world>(async,wdelay,hide,no_subtree_check,sec=sys,rw,secure,root_squash,no_all_squash)\n"), "\(verbose)")
        let exportsFormat = root.run(Exportfs.Request(exportsFormat: true)).out
        #expect(exportsFormat.contains("/srv/a *(async,"))
        let json = root.run(Exportfs.Request(json: true)).out
        #expect(json.contains("\"client\": \"vsock:3-9\", \"clientKind\": \"vsock-range\", \"vsockCIDs\": {\"first\": 3, \"last\": 9}"), "\(json)")
        #expect(json.contains("\"fsid\": 7"))
    }
}

@Suite("exportfs -u: a guest's last export")
struct GuestLastExportTests {
    @Test("an export still grants a guest access through its CID, a range holding it, or vsock:* (guests only)", arguments: [
        (ClientSpec.vsock(5), VsockCID(5), true), (.vsock(6), 5, false),
        (.vsockRange(3, 99), 5, true), (.vsockRange(6, 99), 5, false),
        (.vsockAny, 5, true), (.vsockAny, 1, false),
        (.wildcard("*"), 5, false), (.anonymous, 5, false),
    ] as [(ClientSpec, VsockCID, Bool)])
    func grants(client: ClientSpec, cid: VsockCID, expected: Bool) {
        #expect(Exportfs.grants(client, to: cid) == expected)
    }
}
