#!/usr/bin/env bash
# A guest that goes away (issue 17), our tools only (rpc.nfsd --vsock 2049,
# mountd, the bridge rpc.nfsd starts, mount.vsock over vsock loopback as
# CID 1):
#   1. guest A mounts and takes a POSIX lock on a file; a process on the
#      host cannot take it (nfsd holds it for the guest);
#   2. guest A stops answering (its relay is frozen, as a VM that hangs or
#      is migrated away): its bridge connections stay open and its NFSv4
#      client keeps the lock for its lease (15 s here, 90 s by default;
#      past it the kernel gives the lock to whoever asks next);
#   3. nfsd-control release-guest 1: the bridge closes guest 1's
#      connections, its NFSv4 client is expired; the host process takes
#      the lock at once;
#   4. guest B, a new "VM" with the same CID, mounts and takes the lock:
#      it starts clean (one NFSv4 client of its address, its own); when it
#      goes too, the example libvirt hook (etc/libvirt/qemu-hook, fed the
#      domain XML as libvirt does) releases it;
#   5. exportfs -u of guest C's exports: after the first its state stays
#      (it still has the root export); the last one releases it as
#      release-guest does; the filesystem can then be unmounted;
#   6. release-guest as nobody is refused; a CID with nothing left is said so.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd HELPER=$BIN_DIR/mount.vsock
modprobe vsock_loopback
CLIENTS=/run/nfs-vsock/nfsd/clients
GUEST_ADDR=127.128.0.1

vmt_step "exports for vsock:1, the server (rpc.nfsd --vsock 2049), mountd"
R=$W/root
vmt_mk_v4root "$R"
vmt_mk_ext4 "$R/data"
chmod 777 "$R/data"
echo "lock me" > "$R/data/lockfile"
chmod 666 "$R/data/lockfile"
vmt_write_exports <<EOF
$R       vsock:1(ro,fsid=0,insecure)
$R/data  vsock:1(rw,no_root_squash,insecure)
EOF
vmt_run "$EXPORTFS" -ra
vmt_run "$NFSD" -N 3 -H 127.0.0.1 -G 10 -L 15 --vsock 2049 8
vmt_defer "$NFSD 0 >/dev/null 2>&1"
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3 -d all
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
wait_for 10 "mountd to answer the bridge's nfsd" grep -q "answering the vsock bridge's nfsd too" "$W/mountd.log"
wait_for 10 "the bridge to forward" grep -q "forwarding vsock" /var/log/nfs-vsock-bridge.log
vmt_end_bridge_grace
for ns in ga gb; do
  vmt_run ip netns add "$ns"
  vmt_defer "ip netns del $ns"
  vmt_run ip -n "$ns" link set lo up
done

# lock_from_host: try the lock on the exported file itself (not through NFS).
lock_from_host() {
  python3 -c 'import fcntl, sys
f = open(sys.argv[1], "r+")
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError as e:
    print("lock refused:", e.strerror); sys.exit(1)
print("locked")' "$R/data/lockfile"
}
# hold_lock MOUNT OUT: a process that takes the lock through MOUNT and keeps it.
hold_lock() {
  python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(600)' "$1/lockfile" > "$2" 2>&1 &
  HOLDER=$!
  vmt_defer "kill -9 $HOLDER 2>/dev/null || true"
  wait_for 60 "the lock through $1" grep -q "^locked" "$2"
}
# relay_pid: the relay pid mount.vsock -v named in the last captured output.
relay_pid() { sed -n 's/.*relay 127\.0\.0\.1:[0-9]* -> vsock .*(pid \([0-9]*\)).*/\1/p' <<<"$VMT_OUT" | head -n 1; }
# guest_clients: the NFSv4 clients the guests' nfsd has for the guest's address.
guest_clients() { grep -l "address: \"$GUEST_ADDR:" "$CLIENTS"/*/info 2>/dev/null | wc -l; }

vmt_step "1. guest A mounts and takes a lock"
mkdir -p "$W/ga" "$W/gb"
vmt_capture nsenter --net=/run/netns/ga "$HELPER" 1:/data "$W/ga" -o soft,timeo=50,retrans=2 -v
assert_eq 0 "$VMT_RC" "guest A's mount"
relay_a=$(relay_pid)
[ -n "$relay_a" ] || fail "mount.vsock -v named no relay"
hold_lock "$W/ga" "$W/holder-a.out"
holder_a=$HOLDER
vmt_capture lock_from_host
assert_ne 0 "$VMT_RC" "the host process's lock while guest A holds it"
assert_eq 1 "$(guest_clients)" "NFSv4 clients of $GUEST_ADDR"

vmt_step "2. guest A stops answering (its relay frozen)"
vmt_run kill -STOP "$relay_a"
vmt_defer "kill -9 $relay_a 2>/dev/null || true"
# Within the 15 s lease. (Past it, a courteous server, Linux 5.19 and
# later, gives the lock to whoever asks next, a host process too: measured
# here at 20 s. The default lease is 90 s.)
sleep 3
open_a=$(sed -n 's/^guest 1 .* open=\([0-9]*\) .*/\1/p' /run/nfs-vsock-bridge/status)
vmt_note "the bridge's connections of guest 1 while it is frozen: $open_a"
assert_gt "${open_a:-0}" 0 "guest 1's connections stay open in the bridge"
vmt_capture lock_from_host
assert_ne 0 "$VMT_RC" "the host process's lock while guest A is frozen"

vmt_step "3. nfsd-control release-guest 1"
t0=$(date +%s%N)
vmt_capture "$NFSD" release-guest 1
t1=$(date +%s%N)
assert_eq 0 "$VMT_RC" "release-guest 1"
vmt_note "release-guest took $(( (t1 - t0) / 1000000 )) ms"
assert_contains "$VMT_OUT" "released guest 1 ($GUEST_ADDR): closed $open_a of its $open_a bridge connection(s)" "the bridge closed them"
assert_contains "$VMT_OUT" "expired 1 NFSv4 client(s)" "its NFSv4 client"
assert_contains "$(cat /var/log/nfs-vsock-bridge.log)" "guest 1 released: closing its $open_a connection(s)" "the bridge's log"
assert_eq 0 "$(guest_clients)" "NFSv4 clients of $GUEST_ADDR left"
vmt_capture lock_from_host
assert_eq 0 "$VMT_RC" "the host process takes the lock at once"
# The VM is gone for good: its relay and its processes.
kill -9 "$holder_a" "$relay_a" 2>/dev/null || true
timeout 20 umount -f "$W/ga" 2>/dev/null || umount -l "$W/ga"

vmt_step "4. guest B, a new VM with CID 1, starts clean; released in turn by the example libvirt hook"
vmt_capture nsenter --net=/run/netns/gb "$HELPER" 1:/data "$W/gb" -o soft,timeo=50,retrans=2 -v
assert_eq 0 "$VMT_RC" "guest B's mount"
relay_b=$(relay_pid)
hold_lock "$W/gb" "$W/holder-b.out"
holder_b=$HOLDER
assert_eq 1 "$(guest_clients)" "NFSv4 clients of $GUEST_ADDR: guest B's alone"
vmt_capture lock_from_host
assert_ne 0 "$VMT_RC" "the host process's lock while guest B holds it"
# libvirt runs the hook as root with the live domain XML, CID included.
vmt_install_sbin_helper nfsd-control "$NFSD"
vmt_run kill -STOP "$relay_b"
vmt_defer "kill -9 $relay_b 2>/dev/null || true"
printf "<domain><name>vm-b</name><devices>\n  <vsock model='virtio'>\n    <cid auto='yes' address='1'/>\n  </vsock>\n</devices></domain>\n" \
  | vmt_run "$(dirname "$0")/../../../etc/libvirt/qemu-hook" vm-b release end -
assert_eq 0 "$(guest_clients)" "NFSv4 clients of $GUEST_ADDR after the hook"
vmt_capture lock_from_host
assert_eq 0 "$VMT_RC" "the host process takes the lock after the hook"
kill -9 "$holder_b" "$relay_b" 2>/dev/null || true
timeout 20 umount -f "$W/gb" 2>/dev/null || umount -l "$W/gb"

vmt_step "5. exportfs -u of guest C's last export releases it too; the filesystem can then be unmounted"
vmt_run ip netns add gc
vmt_defer "ip netns del gc"
vmt_run ip -n gc link set lo up
mkdir -p "$W/gc"
vmt_capture nsenter --net=/run/netns/gc "$HELPER" 1:/data "$W/gc" -o soft,timeo=50,retrans=2 -v
assert_eq 0 "$VMT_RC" "guest C's mount"
relay_c=$(relay_pid)
hold_lock "$W/gc" "$W/holder-c.out"
holder_c=$HOLDER
vmt_run kill -STOP "$relay_c"
vmt_defer "kill -9 $relay_c 2>/dev/null || true"
vmt_capture "$EXPORTFS" -u "vsock:1:$R/data"
assert_eq 0 "$VMT_RC" "exportfs -u vsock:1:$R/data"
assert_not_contains "$VMT_OUT" "has no export left" "vsock:1 still has its root export"
assert_eq 1 "$(guest_clients)" "guest C's NFSv4 client stays while it has an export"
vmt_capture "$EXPORTFS" -u "vsock:1:$R"
assert_eq 0 "$VMT_RC" "exportfs -u of vsock:1's last export"
assert_contains "$VMT_OUT" "exportfs: vsock:1 has no export left: released guest 1 ($GUEST_ADDR): closed 1 of its 1 bridge connection(s)" "exportfs says it released the guest"
assert_eq 0 "$(guest_clients)" "NFSv4 clients of $GUEST_ADDR after its last export went"
vmt_capture lock_from_host
assert_eq 0 "$VMT_RC" "the host process takes the lock"
kill -9 "$holder_c" "$relay_c" 2>/dev/null || true
timeout 20 umount -f "$W/gc" 2>/dev/null || umount -l "$W/gc"
wait_for 20 "the exported filesystem to be released" umount "$R/data"

vmt_step "6. release-guest as nobody; a CID with nothing left"
vmt_capture setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$NFSD" release-guest 1
assert_ne 0 "$VMT_RC" "release-guest as nobody"
assert_contains "$VMT_OUT" "must be run as root" "the refusal"
vmt_capture "$NFSD" release-guest 9 --json
assert_eq 0 "$VMT_RC" "release-guest of a CID with nothing"
assert_contains "$VMT_OUT" "\"expiredClients\": []" "nothing expired"
vmt_capture "$NFSD" release-guest 2
assert_ne 0 "$VMT_RC" "CID 2 (the host) is not a guest"
vmt_step "ok"
