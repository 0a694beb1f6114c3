#!/usr/bin/env bash
# A slow name lookup for one client never stalls mountd's answers to others
# (our exportfs, nfsd-control and mountd; Debian's mount.nfs as the clients).
# A wildcard client (*.example.test) in the exports makes mountd look up
# every new client address's name (a plain host name is resolved forward
# once, when the table loads). Client A's address is in no hosts file, and the only DNS
# server is a black hole (a dummy interface: queries vanish, the resolver
# waits out its timeouts); client B's address is in /etc/hosts. A asks
# first, B mounts while mountd still waits for A's name: B must be answered
# at once, and A must still be answered once its lookup gives up (it is
# granted by address too).
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd
ROOT=$W/root
DNS_WAIT=16   # resolver: timeout:8 attempts:2, one PTR query

vmt_step "resolver: /etc/hosts knows B; DNS is a black hole"
for f in hosts resolv.conf; do cp "/etc/$f" "$W/$f.saved"; vmt_defer "cp '$W/$f.saved' /etc/$f"; done
printf '10.99.45.2 fastclient.example.test\n' >> /etc/hosts
printf 'nameserver 10.99.46.2\noptions timeout:8 attempts:2\n' > /etc/resolv.conf
vmt_run ip link add vmtdns type dummy
vmt_defer "ip link del vmtdns"
vmt_run ip addr add 10.99.46.1/24 dev vmtdns
vmt_run ip link set vmtdns up
t0=$EPOCHREALTIME
getent hosts 10.99.44.2 > /dev/null && fail "10.99.44.2 resolves: the black hole is not one"
printf '  a reverse lookup of A (10.99.44.2) fails after %s s\n' "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
assert_eq "10.99.45.2      fastclient.example.test" "$(getent hosts 10.99.45.2)" "B resolves from /etc/hosts"

vmt_step "exports, server, clients A and B"
vmt_netns_create sla 10.99.44.1/24 10.99.44.2/24
vmt_netns_create slb 10.99.45.1/24 10.99.45.2/24
vmt_mk_v4root "$ROOT"
vmt_mk_ext4 "$ROOT/data"
echo "data" > "$ROOT/data/file"
vmt_write_exports <<EOF
$ROOT       *.example.test(ro,fsid=0) 10.99.44.2(ro,fsid=0)
$ROOT/data  *.example.test(rw) 10.99.44.2(rw)
EOF
vmt_run "$EXPORTFS" -ra
vmt_run "$NFSD" -N 3 8
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3 -d all
wait_for 10 "our mountd" vmt_holds_channels "$(vmt_pid mountd)"

# Client A is not a kernel NFS client: on one host, every NFSv4.1 mount
# takes the NFS client's global client-ID mutex while it sets up its lease,
# so a second mount would wait for the first in the client, whatever mountd
# does. A sends one raw NFSv4.0 COMPOUND (PUTROOTFH) instead: that is enough
# for the server to ask mountd who 10.99.44.2 is.
cat > "$W/putrootfh.py" <<'EOF2'
import socket, struct, sys, time
def xdr_opaque(b):
    return struct.pack(">I", len(b)) + b + b"\0" * (-len(b) % 4)
cred = struct.pack(">I", 0) + xdr_opaque(b"slow-a") + struct.pack(">III", 0, 0, 0)
call = struct.pack(">IIIIII", 0x5eed, 0, 2, 100003, 4, 1)
call += struct.pack(">I", 1) + xdr_opaque(cred) + struct.pack(">II", 0, 0)
call += xdr_opaque(b"") + struct.pack(">III", 0, 1, 24)   # tag, minor 0, [PUTROOTFH]
s = socket.create_connection((sys.argv[1], 2049), timeout=60)
s.sendall(struct.pack(">I", 0x80000000 | len(call)) + call)
t = time.monotonic()
try:
    reply = s.recv(4096)
    print("reply of %d bytes after %.1f s" % (len(reply), time.monotonic() - t))
except OSError as e:
    print("no reply: %s" % e)
EOF2
vmt_step "A asks the server (its name lookup hangs in DNS), then B mounts"
ip netns exec sla python3 "$W/putrootfh.py" 10.99.44.1 > "$W/a.out" 2>&1 &
apid=$!
wait_for 30 "mountd to be asked about A" grep -q 'auth.unix.ip request: nfsd 10.99.44.2' "$W/mountd.log"
grep -q 'client 10.99.44.2 is' "$W/mountd.log" && fail "A was answered at once: its lookup did not hang"
tb=$EPOCHREALTIME
vmt_nfs_mount 10.99.45.1:/data "$W/b" slb fast-b
b_rc=$VMT_RC
b_took=$(awk -v a="$tb" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
a_waiting=yes
grep -q 'client 10.99.44.2 is' "$W/mountd.log" && a_waiting=no
printf '  B: exit %s after %s s; A'"'"'s lookup still pending then: %s\n' "$b_rc" "$b_took" "$a_waiting"
sed 's/^/  /' "$W/mountd.log" | grep -E 'is |auth.unix.ip' || true
assert_eq 0 "$b_rc" "B's mount"
assert_eq "data" "$(timeout 20 cat "$W/b/file")" "B reads the export"
assert_eq yes "$a_waiting" "A's lookup still pending when B was done"
awk -v t="$b_took" -v limit=$((DNS_WAIT / 2)) 'BEGIN { exit !(t < limit) }' \
  || fail "B took $b_took s: it waited for A's lookup (the DNS wait is ${DNS_WAIT} s)"

vmt_step "A is answered once its lookup gives up (granted by address)"
wait_for 40 "mountd's answer about A" grep -q 'client 10.99.44.2 is 10.99.44.2' "$W/mountd.log"
wait "$apid" || true
printf '  A: %s\n' "$(tr '\n' ' ' < "$W/a.out")"
grep -E '10\.99\.4[45]\.2' /proc/net/rpc/auth.unix.ip/content | sed 's/^/  auth.unix.ip: /'
vmt_umount "$W/b"
echo "PASS: a slow lookup stalls only its own client"
