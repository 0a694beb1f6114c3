#!/usr/bin/env bash
# rpc.nfsd on a running server (issue 17), our tools only: an NFSv4-only,
# loopback-only server with an IP client mounted, then:
#   1. rpc.nfsd --vsock 2049 (no version named) adds vsock service: the
#      guests' nfsd and the bridge start, the host's versions and listener
#      are left and said so, the thread count is set (4 -> 8), and the
#      host's nfsd is not restarted: no new grace period (v4_end_grace stays
#      Y, a create on the IP mount does not wait); a guest (vsock loopback,
#      CID 1) mounts and writes;
#   2. the same command again changes nothing and leaves the bridge (same
#      pid) and the guest's mount;
#   3. -H 127.0.0.2 adds a listener to the running server; a client mounts
#      through it;
#   4. a version named (-V 3) is refused with the kernel's EBUSY explained,
#      and nothing is disturbed;
#   5. rpc.nfsd --vsock 0 stops vsock service only: the bridge, the guests'
#      nfsd and the namespace go; the IP mount keeps working, no grace
#      period; again, it says nothing was served; --vsock 0 with a port is
#      refused.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd HELPER=$BIN_DIR/mount.vsock
modprobe vsock_loopback
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

vmt_step "exports for the IP client and for vsock:1"
R=$W/root
vmt_mk_v4root "$R"
vmt_mk_ext4 "$R/data"
chmod 777 "$R/data"
vmt_write_exports <<EOF
$R       127.0.0.0/8(ro,fsid=0,insecure) vsock:1(ro,fsid=0,insecure)
$R/data  127.0.0.0/8(rw,no_root_squash,insecure) vsock:1(rw,no_root_squash,insecure)
EOF
vmt_run "$EXPORTFS" -ra

vmt_step "the running server: rpc.nfsd -N 3 -V 4.1 -H 127.0.0.1 4 (as in the issue), mountd, an IP client"
vmt_run "$NFSD" -N 3 -V 4.1 -H 127.0.0.1 4
vmt_defer "$NFSD 0 >/dev/null 2>&1"
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3 -d all
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
echo Y > /proc/fs/nfsd/v4_end_grace
versions0=$(cat /proc/fs/nfsd/versions)
vmt_note "versions: $versions0; portlist: $(tr '\n' ';' < /proc/fs/nfsd/portlist)"
vmt_nfs_mount "127.0.0.1:/data" "$W/ip"
[ "$VMT_RC" = 0 ] || fail "the IP client's mount failed"
echo "ip $token" > "$W/ip/before"

# no_restart LABEL: the host's nfsd was not restarted: its grace period
# stays ended, and a create over the IP mount goes through at once (a new
# grace period would hold it for 90 s).
no_restart() {
  assert_eq Y "$(cat /proc/fs/nfsd/v4_end_grace)" "$1: the host's nfsd's grace period stays ended"
  local t0 t1
  t0=$(date +%s%N)
  timeout 20 sh -c "echo '$1' > '$W/ip/$2' && sync -f '$W/ip/$2'" || fail "$1: a create on the IP mount did not go through within 20 s"
  t1=$(date +%s%N)
  vmt_note "$1: a create on the IP mount took $(( (t1 - t0) / 1000000 )) ms"
  [ $(( (t1 - t0) / 1000000000 )) -lt 10 ] || fail "$1: the create waited (grace period?)"
  assert_eq "$1" "$(cat "$R/data/$2")" "$1: the create reached the server"
}

vmt_step "1. rpc.nfsd --vsock 2049 on the running server"
vmt_capture "$NFSD" --vsock 2049
assert_eq 0 "$VMT_RC" "rpc.nfsd --vsock 2049 on a running server"
assert_contains "$VMT_OUT" "the server is running; changed: threads 4 -> 8; started the nfsd for vsock guests" "it says what it changed"
assert_contains "$VMT_OUT" "left as it was: versions " "it says what it left"
assert_contains "$VMT_OUT" "(none named)" "versions were not asked for"
assert_contains "$VMT_OUT" "tcp 127.0.0.1:2049 (nfsd already listens on tcp port 2049)" "the listener is left"
assert_contains "$VMT_OUT" "served by nfs-vsock-bridge (pid" "the bridge started"
assert_eq "$versions0" "$(cat /proc/fs/nfsd/versions)" "the host's versions"
assert_eq "tcp 2049;" "$(tr '\n' ';' < /proc/fs/nfsd/portlist)" "the host's listeners"
assert_eq 8 "$(cat /proc/fs/nfsd/threads)" "the host's threads"
no_restart "after --vsock 2049" after-vsock
bridge_pid=$(vmt_bridge_pid)
wait_for 10 "the bridge to forward" grep -q "forwarding vsock" /var/log/nfs-vsock-bridge.log
vmt_end_bridge_grace
vmt_run ip netns add g1
vmt_defer "ip netns del g1"
vmt_run ip -n g1 link set lo up
mkdir -p "$W/guest"
vmt_capture nsenter --net=/run/netns/g1 "$HELPER" 1:/data "$W/guest" -o soft,timeo=100,retrans=3
assert_eq 0 "$VMT_RC" "the guest's mount over vsock"
echo "guest $token" > "$W/guest/from-guest"
timeout 20 sync -f "$W/guest/from-guest"
assert_eq "guest $token" "$(cat "$R/data/from-guest")" "written by the guest"

vmt_step "2. the same command again: nothing changes, the bridge stays"
vmt_capture "$NFSD" --vsock 2049
assert_eq 0 "$VMT_RC" "rpc.nfsd --vsock 2049 again"
assert_contains "$VMT_OUT" "the server is running; nothing changed" "nothing to change"
assert_contains "$VMT_OUT" "served by nfs-vsock-bridge (pid $bridge_pid)" "the same bridge"
assert_contains "$VMT_OUT" "left running, its guests keep their connections" "it says the bridge is left"
assert_eq "$bridge_pid" "$(vmt_bridge_pid)" "the bridge's pid"
assert_eq "guest $token" "$(timeout 20 cat "$W/guest/from-guest")" "the guest's mount still reads"

vmt_step "3. -H 127.0.0.2 adds a listener to the running server"
vmt_capture "$NFSD" -H 127.0.0.2 --vsock 2049 8
assert_eq 0 "$VMT_RC" "rpc.nfsd -H 127.0.0.2"
assert_contains "$VMT_OUT" "changed: listening on tcp 127.0.0.2:2049" "the new listener"
assert_eq "tcp 2049;tcp 2049;" "$(tr '\n' ';' < /proc/fs/nfsd/portlist)" "two listeners"
vmt_nfs_mount "127.0.0.2:/data" "$W/ip2"
assert_eq 0 "$VMT_RC" "a mount through the new listener"
assert_eq "ip $token" "$(timeout 20 cat "$W/ip2/before")" "read through the new listener"
vmt_umount "$W/ip2"

vmt_step "4. a version named on a running server: the kernel's EBUSY, explained"
vmt_capture "$NFSD" -V 3 --vsock 2049 8
assert_ne 0 "$VMT_RC" "a version change on a running server"
assert_contains "$VMT_OUT" "cannot change the NFS versions of a running server" "the refusal"
assert_contains "$VMT_OUT" "stop the server first: rpc.nfsd 0" "what to do"
assert_eq "$versions0" "$(cat /proc/fs/nfsd/versions)" "the versions"
assert_eq 8 "$(cat /proc/fs/nfsd/threads)" "the threads"
assert_eq "$bridge_pid" "$(vmt_bridge_pid)" "the bridge"

vmt_step "5. rpc.nfsd --vsock 0: vsock service goes, IP service stays"
vmt_run timeout 20 umount "$W/guest"
vmt_capture "$NFSD" --vsock 0
assert_eq 0 "$VMT_RC" "rpc.nfsd --vsock 0"
assert_contains "$VMT_OUT" "vsock is no longer served: stopped nfs-vsock-bridge (pid $bridge_pid) and the nfsd for vsock guests and network namespace nfs-vsock" "what it stopped"
assert_contains "$VMT_OUT" "IP service is left as it was (8 threads" "what it left"
vmt_pid_gone "$bridge_pid" || fail "the bridge still runs"
[ ! -e /run/netns/nfs-vsock ] || fail "the bridge's namespace is still there"
[ ! -e /run/nfs-vsock-bridge.wanted ] || fail "the bridge is still marked wanted"
assert_eq 8 "$(cat /proc/fs/nfsd/threads)" "the host's threads"
no_restart "after --vsock 0" after-vsock0
wait_for 15 "mountd to let the guests' nfsd go" grep -q "no longer answering its nfsd" "$W/mountd.log"
vmt_capture "$NFSD" --vsock 0
assert_eq 0 "$VMT_RC" "rpc.nfsd --vsock 0 again"
assert_contains "$VMT_OUT" "vsock was not served; nothing changed" "nothing to stop"
vmt_capture "$NFSD" --vsock 0 --vsock 2049
assert_ne 0 "$VMT_RC" "--vsock 0 with a port"
assert_contains "$VMT_OUT" "--vsock 0 stops vsock service and takes no other --vsock port" "the refusal"
vmt_umount "$W/ip"
vmt_step "ok"
