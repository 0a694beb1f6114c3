#!/usr/bin/env python3
"""The outer VM's side of bench/guest-bench: a vsock server (port given)
the nested guest asks, one line per connection, and waits for the answer:

  drop                    sync and drop the outer VM's page cache, dentries
                          and inodes, so the guest's next read reaches the
                          ext4 image (the guest drops its own caches itself)
  mark TAG... begin|end   snapshot the outer VM's CPU counters; at "end" one
                          line goes to the marks file:
                            TAG host_secs=S rpcs=N busy=S bridge=S nfsd=S
                            virtiofsd=S qemu=S vhost=S other=S
                          (rpcs: RPCs both nfsd instances answered)
  ping                    answers ok

CPU seconds are utime + stime from /proc. busy: the whole outer VM
(/proc/stat, all but idle and iowait); bridge: nfs-vsock-bridge (pid file
of rpc.nfsd); nfsd: every nfsd kernel thread (both instances: the host's
and the guests' in the bridge's namespace); virtiofsd: its process tree;
qemu: the guest's QEMU (TCG vCPU, 9p server, virtio-fs and virtio-net
front ends) less its vhost threads; vhost: vhost worker threads (kernel
threads named vhost-PID before 6.4, threads of QEMU since); other: busy
less all of these (softirqs, kworkers, the loop device, this agent).

One connection at a time: the guest runs one workload at a time, and a
mark must not race the workload it brackets.
"""
import os
import socket
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def pid_from(path):
    words = read(path).split()
    return int(words[0]) if words and words[0].isdigit() else None


def stat_fields(path):
    """(comm, ppid, utime + stime) of a /proc/.../stat, or None."""
    text = read(path)
    close = text.rfind(")")
    if close < 0:
        return None
    rest = text[close + 2:].split()
    return text[text.find("(") + 1:close], int(rest[1]), int(rest[11]) + int(rest[12])


def nfsd_rpcs(pid):
    """RPCs answered by the nfsd of PID's network namespace (0 if none)."""
    for line in read(f"/proc/{pid}/net/rpc/nfsd").splitlines():
        if line.startswith("rpc "):
            return int(line.split()[1])
    return 0


def vm_busy():
    for line in read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            v = [int(x) for x in line.split()[1:9]]
            return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return 0


class Agent:
    def __init__(self, marks, qemu_pidfile, virtiofsd_pidfile, bridge_pidfile):
        self.marks = marks
        self.qemu_pidfile = qemu_pidfile
        self.virtiofsd_pidfile = virtiofsd_pidfile
        self.bridge_pidfile = bridge_pidfile
        self.begun = {}

    def snapshot(self):
        procs = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                fields = stat_fields(f"/proc/{name}/stat")
                if fields:
                    procs[int(name)] = fields
        qemu = pid_from(self.qemu_pidfile)
        virtiofsd = pid_from(self.virtiofsd_pidfile)
        bridge = pid_from(self.bridge_pidfile)
        c = {"busy": vm_busy(), "bridge": 0, "nfsd": 0, "virtiofsd": 0, "qemu": 0, "vhost": 0}
        tree = set()
        if virtiofsd in procs:
            tree.add(virtiofsd)
            grew = True
            while grew:
                grew = False
                for pid, (_, ppid, _) in procs.items():
                    if ppid in tree and pid not in tree:
                        tree.add(pid)
                        grew = True
        for pid, (comm, _, ticks) in procs.items():
            if comm == "nfsd":
                c["nfsd"] += ticks
            elif comm.startswith("vhost-"):
                c["vhost"] += ticks
            elif pid == bridge:
                c["bridge"] += ticks
            elif pid in tree:
                c["virtiofsd"] += ticks
            elif pid == qemu:
                c["qemu"] += ticks
                # vhost threads of QEMU (kernels 6.4 and later) are counted
                # in its total: move them to vhost.
                try:
                    tids = os.listdir(f"/proc/{pid}/task")
                except OSError:
                    tids = []
                for tid in tids:
                    t = stat_fields(f"/proc/{pid}/task/{tid}/stat")
                    if t and t[0].startswith("vhost-"):
                        c["vhost"] += t[2]
                        c["qemu"] -= t[2]
        # The host's nfsd (this namespace) and the guests' (the bridge's).
        c["rpcs"] = nfsd_rpcs("self") + (nfsd_rpcs(bridge) if bridge in procs else 0)
        c["time"] = time.monotonic()
        return c

    def handle(self, line):
        words = line.split()
        if not words:
            return "error: empty request"
        if words[0] == "ping":
            return "ok"
        if words[0] == "drop":
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            return "ok"
        if words[0] == "mark" and len(words) >= 3 and words[-1] in ("begin", "end"):
            tag = " ".join(words[1:-1])
            snap = self.snapshot()
            if words[-1] == "begin":
                self.begun[tag] = snap
                return "ok"
            first = self.begun.pop(tag, None)
            if first is None:
                return "error: no begin for " + tag
            d = {k: snap[k] - first[k] for k in snap}
            parts = [f"host_secs={d['time']:.3f}", f"rpcs={d['rpcs']}"]
            known = 0
            for k in ("busy", "bridge", "nfsd", "virtiofsd", "qemu", "vhost"):
                parts.append(f"{k}={d[k] / TICK:.2f}")
                if k != "busy":
                    known += d[k]
            parts.append(f"other={(d['busy'] - known) / TICK:.2f}")
            with open(self.marks, "a") as f:
                f.write(f"{tag} {' '.join(parts)}\n")
            return "ok"
        return "error: unknown request " + words[0]


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: host-agent.py PORT MARKS-FILE QEMU-PIDFILE VIRTIOFSD-PIDFILE BRIDGE-PIDFILE")
    port = int(sys.argv[1])
    agent = Agent(*sys.argv[2:6])
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.bind((socket.VMADDR_CID_ANY, port))
    s.listen(4)
    print(f"host-agent: listening on vsock port {port}", flush=True)
    while True:
        conn, peer = s.accept()
        with conn:
            conn.settimeout(30)
            data = b""
            line = ""
            try:
                while b"\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                line = data.decode(errors="replace").strip()
                answer = agent.handle(line)
            except Exception as e:  # one bad request must not end the agent
                answer = f"error: {e}"
            if answer != "ok" or "-v" in os.environ.get("GB_AGENT_DEBUG", ""):
                print(f"host-agent: {peer}: {line!r} -> {answer}", flush=True)
            try:
                conn.sendall((answer + "\n").encode())
            except OSError:
                pass


if __name__ == "__main__":
    main()
