#!/usr/bin/env python3
"""The report of bench/guest-bench, from the guest's console lines and the
outer VM agent's marks.

usage: summary.py SETUP.txt GUEST.txt MARKS.txt

GUEST.txt: "@@gb r=R t=ROW w=WORKLOAD secs=.. gcpu=.. relay=.. k=v..."
(gbench), "@@mount t=ROW <the /proc/mounts line>", "@@round R ROWS...",
"@@info ..." and "@@warn ..."; MARKS.txt: "r=R t=ROW w=WORKLOAD
host_secs=.. busy=.. bridge=.. ..." (host-agent.py).

Ratios are ours / theirs for every row of kind vsock against each row of
another kind, per round (both measured within minutes of each other, see
guest.sh), then their median; the goals are judged on those medians.
"""
import re
import statistics
import sys

# workload: (value key, label, higher is better)
METRICS = [
    ("seqwrite", "mibs", "sequential write MiB/s (incl. fsync)", True),
    ("seqread", "mibs", "sequential read MiB/s (cold caches)", True),
    ("randread", "p50_us", "4 KiB random read p50 latency us (QD1)", False),
    ("randread", "p99_us", "4 KiB random read p99 latency us", False),
    ("randread", "mean_us", "4 KiB random read mean latency us", False),
    ("meta1", "secs", "metadata, 1 worker: seconds (create+stat+unlink)", False),
    ("meta4", "secs", "metadata, 4 workers: seconds", False),
    ("untar", "secs", "tree: untar seconds", False),
    ("find", "secs", "tree: find seconds (cold)", False),
    ("rm", "secs", "tree: rm -rf seconds (cold)", False),
    ("mount-seq", "secs", "mount seconds (each round's first mount of the row)", False),
]
# Goals from the issue, ours / NFS over virtio-net.
GOALS = [
    ("seqread", "mibs", ">=", 0.9, "sequential read throughput"),
    ("seqwrite", "mibs", ">=", 1.0, "sequential write throughput"),
    ("meta1", "secs", "<=", 1.1, "metadata time, 1 worker"),
    ("meta4", "secs", "<=", 1.1, "metadata time, 4 workers"),
    ("randread", "p50_us", "<=", 1.2, "random-read latency (p50)"),
]
CPU_KEYS_GUEST = ["gcpu", "relay"]
CPU_KEYS_HOST = ["busy", "bridge", "nfsd", "virtiofsd", "qemu", "vhost", "other"]


def kv(words):
    out = {}
    for w in words:
        if "=" in w:
            k, v = w.split("=", 1)
            out[k] = v
    return out


def fmt(v, digits=None):
    if v is None:
        return "-"
    if digits is None:
        digits = 0 if abs(v) >= 100 else 2 if abs(v) >= 1 else 3
    return f"{v:.{digits}f}"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    setup_path, guest_path, marks_path = sys.argv[1:4]
    setup = open(setup_path).read().rstrip("\n").splitlines()
    results = {}  # (round, row, workload) -> dict
    mounts, orders, infos, warns, rows = {}, {}, [], [], []
    kinds = {}
    for line in open(guest_path, errors="replace"):
        line = line.strip()
        words = line.split()
        if not words:
            continue
        if words[0] == "@@gb":
            d = kv(words[1:])
            try:
                key = (int(d["r"]), d["t"], d["w"])
            except (KeyError, ValueError):
                continue
            results[key] = d
        elif words[0] == "@@mount" and len(words) > 2:
            row = words[1][2:]
            mounts[row] = " ".join(words[2:])
            if row not in rows:
                rows.append(row)
        elif words[0] == "@@round":
            orders[int(words[1])] = words[2:]
        elif words[0] == "@@info":
            infos.append(" ".join(words[1:]))
        elif words[0] in ("@@warn", "@@fail"):
            warns.append(line)
    for line in open(marks_path, errors="replace"):
        d = kv(line.split())
        try:
            key = (int(d["r"]), d["t"], d["w"])
        except (KeyError, ValueError):
            continue
        results.setdefault(key, {}).update({k: v for k, v in d.items() if k not in ("r", "t", "w")})
    for row in mounts:
        kinds[row] = "vsock" if row.startswith("vsock") else row
    rounds = sorted(orders)
    ours = [r for r in rows if kinds.get(r) == "vsock"]
    theirs = [r for r in rows if kinds.get(r) != "vsock"]

    def value(r, row, w, k):
        d = results.get((r, row, w))
        try:
            return float(d[k]) if d and k in d else None
        except ValueError:
            return None

    out = []
    p = out.append
    p("guest-bench: " + "; ".join(setup[:1]))
    for s in setup[1:]:
        p("guest-bench: " + s)
    for i in infos:
        p("guest-bench: guest " + i)
    p("guest-bench: rows (as /proc/mounts shows each in the guest):")
    for row in rows:
        p(f"  {row:9} {mounts[row]}")
    nfs = [r for r in rows if r in ("net",) or kinds.get(r) == "vsock"]
    strip = re.compile(r"^(addr|clientaddr|port|mountaddr)=")
    optsets = {r: ",".join(o for o in mounts[r].split()[3].split(",") if not strip.match(o)) for r in nfs if len(mounts[r].split()) > 3}
    if "vsock" in optsets and "net" in optsets and optsets["vsock"] != optsets["net"]:
        p("guest-bench: WARNING: the vsock and net NFS mounts' options differ (besides addr/clientaddr/port)")
    for r in rounds:
        p(f"guest-bench: round {r} order: {' '.join(orders[r])}")
    for w in warns:
        p("guest-bench: " + w)

    for w, k, label, higher in METRICS:
        if not any((r, row, w) in results for r in rounds for row in rows):
            continue
        p("")
        p(f"== {label}   [{w} {k}]")
        head = "  " + f"{'row':22}" + "".join(f"{'r' + str(r):>9}" for r in rounds) + f"{'median':>10}"
        p(head)
        for row in rows:
            vals = [value(r, row, w, k) for r in rounds]
            p("  " + f"{row:22}" + "".join(f"{fmt(v):>9}" for v in vals) + f"{fmt(median(vals)):>10}")
        for o in ours:
            for t in theirs:
                ratios = []
                for r in rounds:
                    a, b = value(r, o, w, k), value(r, t, w, k)
                    ratios.append(a / b if a is not None and b else None)
                p("  " + f"{o + '/' + t:22}" + "".join(f"{fmt(x, 3):>9}" for x in ratios) + f"{fmt(median(ratios), 3):>10}")

    p("")
    p("== CPU seconds per timed step, median over rounds")
    p("   guest: gcpu = the guest's busy CPU (/proc/stat), relay = mount.vsock's share of it;")
    p("   outer VM: busy = all of it, then bridge, nfsd (both instances), virtiofsd, qemu (the guest's")
    p("   QEMU less vhost), vhost (worker threads), other (softirq, kworkers, loop, agent); wall = host_secs")
    ws = []
    for w, _, _, _ in METRICS:
        if w not in ws:
            ws.append(w)
    keys = CPU_KEYS_GUEST + ["host_secs"] + CPU_KEYS_HOST
    p("  " + f"{'step':11}{'row':13}" + "".join(f"{('wall' if x == 'host_secs' else x):>10}" for x in keys))
    for w in ws:
        for row in rows:
            if not any((r, row, w) in results for r in rounds):
                continue
            vals = [median([value(r, row, w, x) for r in rounds]) for x in keys]
            p("  " + f"{w:11}{row:13}" + "".join(f"{fmt(v):>10}" for v in vals))

    p("")
    p("== per NFS RPC (RPCs the server answered in the step), median over rounds: milliseconds")
    p("   of wall time, and of CPU: the guest's (of it the relay's), the outer VM's bridge, nfsd, qemu")
    per = ["secs", "gcpu", "relay", "bridge", "nfsd", "qemu"]
    p("  " + f"{'step':11}{'row':14}{'RPCs':>7}" + "".join(f"{('wall' if x == 'secs' else x):>9}" for x in per))
    for w in ws:
        for row in rows:
            if row not in nfs and not row.startswith("vsock"):
                continue
            n = median([value(r, row, w, "rpcs") for r in rounds])
            if not n:
                continue
            vals = []
            for x in per:
                ms = [value(r, row, w, x) * 1000 / value(r, row, w, "rpcs") for r in rounds
                      if value(r, row, w, x) is not None and value(r, row, w, "rpcs")]
                vals.append(median(ms))
            p("  " + f"{w:11}{row:14}{n:>7.0f}" + "".join(f"{fmt(v):>9}" for v in vals))

    p("")
    for o in ours:
        if "net" not in theirs:
            break
        for w, k, op, limit, label in GOALS:
            ratios = []
            for r in rounds:
                a, b = value(r, o, w, k), value(r, "net", w, k)
                if a is not None and b:
                    ratios.append(a / b)
            if not ratios:
                continue
            m = median(ratios)
            met = m >= limit if op == ">=" else m <= limit
            others = []
            for t in theirs:
                if t == "net":
                    continue
                rs = [value(r, o, w, k) / value(r, t, w, k) for r in rounds
                      if value(r, o, w, k) is not None and value(r, t, w, k)]
                if rs:
                    others.append(f"{o}/{t} {median(rs):.3f}")
            p(f"goal{'' if o == 'vsock' else ' (' + o + ')'}: {label} {o}/net {op} {limit}: {'met' if met else 'NOT met'} ({m:.3f}; per round {' '.join(f'{x:.3f}' for x in ratios)}){'; ' + ', '.join(others) if others else ''}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
