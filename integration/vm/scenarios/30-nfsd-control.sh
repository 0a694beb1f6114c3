#!/usr/bin/env bash
# Our nfsd-control (rpc.nfsd) against the real kernel, with our exportfs and
# Debian's rpc.mountd:
#   1. -N 3 -V 4.1 -H 127.0.0.1 8: a loopback-only NFSv4 server whose
#      portlist lists exactly that listener; versions and threads as asked;
#   2. an NFSv4.1 mount reads and writes;
#   3. changing versions of the running server: EBUSY, "stop the server first";
#   4. rpc.nfsd 0 stops it: threads 0, no listener, a mount then fails;
#   5. restart with other versions (-N 4.1): a 4.1 mount fails, 4.2 works;
#   6. --vsock 2049 on this kernel (no AF_VSOCK transport in nfsd): with
#      --no-vsock-bridge the missing-transport line, exit non-zero, threads
#      0, no listener added; by default (-T) no host listener or threads,
#      the bridge and its own nfsd in network namespace nfs-vsock (NFSv4.1
#      and 4.2 only, tcp 127.0.0.1:2049 there), and a line saying so;
#      without -T and -H the host's nfsd listens on 127.0.0.1 only and
#      keeps NFSv4.0 for IP clients; rpc.nfsd 0 stops all of it;
#   7. a port in use is reported as such and leaves nothing behind;
#   8. status and status --json.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control
[ -x "$NFSD" ] || fail "$NFSD missing"

portlist() { tr '\n' ';' < /proc/fs/nfsd/portlist; }
threads() { cat /proc/fs/nfsd/threads; }

vmt_step "exports: an NFSv4 root (tmpfs, fsid=0) with an ext4 export under it"
vmt_mk_tmpfs "$W/root"
vmt_mk_ext4 "$W/root/data"
vmt_write_exports <<EOF2
$W/root        127.0.0.1(ro,fsid=0)
$W/root/data   127.0.0.1(rw,no_root_squash)
EOF2
vmt_run "$EXPORTFS" -ra
vmt_start_ref_mountd

vmt_step "1. nfsd-control -N 3 -V 4.1 -H 127.0.0.1 8"
vmt_capture "$NFSD" -d -N 3 -V 4.1 -H 127.0.0.1 8
[ "$VMT_RC" = 0 ] || fail "nfsd-control failed"
echo "  portlist: $(portlist)  threads: $(threads)  versions: $(cat /proc/fs/nfsd/versions)"
[ "$(portlist)" = "tcp 2049;" ] || fail "portlist is '$(portlist)', expected only 'tcp 2049'"
[ "$(threads)" = 8 ] || fail "threads $(threads)"
grep -q -- "-3" /proc/fs/nfsd/versions || fail "NFSv3 still on"
grep -q -- "+4.1" /proc/fs/nfsd/versions || fail "NFSv4.1 off"
ss -ltn | grep -q "127.0.0.1:2049" || fail "no listener on 127.0.0.1:2049"
! ss -ltn | grep -qE "(0\.0\.0\.0|\*|\[::\]):2049" || fail "the kernel listens on every address"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true

vmt_step "2. NFSv4.1 mount reads and writes"
vmt_nfs_mount "127.0.0.1:/data" "$W/mnt"
[ "$VMT_RC" = 0 ] || fail "mount failed"
echo "written over NFSv4.1" > "$W/mnt/file"
sync
[ "$(cat "$W/root/data/file")" = "written over NFSv4.1" ] || fail "file not on the server"
vmt_umount "$W/mnt"

vmt_step "3. changing the versions of a running server"
vmt_capture "$NFSD" -N 4.2 8
[ "$VMT_RC" != 0 ] || fail "version change on a running server succeeded"
grep -q "stop the server first: rpc.nfsd 0" <<<"$VMT_OUT" || fail "no 'stop the server first' advice"
[ "$(threads)" = 8 ] || fail "the running server was disturbed"

vmt_step "8a. status while running"
vmt_run "$NFSD" status
"$NFSD" status | grep -q "state:      running" || fail "status does not say running"
vmt_run "$NFSD" status --json
"$NFSD" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["running"] and d["threads"]==8 and d["listeners"]==["tcp 2049"], d'

vmt_step "4. rpc.nfsd 0 stops the server"
vmt_capture "$NFSD" 0
[ "$VMT_RC" = 0 ] || fail "stop failed"
[ "$(threads)" = 0 ] || fail "threads $(threads) after stop"
[ -z "$(portlist)" ] || fail "listeners after stop: $(portlist)"
vmt_nfs_mount "127.0.0.1:/data" "$W/mnt"
[ "$VMT_RC" != 0 ] || fail "a mount succeeded with the server stopped"

vmt_step "5. restart with other versions: -N 4.1"
vmt_capture "$NFSD" -N 3 -N 4.1 -H 127.0.0.1 4
[ "$VMT_RC" = 0 ] || fail "restart failed"
echo "  versions: $(cat /proc/fs/nfsd/versions)"
grep -q -- "-4.1" /proc/fs/nfsd/versions || fail "4.1 still on"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true
VMT_NFS_OPTS=vers=4.1,retry=0,soft,timeo=50,retrans=2 vmt_nfs_mount "127.0.0.1:/data" "$W/mnt"
[ "$VMT_RC" != 0 ] || fail "NFSv4.1 mount worked with 4.1 off"
VMT_NFS_OPTS=vers=4.2,retry=0,soft,timeo=50,retrans=2 vmt_nfs_mount "127.0.0.1:/data" "$W/mnt"
[ "$VMT_RC" = 0 ] || fail "NFSv4.2 mount failed"
[ "$(cat "$W/mnt/file")" = "written over NFSv4.1" ] || fail "data lost across restart"
vmt_umount "$W/mnt"
vmt_run "$NFSD" 0

vmt_step "6a. --vsock 2049 --no-vsock-bridge on a kernel without the AF_VSOCK transport"
modprobe vsock_loopback 2>/dev/null || true
before=$(cat /proc/fs/nfsd/versions)
vmt_capture "$NFSD" -T --vsock 2049 --no-vsock-bridge 8
[ "$VMT_RC" != 0 ] || fail "--vsock succeeded on a kernel without the transport"
grep -q "no AF_VSOCK transport" <<<"$VMT_OUT" || fail "no missing-transport line"
[ "$(grep -c . <<<"$VMT_OUT")" = 1 ] || fail "expected exactly one line, got: $VMT_OUT"
[ "$(threads)" = 0 ] || fail "threads $(threads) after a failed --vsock start"
[ -z "$(portlist)" ] || fail "listeners left behind: $(portlist)"
[ "$(cat /proc/fs/nfsd/versions)" = "$before" ] || fail "versions changed: $before -> $(cat /proc/fs/nfsd/versions)"

vmt_step "6b. -T --vsock 2049: no IP service; the bridge and its own nfsd in namespace nfs-vsock"
vmt_capture "$NFSD" -N 3 -T --vsock 2049 8
[ "$VMT_RC" = 0 ] || fail "--vsock with the bridge failed"
grep -q "served by nfs-vsock-bridge (pid [0-9]*, user nfs-vsock-bridge) through its own nfsd (tcp 127.0.0.1:2049 in network namespace nfs-vsock, NFSv4.1 and 4.2; NFSv4.0 is off for guests" <<<"$VMT_OUT" \
  || fail "no line saying the bridge serves vsock through its own nfsd"
assert_contains "$VMT_OUT" "no IP listener: IP clients are not served" "-T --vsock: said there is no IP service"
[ -z "$(portlist)" ] && [ "$(threads)" = 0 ] || fail "-T --vsock started the host's nfsd: threads $(threads), '$(portlist)'"
! ss -ltn | grep -q ":2049 " || fail "-T --vsock listens on the host: $(ss -ltn | grep 2049)"
assert_eq "tcp 2049;" "$(tr '\n' ';' < "$VMT_BRIDGE_NFSD/portlist")" "the bridge's nfsd listens on tcp 2049"
assert_eq 8 "$(cat "$VMT_BRIDGE_NFSD/threads")" "the bridge's nfsd threads"
assert_eq "-3 +4 -4.0 +4.1 +4.2" "$(cat "$VMT_BRIDGE_NFSD/versions")" "the bridge's nfsd versions (no NFSv3, no NFSv4.0)"
vmt_in_bridge_ns ss -ltn | grep -q "127.0.0.1:2049" || fail "no 127.0.0.1:2049 listener in the bridge's namespace"
assert_eq 127.128.0.0/9 "$(cat /run/nfs-vsock/guest-block)" "the recorded guest block"
read -r bridge_pid bridge_start < /run/nfs-vsock-bridge.pid
kill -0 "$bridge_pid" || fail "the bridge is not running"
# The pid file names the process by its start time too (field 22 of stat;
# the bridge's comm has no space, so awk's fields match).
[ "$bridge_start" = "$(awk '{print $22}' "/proc/$bridge_pid/stat")" ] || fail "pid file start time '$bridge_start' is not the bridge's"
vmt_defer "kill $bridge_pid 2>/dev/null"
assert_eq "$(stat -L -c %i "$VMT_BRIDGE_NS")" "$(stat -L -c %i "/proc/$bridge_pid/ns/net")" "the bridge runs in namespace nfs-vsock"
assert_eq "$(id -u nfs-vsock-bridge)" "$(awk '/^Uid:/ { print $3 }' "/proc/$bridge_pid/status")" "the bridge runs as nfs-vsock-bridge"
assert_eq 0000000000000000 "$(awk '/^CapEff:/ { print $2 }' "/proc/$bridge_pid/status")" "the bridge keeps no capability"
assert_eq 0000000000000000 "$(awk '/^CapPrm:/ { print $2 }' "/proc/$bridge_pid/status")" "the bridge cannot regain a capability"
"$NFSD" status | grep -q "vsock:      served by nfs-vsock-bridge (pid $bridge_pid)" || fail "status does not show the bridge"
vmt_run "$NFSD" status
vmt_run "$NFSD" 0
[ "$(threads)" = 0 ] && [ -z "$(portlist)" ] || fail "stop left threads $(threads), '$(portlist)'"
! kill -0 "$bridge_pid" 2>/dev/null || fail "rpc.nfsd 0 left the bridge running"
[ ! -e "$VMT_BRIDGE_NS" ] || fail "rpc.nfsd 0 left the namespace $VMT_BRIDGE_NS"
[ ! -e "$VMT_BRIDGE_NFSD/threads" ] || fail "rpc.nfsd 0 left the bridge's nfsd filesystem mounted"

vmt_step "6c. --vsock 2049 without -H: the host's nfsd on 127.0.0.1 only, NFSv4.0 kept for IP clients"
vmt_capture "$NFSD" -N 3 --vsock 2049 8
[ "$VMT_RC" = 0 ] || fail "--vsock failed"
assert_contains "$VMT_OUT" "rpc.nfsd: listening on tcp 127.0.0.1:2049" "rpc.nfsd prints where it listens"
vmt_note "listeners: $(ss -ltnH | awk '{ print $4 }' | grep ':2049$' | paste -sd ' ')"
assert_eq "127.0.0.1:2049" "$(ss -ltnH | awk '{ print $4 }' | grep ':2049$' | paste -sd ' ')" "the host's nfsd listens on 127.0.0.1 only (no 0.0.0.0, no [::])"
assert_not_contains "$(cat /proc/fs/nfsd/versions)" "-4.0" "IP clients keep NFSv4.0 (the kernel lists only -4.0)"
assert_contains "$(cat "$VMT_BRIDGE_NFSD/versions")" "-4.0" "guests get no NFSv4.0"
bridge_pid=$(vmt_bridge_pid)
vmt_run "$NFSD" 0
[ ! -e "$VMT_BRIDGE_NS" ] && ! kill -0 "$bridge_pid" 2>/dev/null || fail "rpc.nfsd 0 left the bridge or its namespace"

vmt_step "6d. the bridge refuses to run outside its namespace, and a block holding 127.0.0.1"
vmt_capture "$BIN_DIR/nfs-vsock-bridge" --vsock 2049 --status-file none
[ "$VMT_RC" != 0 ] || fail "the bridge ran without its namespace"
assert_contains "$VMT_OUT" "the bridge's network namespace $VMT_BRIDGE_NS does not exist" "bridge without its namespace"
vmt_capture "$BIN_DIR/nfs-vsock-bridge" --loopback-block 127.64.0.0/10
[ "$VMT_RC" != 0 ] || fail "the bridge took --loopback-block"
assert_contains "$VMT_OUT" "--loopback-block is gone: set loopback-block in [vsock] of /etc/nfs.conf" "--loopback-block refused"
printf '[vsock]\nloopback-block = 127.0.0.0/9\n' > /etc/nfs.conf
vmt_defer ": > /etc/nfs.conf"
vmt_capture "$NFSD" -N 3 --vsock 2049 8
[ "$VMT_RC" != 0 ] || fail "rpc.nfsd took a guest block holding 127.0.0.1"
assert_contains "$VMT_OUT" "holds 127.0.0.0/24" "a block holding 127.0.0.1 refused"
[ "$(threads)" = 0 ] && [ ! -e "$VMT_BRIDGE_NS" ] || fail "a refused block left a server behind"
: > /etc/nfs.conf
vmt_note "fail closed: the namespace cannot be made (a read-only /run/netns)"
mkdir -p /run/netns
mount -t tmpfs -o ro,mode=0755 vmt-ro-netns /run/netns
vmt_defer "umount /run/netns 2>/dev/null || true"
vmt_capture "$NFSD" -N 3 --vsock 2049 8
[ "$VMT_RC" != 0 ] || fail "rpc.nfsd served vsock without the bridge's namespace"
assert_contains "$VMT_OUT" "cannot set up the vsock bridge's network namespace" "fail closed: the reason"
assert_contains "$VMT_OUT" "vsock is not served" "fail closed: what it means"
[ "$(threads)" = 0 ] && [ -z "$(portlist)" ] || fail "a failed namespace left the host's nfsd running: threads $(threads), '$(portlist)'"
[ -z "$(vmt_bridge_pid)" ] || ! kill -0 "$(vmt_bridge_pid)" 2>/dev/null || fail "a failed namespace left a bridge running"
umount /run/netns
vmt_note "a leftover pin file (its namespace gone) does not block the next start"
touch "$VMT_BRIDGE_NS"
vmt_run "$NFSD" -N 3 --vsock 2049 8
vmt_run "$NFSD" 0

vmt_step "7. a port in use"
python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 2050)); s.listen(); time.sleep(60)' &
blocker=$!
vmt_defer "kill $blocker 2>/dev/null"
wait_for 10 "the blocker to listen" sh -c 'ss -ltn | grep -q 127.0.0.1:2050'
vmt_capture "$NFSD" -H 127.0.0.1 -p 2050 8
[ "$VMT_RC" != 0 ] || fail "started on a port in use"
grep -q "port is in use" <<<"$VMT_OUT" || fail "no 'port is in use' message"
[ "$(threads)" = 0 ] && [ -z "$(portlist)" ] || fail "state left after the port clash"

vmt_step "8b. status when stopped"
vmt_run "$NFSD" status
"$NFSD" status | grep -q "vsock:      not served" || fail "status does not say vsock is not served"
