#if canImport(Glibc)
import Glibc
#endif
import CLinux
import NFSAdmin

/// The guest's relay sits in the writeback path of its mount: if it dies
/// (the OOM killer, a careless pkill, a logout that kills a user's
/// processes) every process using the hard mount waits forever. So
/// mount.vsock runs it under a keeper: a small process ("vsock-keeper")
/// that holds the listening socket and starts the relay ("vsock-relay")
/// again, on the same port, whenever it dies while its mount still needs
/// it. NFS clients reconnect to the port (the listener never closed, so
/// their connection waits in its backlog) and retransmit: a copy in
/// progress completes.
enum RelayKeeper {
    /// The relay's pid, for the SIGTERM handler (async-signal-safe use only).
    nonisolated(unsafe) static var relayPID: pid_t = 0

    /// Runs the keeper in this (forked, single-threaded) process; never
    /// returns. The first relay's pid goes to `report` (a pipe's write end).
    static func run(relay: VsockRelay, listener: Int32, directory: String, export: String, relayPort: UInt16, report: Int32) -> Never {
        WritebackPath.setName("vsock-keeper")
        WritebackPath.protectFromOOMKiller()
        // mount.vsock's SIGTERM (the mount failed) takes the relay along.
        signal(SIGTERM) { _ in
            if RelayKeeper.relayPID > 0 { kill(RelayKeeper.relayPID, SIGTERM) }
            _exit(0)
        }
        let watch = MountWatch(directory: directory, export: export, port: relayPort)
        let description = "the relay of \(directory) (127.0.0.1:\(relayPort) -> vsock \(relay.cid):\(relay.port))"
        var reporting: Int32? = report
        var recent: [Int] = []
        while true {
            let pid = fork()
            if pid == 0 {
                WritebackPath.setName("vsock-relay")
                WritebackPath.harden()
                relay.serve(listener: listener, directory: directory, export: export, relayPort: relayPort)
                _exit(0)
            }
            if pid < 0 {
                sleep(1)
                continue
            }
            relayPID = pid
            if let fd = reporting {
                var value = pid
                _ = write(fd, &value, MemoryLayout<pid_t>.size)
                close(fd)
                reporting = nil
            }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            relayPID = 0
            // A relay that ended by itself saw its mount go: so does the keeper.
            if status & 0x7f == 0 && (status >> 8) & 0xff == 0 { _exit(0) }
            guard watch.isMounted() || watch.serverListInUse() else { _exit(0) }
            let how = status & 0x7f != 0 ? "killed by signal \(status & 0x7f)" : "exited with status \((status >> 8) & 0xff)"
            KernelLog.write("mount.vsock: \(description) died (\(how)) while its mount needs it; restarting it")
            // A relay that cannot live: not more than 5 starts in 10 s.
            let now = RelayLifetime.now()
            recent = recent.filter { now - $0 < 10 } + [now]
            if recent.count > 5 { sleep(2) }
        }
    }
}

/// What keeps the relay able to forward writeback.
enum WritebackPath {
    static func setName(_ name: String) {
        name.withCString { pointer in _ = nfsvsock_prctl(PR_SET_NAME, UInt(bitPattern: pointer)) }
    }

    /// The OOM killer never picks it: what it would free is the page
    /// cache the mount cannot write back without it.
    static func protectFromOOMKiller() {
        try? FileSystem.writeMessage("-1000\n", to: "/proc/self/oom_score_adj")
    }

    /// PR_SET_IO_FLUSHER (Linux 5.6+): its allocations do not recurse into
    /// reclaim that waits on the writeback it carries. Its memory locked as
    /// it is touched (never paged out, so never paged in to forward); the
    /// forwarder's buffers are populated and locked up front (resident).
    /// Each is best effort: an older kernel or a lower RLIMIT_MEMLOCK
    /// leaves the relay working, just less protected.
    static func harden() {
        protectFromOOMKiller()
        _ = nfsvsock_prctl(57 /* PR_SET_IO_FLUSHER */, 1)
        _ = mlockall(MCL_CURRENT | MCL_FUTURE | 4 /* MCL_ONFAULT */)
    }
}

/// One line in the guest's kernel log (dmesg), where an administrator
/// looks when a mount stalls; nothing else of the relay's is visible.
enum KernelLog {
    static func write(_ line: String) {
        guard let fd = try? FileDescriptor.open("/dev/kmsg", O_WRONLY) else { return }
        fd.closeAfter { try? fd.writeMessage(Array((line + "\n").utf8), for: "/dev/kmsg") }
    }
}
