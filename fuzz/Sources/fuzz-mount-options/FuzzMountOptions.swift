import FuzzSupport
import GuestMount

/// mount.vsock's command line as mount(8) or a user gives it (the input is
/// the arguments, separated by NUL bytes), above all the -o option string.
/// Checks, for a command line mount.vsock accepts: the NFS options never
/// carry an empty option or one that mount.vsock chooses itself (port=,
/// addr=, mountport=, mountproto=, a second proto=), every mount attempt
/// ends in the relay's port and address; and the request rendered back as
/// a command line (CID:/export DIR -o options) parses to the same request.
@main
enum FuzzMountOptions {
    static func main() { FuzzHarness.run(fuzzOne) }
}

private let chosenByHelper = ["port=", "addr=", "mountport=", "mountproto=", "proto="]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let arguments = FuzzHarness.bytes(data, size).split(separator: 0, omittingEmptySubsequences: false)
        .map { String(decoding: $0, as: UTF8.self) }
    guard let request = try? MountVsockRequest.parse(arguments) else { return 0 }

    guard request.export.hasPrefix("/"), request.vsockPort > 0, request.vsockPort < UInt32.max, request.cid < UInt32.max else {
        FuzzHarness.fail("accepted \(request)")
    }
    // The transport: proto=tcp first, and nothing else mount.vsock chooses.
    let chosen = request.nfsOptions.filter { option in chosenByHelper.contains { option.hasPrefix($0) } }
    if chosen != ["proto=tcp"] || !request.nfsOptions.contains("proto=tcp") {
        FuzzHarness.fail("options \(request.nfsOptions) of \(arguments)")
    }
    if request.nfsOptions.contains(where: { $0.isEmpty || $0.contains(",") }) {
        FuzzHarness.fail("empty or joined option in \(request.nfsOptions) of \(arguments)")
    }
    for attempt in request.mountOptionAttempts(relayPort: 40000) {
        if !attempt.hasSuffix(",port=40000,addr=127.0.0.1") || attempt.contains(",,") || attempt.hasPrefix(",") {
            FuzzHarness.fail("mount attempt \(attempt.debugDescription) of \(arguments)")
        }
    }

    // Rendered back: the options the user gave, without the ones
    // mount.vsock added (its default version, proto=tcp).
    var given = Array(request.nfsOptions.drop { $0 == "proto=tcp" })
    if request.nfsOptions.starts(with: MountVsockRequest.defaultNFSOptions) {
        given = Array(request.nfsOptions.dropFirst(MountVsockRequest.defaultNFSOptions.count))
    }
    var rendered = ["\(request.cid):\(request.export)", request.directory, "-o",
                    (given + ["vsock_port=\(request.vsockPort)"]).joined(separator: ",")]
    if request.verbose { rendered.append("-v") }
    if request.fake { rendered.append("-f") }
    if request.noMtab { rendered.append("-n") }
    let again: MountVsockRequest
    do {
        again = try MountVsockRequest.parse(rendered)
    } catch {
        FuzzHarness.fail("\(arguments) parsed, rendered as \(rendered) it does not: \(error)")
    }
    if again != request { FuzzHarness.fail("\(arguments) parsed as\n\(request)\nrendered as \(rendered) parses as\n\(again)") }
    return 0
}
