import Testing
import NFSAdmin
@testable import NFSDControl

@Suite("nfs-vsock-generator")
struct SystemdGeneratorTests {
    private func dropIns(_ text: String) -> [(path: String, text: String)] {
        var conf = NFSConf()
        conf.add(text, file: "/etc/nfs.conf")
        return SystemdGenerator.dropIns(conf: conf)
    }

    @Test("NFSv3 on (explicitly or by default): both units want and follow rpcbind.socket", arguments: [
        "", "[nfsd]\nvers3 = y\n", "[nfsd]\nvers3 = yes\nvsock = 2049\n", "[mountd]\nvers3 = n\n",
    ])
    func nfsv3(conf: String) {
        let result = dropIns(conf)
        #expect(result.map(\.path) == [
            "nfs-server.service.d/50-nfs-vsock-rpcbind.conf",
            "nfs-mountd.service.d/50-nfs-vsock-rpcbind.conf",
        ])
        for dropIn in result {
            #expect(dropIn.text.contains("[Unit]\nWants=rpcbind.socket\nAfter=rpcbind.socket rpcbind.service\n"))
        }
    }

    @Test("NFSv4 only, or an [nfsd] section rpc.nfsd would refuse: nothing", arguments: [
        "[nfsd]\nvers3 = n\n", "[nfsd]\nvers3=no\nvers4.1 = y\n", "[nfsd]\nvers3 = maybe\n", "[nfsd]\nthreads = lots\n",
    ])
    func nfsv4Only(conf: String) {
        #expect(dropIns(conf).isEmpty)
    }
}
