#!/usr/bin/env bash
# NFS over vsock on a stock kernel, with our tools only: nfsd-control
# (loopback-only; the bridge's own nfsd in namespace nfs-vsock), mountd,
# nfs-vsock-bridge and mount.vsock, over the vsock loopback transport (the
# local CID is 1, named explicitly as vsock:1: vsock:* means guests only):
#   1. mount -t vsock 1:/vm1 (util-linux finding mount.vsock) reads and
#      writes; its relay exits within 10 s of the umount at the end;
#   2. an export only for vsock:7 is refused; a *(rw) export is not visible
#      over vsock; an IP client does not get the vsock-only export;
#   3. secure: a guest mounting from an unprivileged port (noresvport) is
#      refused, from a privileged one accepted;
#   4. two hybrid-vsock Unix sockets (socat plays the VMM) configured as
#      CIDs 7 and 8 each see exactly their own exports;
#   5. killing the bridge during a large copy and restarting it: the copy
#      completes and the checksum matches;
#   5b. the guest's relay runs under a keeper, exempt from the OOM killer,
#      its buffers locked; killed with SIGKILL during a copy, it is started
#      again on the same port, the copy completes with the same bytes, and
#      the kernel log says so; with a process holding all but 150 MiB of the
#      VM's available memory, a 48 MiB copy through the mount completes.
# Each "guest" mounts from its own network namespace: the NFSv4.1 client
# merges every mount of one server within a namespace into one client ID
# and transport (client ID trunking), which on a single test host would mix
# identities; real guests are separate kernels. vsock itself ignores
# network namespaces, so every namespace reaches CID 1.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd BRIDGE=$BIN_DIR/nfs-vsock-bridge HELPER=$BIN_DIR/mount.vsock
COPY_MIB=${COPY_MIB:-200}
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

vmt_step "vsock loopback"
modprobe vsock_loopback
[ -e /dev/vsock ] || fail "no /dev/vsock"

vmt_step "exports: one NFSv4 root per identity (the VM's / is not exportable)"
R1=$W/r1 R7=$W/r7 R8=$W/r8
for r in "$R1" "$R7" "$R8"; do vmt_mk_v4root "$r"; done
vmt_mk_ext4 "$R1/vm1" 512M
vmt_mk_ext4 "$R1/world"
vmt_mk_ext4 "$R1/sec"
vmt_mk_ext4 "$R7/vm7"
vmt_mk_ext4 "$R8/vm8"
mkdir -p "$R1/vm7"
for d in "$R1/world" "$R7/vm7" "$R8/vm8"; do echo "$(basename "$d") $token" > "$d/token"; done
chmod 777 "$R1/vm1" "$R1/sec"
vmt_write_exports <<EOF2
$R1        vsock:1(ro,fsid=0,insecure) 127.0.0.1(ro,fsid=0,insecure)
$R1/vm1    vsock:1(rw,no_root_squash,insecure)
$R1/world  *(rw,insecure)
$R1/sec    vsock:1(rw,no_root_squash,secure)
$R7        vsock:7(ro,fsid=0,insecure)
$R7/vm7    vsock:7(rw,insecure)
$R8        vsock:8(ro,fsid=0,insecure)
$R8/vm8    vsock:8(rw,insecure)
EOF2
vmt_run "$EXPORTFS" -ra

vmt_step "the server: loopback-only nfsd, the bridge's nfsd in its namespace, mountd, the bridge"
vmt_run "$NFSD" -N 3 -H 127.0.0.1 -G 10 --vsock 2049 8
[ "$(tr '\n' ';' < /proc/fs/nfsd/portlist)" = "tcp 2049;" ] || fail "nfsd listens beyond loopback"
# rpc.nfsd started a bridge with the defaults; this scenario runs its own
# (hybrid sockets, -d) in the foreground, as an administrator may.
vmt_stop_rpcnfsd_bridge
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3 -d all
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
wait_for 10 "mountd to answer the bridge's nfsd" grep -q "answering the vsock bridge's nfsd too" "$W/mountd.log"
start_bridge() {
  vmt_start_daemon bridge "$W/bridge.log" "$BRIDGE" --vsock 2049 --target 127.0.0.1:2049 \
    --unix "$W/vm7.vsock_2049=7" --unix "$W/vm8.vsock_2049=8" -d
  wait_for 10 "the bridge" sh -c "grep -q forwarding '$W/bridge.log'"
}
start_bridge
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true
vmt_end_bridge_grace

guest_ns() { # name: a network namespace with only loopback, for one guest
  vmt_run ip netns add "$1"
  vmt_run ip -n "$1" link set lo up
}
for ns in g1 g1u g7 g8; do guest_ns "$ns"; done
in_ns() { local ns=$1; shift; nsenter "--net=/run/netns/$ns" "$@"; }

vmt_step "mount -t vsock finds mount.vsock (/usr/sbin gets it for this scenario)"
vmt_install_sbin_helper mount.vsock "$HELPER"
MOUNT_VSOCK=(mount -t vsock)

vmt_step "1. mount -t vsock 1:/vm1 reads and writes"
mkdir -p "$W/m1"
vmt_capture in_ns g1 "${MOUNT_VSOCK[@]}" 1:/vm1 "$W/m1" -o soft,timeo=100,retrans=3 -v
[ "$VMT_RC" = 0 ] || fail "vsock mount failed"
relay1=$(sed -n 's/.*relay 127\.0\.0\.1:[0-9]* -> vsock .*(pid \([0-9]*\)).*/\1/p' <<<"$VMT_OUT" | head -n 1)
keeper1=$(sed -n 's/.*(pid [0-9]*) kept by pid \([0-9]*\);.*/\1/p' <<<"$VMT_OUT" | head -n 1)
[ -n "$relay1" ] && [ -n "$keeper1" ] || fail "mount.vsock -v named no relay and keeper"
grep " $W/m1 " /proc/mounts | sed 's/^/  /'
echo "over vsock $token" > "$W/m1/f"
timeout 20 sync -f "$W/m1/f"
assert_eq "over vsock $token" "$(cat "$R1/vm1/f")" "written over vsock"
grep -q "vsock:1:[0-9]* connected as 127.128.0.1 (privileged port)" "$W/bridge.log" || fail "the bridge did not map CID 1 to 127.128.0.1"
grep -q "granted access to $R1/vm1 for vsock:1" "$W/mountd.log" || fail "mountd did not grant vsock:1"
assert_contains "$(vmt_cache_content auth.unix.ip bridge)" "127.128.0.1 vsock:1" "the bridge's nfsd saw the guest's mapped address"
assert_not_contains "$(vmt_cache_content auth.unix.ip)" "127.128.0.1" "the host's nfsd never saw the guest"

vmt_step "2. refusals: vsock:7's export, the * export, and an IP client on the vsock export"
mkdir -p "$W/m2"
vmt_capture in_ns g1 "$HELPER" 1:/vm7 "$W/m2"
if [ "$VMT_RC" = 0 ]; then
  if timeout 20 cat "$W/m2/token" 2>/dev/null; then fail "vsock:1 read vsock:7's export"; fi
  umount "$W/m2"
fi
vmt_capture in_ns g1 "$HELPER" 1:/world "$W/m2"
if [ "$VMT_RC" = 0 ]; then
  if timeout 20 cat "$W/m2/token" 2>/dev/null; then fail "the *(rw) export is visible over vsock"; fi
  umount "$W/m2"
fi
grep -q "denied access to $R1/world for vsock:1" "$W/mountd.log" || fail "mountd did not deny the * export to vsock:1"
vmt_nfs_mount "127.0.0.1:/vm1" "$W/m-ip"
if [ "$VMT_RC" = 0 ]; then
  if timeout 20 cat "$W/m-ip/f" 2>/dev/null; then fail "the IP client read the vsock-only export"; fi
  vmt_umount "$W/m-ip"
fi

vmt_step "3. secure: unprivileged guest port refused, privileged accepted"
vmt_capture in_ns g1u "$HELPER" 1:/sec "$W/m2" -o noresvport,soft,timeo=50,retrans=1
if [ "$VMT_RC" = 0 ]; then
  if ( echo x > "$W/m2/x" ) 2>/dev/null; then fail "a guest on an unprivileged port wrote to a secure export"; fi
  umount -f "$W/m2" || umount -l "$W/m2"
fi
grep -q "unprivileged port" "$W/bridge.log" || fail "the bridge saw no unprivileged guest port"
vmt_capture in_ns g1 "$HELPER" 1:/sec "$W/m2"
[ "$VMT_RC" = 0 ] || fail "privileged guest port refused"
echo ok > "$W/m2/x"
timeout 20 sync -f "$W/m2/x"
assert_eq ok "$(cat "$R1/sec/x")" "write from a privileged guest port"
umount "$W/m2"

vmt_step "4. hybrid vsock: Unix sockets as CIDs 7 and 8 (socat plays the VMM)"
for cid in 7 8; do
  vmt_start_daemon "vmm$cid" "$W/socat$cid.log" nsenter "--net=/run/netns/g$cid" socat "TCP-LISTEN:4000$cid,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$W/vm$cid.vsock_2049"
done
wait_for 10 "socat" sh -c 'nsenter --net=/run/netns/g8 ss -ltn | grep -q 127.0.0.1:40008'
for cid in 7 8; do
  other=$(( cid == 7 ? 8 : 7 ))
  VMT_NFS_OPTS="vers=4.1,port=4000$cid,retry=0,soft,timeo=50,retrans=2" vmt_nfs_mount "127.0.0.1:/vm$cid" "$W/h$cid" "g$cid"
  [ "$VMT_RC" = 0 ] || fail "CID $cid could not mount its export"
  assert_eq "vm$cid $token" "$(timeout 20 cat "$W/h$cid/token")" "CID $cid sees its export"
  vmt_umount "$W/h$cid"
  VMT_NFS_OPTS="vers=4.1,port=4000$cid,retry=0,soft,timeo=50,retrans=2" vmt_nfs_mount "127.0.0.1:/vm$other" "$W/h$cid" "g$cid"
  if [ "$VMT_RC" = 0 ]; then
    if timeout 20 cat "$W/h$cid/token" 2>/dev/null; then fail "CID $cid sees CID $other's export"; fi
    vmt_umount "$W/h$cid"
  fi
done
grep -q "vsock:7 via .*connected as 127.128.0.7" "$W/bridge.log" || fail "no CID 7 connection"
grep -q "vsock:8 via .*connected as 127.128.0.8" "$W/bridge.log" || fail "no CID 8 connection"

vmt_step "5. kill the bridge during a $COPY_MIB MiB copy, restart it"
vmt_mk_tmpfs "$W/src"
mount -o remount,size=$((COPY_MIB + 16))m "$W/src"
# 1 MiB of random bytes, repeated with each MiB numbered: as telling as a
# fully random file for a byte-for-byte comparison, and cheap to make under
# software emulation.
head -c $((1024 * 1024 - 16)) /dev/urandom > "$W/src/chunk"
for ((i = 0; i < COPY_MIB; i++)); do printf '%016d' "$i"; cat "$W/src/chunk"; done > "$W/src/big"
[ "$(stat -c %s "$W/src/big")" = $((COPY_MIB * 1024 * 1024)) ] || fail "test file has the wrong size"
( cp "$W/src/big" "$W/m1/big" && sync -f "$W/m1/big" && echo done > "$W/copy.status" || echo "failed $?" > "$W/copy.status" ) &
copier=$!
wait_for 120 "the copy to start" sh -c "[ -s '$R1/vm1/big' ] || [ -s '$W/m1/big' ]"
sleep 1
kill -9 "$(vmt_pid bridge)"
# The server's copy, not the client's: a stat through the mount while the
# bridge is down waits for it (it flushes dirty pages first) and, on this
# soft mount, can time out and fail the copy.
vmt_note "bridge killed with $(stat -c %s "$R1/vm1/big" 2>/dev/null || echo ?) bytes on the server"
sleep 2
start_bridge
wait "$copier" || true
assert_eq done "$(cat "$W/copy.status")" "the copy across the bridge restart"
cmp "$W/src/big" "$R1/vm1/big" || fail "the file on the server differs from the source"
vmt_note "$COPY_MIB MiB identical on the server (cksum $(cksum < "$R1/vm1/big" | cut -d' ' -f1))"
vmt_step "5b. the guest's relay: kept alive, and ready for writeback under pressure"
assert_eq vsock-relay "$(cat /proc/$relay1/comm)" "the relay's name"
assert_eq vsock-keeper "$(cat /proc/$keeper1/comm)" "the keeper's name"
assert_eq -1000 "$(cat /proc/$relay1/oom_score_adj)" "the relay is exempt from the OOM killer"
assert_eq -1000 "$(cat /proc/$keeper1/oom_score_adj)" "so is the keeper"
# Locked and resident (smaps_rollup), not VmLck: that one counts the whole
# size of every locked mapping, touched or not (MCL_ONFAULT).
locked=$(awk '/^Locked:/ { print $2 }' /proc/$relay1/smaps_rollup)
vmt_note "the relay: $locked KiB locked and resident, $(awk '/^Rss:/ { print $2 }' /proc/$relay1/smaps_rollup) KiB resident, VmLck $(awk '/^VmLck:/ { print $2 }' /proc/$relay1/status) KiB"
assert_gt "$locked" 511 "the relay's memory in use, its populated forwarding buffers (2 x 256 KiB per connection) among it, is locked"
mount -o remount,size=$((COPY_MIB + 16 + 48))m "$W/src"
vmt_note "kill -9 the relay during a $COPY_MIB MiB copy: its keeper starts it again on the same port"
dmesg -C
( cp "$W/src/big" "$W/m1/big2" && sync -f "$W/m1/big2" && echo done > "$W/copy2.status" || echo "failed $?" > "$W/copy2.status" ) &
copier=$!
wait_for 120 "the copy to start" sh -c "[ -s '$R1/vm1/big2' ]"
vmt_run kill -9 "$relay1"
at_kill=$(stat -c %s "$R1/vm1/big2")
[ "$at_kill" -lt $((COPY_MIB * 1024 * 1024)) ] || fail "the copy was complete before the relay was killed ($at_kill bytes)"
wait_for 10 "the keeper to start a new relay" sh -c "pgrep -P $keeper1 | grep -qvx $relay1"
relay1b=$(pgrep -P "$keeper1" | grep -vx "$relay1" | head -n 1)
vmt_note "relay $relay1 killed with $at_kill bytes of $((COPY_MIB * 1024 * 1024)) on the server; the new relay is pid $relay1b"
assert_ne "$relay1" "$relay1b" "a new relay"
wait "$copier" || true
assert_eq done "$(cat "$W/copy2.status")" "the copy across the relay's death"
cmp "$W/src/big" "$R1/vm1/big2" || fail "the file on the server differs from the source"
vmt_note "$COPY_MIB MiB identical on the server (cksum $(cksum < "$R1/vm1/big2" | cut -d' ' -f1))"
assert_contains "$(dmesg)" "died (killed by signal 9) while its mount needs it; restarting it" "the keeper says so in the kernel log"
relay1=$relay1b

vmt_note "5c. memory pressure: a process holds all but 150 MiB of this VM's available memory while a copy goes through the mount"
avail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
hog_mib=$(( avail / 1024 - 150 ))
python3 -c 'import mmap, os, sys, time
open("/proc/self/oom_score_adj", "w").write("1000")
size = int(sys.argv[1]) << 20
m = mmap.mmap(-1, size)
for offset in range(0, size, 4096): m[offset] = 1
print("holding", flush=True)
time.sleep(600)' "$hog_mib" > "$W/hog.out" 2>&1 &
hog=$!
vmt_defer "kill $hog 2>/dev/null || true"
wait_for 120 "the memory hog to dirty $hog_mib MiB" grep -q holding "$W/hog.out"
vmt_note "held $hog_mib MiB; MemAvailable now $(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo) MiB"
head -c $((48 * 1024 * 1024)) "$W/src/big" > "$W/src/pressure"
t0=$(date +%s)
timeout 300 sh -c "cp '$W/src/pressure' '$W/m1/pressure' && sync -f '$W/m1/pressure'" || fail "the copy under memory pressure did not complete"
vmt_note "48 MiB copied under memory pressure in $(( $(date +%s) - t0 )) s"
cmp "$W/src/pressure" "$R1/vm1/pressure" || fail "the file copied under memory pressure differs"
kill -0 "$relay1" || fail "the relay died under memory pressure"
vmt_note "the memory hog $(kill -0 "$hog" 2>/dev/null && echo "held on to the end" || echo "was killed meanwhile (the OOM killer's pick: oom_score_adj 1000)")"
kill "$hog" 2>/dev/null || true
wait "$hog" 2>/dev/null || true

vmt_step "6. umount: the relay and its keeper exit within 10 s"
umount "$W/m1"
wait_for 10 "the relay of 1:/vm1 (pid $relay1) to exit after umount" vmt_pid_gone "$relay1"
wait_for 10 "its keeper (pid $keeper1) to exit" vmt_pid_gone "$keeper1"
umount "$W/m2" 2>/dev/null || true
vmt_step "ok"
