// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "nfs-vsock",
    products: [
        .executable(name: "exportfs", targets: ["exportfs"]),
        .executable(name: "nfsd-control", targets: ["nfsd-control"]),
        .executable(name: "mountd", targets: ["mountd"]),
        .executable(name: "nfs-vsock-bridge", targets: ["nfs-vsock-bridge"]),
        .executable(name: "mount.vsock", targets: ["mount.vsock"]),
        .library(name: "NFSExports", targets: ["NFSExports"]),
        .library(name: "NFSAdmin", targets: ["NFSAdmin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Pure exports(5) engine: parsing, client specs, options, matching,
        // etab formatting. No I/O, no globals, no clock.
        .target(name: "NFSExports"),
        // What the bridge measures of the ONC RPC stream it forwards: the
        // record-marking parser, its counts and latency histogram. Pure.
        .target(name: "RPCMetrics"),
        // The system-call edge every target that touches the kernel shares:
        // socket addresses (inet, inet6, vsock, unix) in and out of sockaddr;
        // Socket (the one socket(2)), listen, accept with the peer, and the
        // connect from a privileged port; FileDescriptor; SystemError,
        // SystemCall.check: a failed call as a thrown error; SystemCall.spawn,
        // the one posix_spawn; PosixThread; ThreadLock.
        // Depends on nothing of the project but the CLinux headers.
        .target(name: "SystemEdge", dependencies: ["CLinux"]),
        // The I/O layer the tools share: state directory, etab lock and
        // atomic write, kernel cache channels, the exportability probe.
        .target(name: "NFSAdmin", dependencies: ["NFSExports", "RPCMetrics", "SystemEdge", "CLinux"]),
        .target(
            name: "ExportfsCommand",
            dependencies: [
                "NFSExports", "NFSAdmin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "exportfs", dependencies: ["ExportfsCommand"]),
        // rpc.nfsd: versions, times, listeners (TCP, UDP, AF_VSOCK by fd), threads.
        .target(name: "NFSDControl", dependencies: ["NFSAdmin", "NFSExports", "RPCMetrics", "SystemEdge", "CSystemd"]),
        .target(
            name: "NfsdControlCommand",
            dependencies: [
                "NFSDControl", "NFSAdmin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "nfsd-control", dependencies: ["NfsdControlCommand"]),
        // mountd's pure core: cache channel requests and replies, domains,
        // the NFSv4 pseudo filesystem, filehandle fsid matching.
        .target(name: "MountdCore", dependencies: ["NFSExports"]),
        // Linux headers Glibc does not import (signalfd, statfs, vm_sockets).
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "CBlkid", pkgConfig: "blkid", providers: [.apt(["libblkid-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // mountd's I/O: channels, signals, reloads, libblkid, sd_notify.
        .target(name: "Mountd", dependencies: ["MountdCore", "MountProtocol", "NFSAdmin", "NFSExports", "SystemEdge", "CBlkid", "CSystemd", "CLinux"]),
        .target(
            name: "MountdCommand",
            dependencies: [
                "Mountd", "NFSAdmin", "NFSExports",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "mountd", dependencies: ["MountdCommand"]),
        // What both ends of the vsock hop share: the byte forwarder, its
        // meter, socket tuning.
        .target(name: "Forwarding", dependencies: ["RPCMetrics", "SystemEdge", "CLinux"]),
        // The host bridge for kernels without an AF_VSOCK nfsd transport.
        .target(name: "VsockBridge", dependencies: ["Forwarding", "RPCMetrics", "NFSAdmin", "NFSExports", "SystemEdge"]),
        .target(
            name: "BridgeCommand",
            dependencies: [
                "VsockBridge", "NFSAdmin", "NFSExports", "CSystemd", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "nfs-vsock-bridge", dependencies: ["BridgeCommand"]),
        // The guest's mount helper: a loopback relay to the host's vsock port.
        .target(name: "GuestMount", dependencies: ["Forwarding", "NFSAdmin", "NFSExports", "SystemEdge", "CLinux"]),
        .executableTarget(name: "mount.vsock", dependencies: ["GuestMount"]),
        // What several test targets share: temporary roots, a loopback listener,
        // bytes sent and received whole.
        .target(name: "TestSupport", dependencies: ["NFSAdmin", "SystemEdge"], path: "Tests/TestSupport"),
        .testTarget(name: "NFSExportsTests", dependencies: ["NFSExports"]),
        .testTarget(name: "SystemEdgeTests", dependencies: ["SystemEdge", "CLinux"]),
        .testTarget(name: "NFSAdminTests", dependencies: ["NFSAdmin", "NFSExports", "RPCMetrics", "TestSupport"]),
        .testTarget(name: "ExportfsCommandTests", dependencies: ["ExportfsCommand", "NFSAdmin", "NFSExports"]),
        .testTarget(name: "MountdCoreTests", dependencies: ["MountdCore", "NFSExports"]),
        .testTarget(name: "MountdTests", dependencies: ["Mountd", "MountdCore", "NFSAdmin", "NFSExports", "TestSupport"]),
        .testTarget(name: "NFSDControlTests", dependencies: ["NFSDControl", "NfsdControlCommand", "NFSAdmin", "RPCMetrics", "TestSupport"]),
        // How nfs-vsock-bridge and mountd merge nfs.conf with their command lines.
        .testTarget(name: "CommandSettingsTests", dependencies: ["BridgeCommand", "MountdCommand", "VsockBridge", "NFSAdmin"]),
        // The MOUNT protocol (program 100005, v1 and v3) that mountd serves,
        // over Debian's libtirpc; CMountGlue holds the few lines that must be C
        // (the svc dispatch trampoline and raw-XDR routines).
        .systemLibrary(name: "CTIRPC", pkgConfig: "libtirpc", providers: [.apt(["libtirpc-dev"])]),
        .target(name: "CMountGlue", dependencies: ["CTIRPC"]),
        .target(name: "MountProtocol", dependencies: ["CMountGlue", "CTIRPC", "SystemEdge"]),
        .testTarget(name: "MountProtocolTests", dependencies: ["MountProtocol", "SystemEdge"]),
        .testTarget(name: "RPCMetricsTests", dependencies: ["RPCMetrics", "TestSupport"]),
        .testTarget(name: "ForwardingTests", dependencies: ["Forwarding", "RPCMetrics", "NFSAdmin", "SystemEdge", "TestSupport"]),
        .testTarget(name: "VsockBridgeTests", dependencies: ["VsockBridge", "GuestMount", "NFSAdmin", "NFSExports", "SystemEdge", "CLinux", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets (fuzz/Sources/<name>), only with NFS_VSOCK_FUZZ=1 set:
// they call libFuzzer's driver, which only -sanitize=fuzzer links, so a
// plain build must not see them. scripts/fuzz builds them with the fuzzer
// and address sanitizers in a scratch path of their own.
if Context.environment["NFS_VSOCK_FUZZ"] == "1" {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("fuzz-exports", ["NFSExports"]),
        ("fuzz-etab", ["NFSExports"]),
        ("fuzz-nfs-conf", ["NFSAdmin"]),
        ("fuzz-cache-upcall", ["MountdCore", "NFSExports"]),
        ("fuzz-mount-xdr", ["MountProtocol"]),
        ("fuzz-mount-options", ["GuestMount"]),
        ("fuzz-bridge-status", ["NFSAdmin"]),
        ("fuzz-rpc-stream", ["RPCMetrics"]),
    ]
    package.targets += [
        .systemLibrary(name: "CLibFuzzer", path: "fuzz/Sources/CLibFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer", "NFSExports"], path: "fuzz/Sources/FuzzSupport"),
    ]
    for target in fuzzTargets {
        package.targets.append(.executableTarget(name: target.name, dependencies: target.dependencies + ["FuzzSupport"],
                                                 path: "fuzz/Sources/\(target.name)"))
        package.products.append(.executable(name: target.name, targets: [target.name]))
    }
}
