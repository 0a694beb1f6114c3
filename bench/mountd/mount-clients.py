#!/usr/bin/env python3
"""Benchmark helper (not a test), run inside the VM by 50-mountd-bench.sh.

Mounts NFS exports for many clients from ONE process, with mount(2) itself,
so that the per-mount process start-up of the usual route (nsenter, unshare,
sh, timeout, mount, mount.nfs, stat: seven programs, each exec costing tens
of milliseconds under QEMU software emulation) does not hide what the server
side and its mountd cost. The kernel's NFS client does the same work either
way: mount.nfs turns NFSv4 options into the same text options for mount(2)
(plus addr= and clientaddr=, given here) and talks to no daemon for NFSv4.

Per client, a forked child (no exec):
  setns(the client's network namespace), unshare(CLONE_NEWUTS),
  sethostname("mb-client-<i>") (NFSv4 client owner strings must differ),
  mount(<server>:<path>, <target>, "nfs4", 0, "<opts>,addr=..,clientaddr=..")
  with a deadline (alarm), then stat(<target>/<file>).
The parent writes "ok|fail <seconds>" to <results>/r<i>, errors to e<i>,
from wall time measured around the child; P children run at a time.

usage: mount-clients.py RESULTS PARALLEL SERVER OPTS JOBFILE
  JOBFILE lines: <i> <netns path> <clientaddr> <export path> <target> <file>
"""
import ctypes
import ctypes.util
import os
import signal
import sys
import time

CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
DEADLINE = 30

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                       ctypes.c_ulong, ctypes.c_char_p]


def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def child(job, server, opts, errpath):
    i, netns, clientaddr, export, target, name = job
    try:
        fd = os.open(netns, os.O_RDONLY)
        check(libc.setns(fd, CLONE_NEWNET), "setns " + netns)
        os.close(fd)
        check(libc.unshare(CLONE_NEWUTS), "unshare(CLONE_NEWUTS)")
        host = ("mb-client-%s" % i).encode()
        check(libc.sethostname(host, len(host)), "sethostname")
        data = "%s,addr=%s,clientaddr=%s" % (opts, server, clientaddr)
        signal.alarm(DEADLINE)
        check(libc.mount(("%s:%s" % (server, export)).encode(), target.encode(),
                         b"nfs4", 0, data.encode()),
              "mount %s:%s on %s (%s)" % (server, export, target, data))
        os.stat(os.path.join(target, name))
        signal.alarm(0)
        os._exit(0)
    except BaseException as e:  # anything: report it, never a traceback
        with open(errpath, "a") as f:
            f.write("client %s: %s\n" % (i, e))
        os._exit(1)


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__.split("usage: ")[1].split("\n")[0])
    results, parallel, server, opts, jobfile = sys.argv[1:]
    parallel = int(parallel)
    # mount.nfs options the kernel does not take
    opts = ",".join(o for o in opts.split(",") if o and not o.startswith(("retry=", "bg", "fg")))
    with open(jobfile) as f:
        jobs = [line.split() for line in f if line.strip()]
    running = {}

    def reap():
        pid, status = os.wait()
        i, t0 = running.pop(pid)
        ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        if os.WIFSIGNALED(status):
            with open(os.path.join(results, "e" + i), "a") as f:
                f.write("client %s: killed by signal %d (deadline %d s)\n" % (i, os.WTERMSIG(status), DEADLINE))
        with open(os.path.join(results, "r" + i), "w") as f:
            f.write("%s %.3f\n" % ("ok" if ok else "fail", time.monotonic() - t0))

    for job in jobs:
        while len(running) >= parallel:
            reap()
        i = job[0]
        errpath = os.path.join(results, "e" + i)
        open(errpath, "w").close()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:
            child(job, server, opts, errpath)
        running[pid] = (i, t0)
    while running:
        reap()


if __name__ == "__main__":
    main()
