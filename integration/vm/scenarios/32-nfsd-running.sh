#!/usr/bin/env bash
# rpc.nfsd on a running server (issue 17), our tools only: an NFSv4-only,
# loopback-only server with an IP client mounted, then:
#   1. rpc.nfsd --vsock 2049 (no version named) adds vsock service while a
#      48 MiB copy over the IP mount is writing (it is still writing when
#      the command returns, bytes reached the server meanwhile, and the
#      server's file has the source's sha256 at the end): the guests' nfsd
#      and the bridge start, the host's versions and listener are left and
#      said so, the thread count is set (4 -> 8), and the host's nfsd is not
#      restarted: no new grace period (v4_end_grace stays Y, a create on the
#      IP mount does not wait); a guest (vsock loopback, CID 1) mounts with
#      mount.vsock and writes;
#   2. the same command again changes nothing and leaves the bridge (same
#      pid) and the guest's mount;
#   3. the bridge reloads (SIGHUP, a new max-per-guest in nfs.conf) while
#      the guest copies 48 MiB through it: the same bridge says what
#      changed, the copy goes on after the reload and ends with the source's
#      sha256 on the server, and the guest's connection was neither closed
#      nor made again (the bridge's status: the same open and accepted
#      counts for guest 1, the copy's bytes counted on them; its log: no
#      connection opened or closed meanwhile);
#   4. -H 127.0.0.2 adds a listener to the running server; a client mounts
#      through it;
#   5. a version named (-V 3) is refused with the kernel's EBUSY explained,
#      and nothing is disturbed;
#   6. rpc.nfsd --vsock 0 stops vsock service only, while a copy over the IP
#      mount is writing (checked as in 1): the bridge, the guests' nfsd and
#      the namespace go; the IP mount keeps working, no grace period; again,
#      it says nothing was served; --vsock 0 with a port is refused.
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
vmt_mk_ext4 "$R/data" 256M
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

# A copy that is in progress while a command runs. dd writes what a paced
# feeder hands it through a FIFO, 1 MiB at a time with O_DIRECT (each write
# goes to the server as it is made, not at writeback), fsync at the end; the
# feeder hands over 1 MiB every 0.25 s and keeps the last MiB back until
# copy_finish, so the copy is still writing when the command under test
# returns, however long that takes under emulation.
COPY_MIB=${VMT32_COPY_MIB:-48}
dd if=/dev/urandom of="$W/src" bs=1M count="$COPY_MIB" status=none
SRC_SUM=$(sha256sum < "$W/src" | cut -c1-64)
vmt_note "the copies' source: $COPY_MIB MiB, sha256 $SRC_SUM"
srv_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
srv_has() { [ "$(srv_size "$1")" -ge "$2" ]; }

# copy_start NAME DEST SERVER-FILE: starts the copy of $W/src to DEST (on
# an NFS mount; SERVER-FILE is the same file on the server's file system)
# and returns once 2 MiB of it reached the server. Sets COPIER (dd's pid).
copy_start() {
  local name=$1 dst=$2 srv=$3 fifo=$W/$1.fifo go=$W/$1.go
  rm -f "$fifo" "$go"
  mkfifo "$fifo"
  (
    for (( i = 0; i < COPY_MIB; i++ )); do
      if [ ! -e "$go" ]; then
        if (( i < COPY_MIB - 1 )); then
          sleep 0.25
        else
          for (( n = 0; n < 3000; n++ )); do [ ! -e "$go" ] || break; sleep 0.1; done
        fi
      fi
      dd if="$W/src" bs=1M skip="$i" count=1 status=none
    done
  ) > "$fifo" &
  FEEDER=$!
  dd if="$fifo" of="$dst" bs=1M iflag=fullblock oflag=direct conv=fsync status=none 2> "$W/$name.dd.err" &
  COPIER=$!
  COPY_T0=$EPOCHREALTIME
  vmt_defer "kill $FEEDER $COPIER 2>/dev/null"
  printf '$ dd if=(%s MiB, 1 MiB each 0.25 s) of=%s bs=1M oflag=direct conv=fsync &   (pid %s)\n' "$COPY_MIB" "$dst" "$COPIER"
  wait_for 60 "the copy's first 2 MiB to reach the server" srv_has "$srv" $((2 << 20))
}

# copy_alive LABEL: the command just returned; the copy must still run.
copy_alive() {
  ! vmt_pid_gone "$COPIER" || fail "$1: the copy had ended before the command returned ($(cat "$W"/*.dd.err))"
}

# copy_still_running LABEL SIZE-BEFORE SERVER-FILE: the command just
# returned; the copy must still be writing, and have written meanwhile.
copy_still_running() {
  local size
  size=$(srv_size "$3")
  copy_alive "$1"
  vmt_note "$1: the copy still runs (pid $COPIER); the server's file grew $2 -> $size bytes meanwhile"
  assert_gt "$size" "$2" "$1: bytes of the copy reached the server while the command ran"
}

# copy_finish NAME SERVER-FILE: lets the feeder go, waits for dd, and
# compares the server's file, read from its disk, with the source.
copy_finish() {
  local name=$1 srv=$2 rc=0 sum ms
  touch "$W/$name.go"
  wait_for 300 "the copy to $srv to finish" vmt_pid_gone "$COPIER"
  wait "$COPIER" || rc=$?
  wait "$FEEDER" || true
  ms=$(( (${EPOCHREALTIME/./} - ${COPY_T0/./}) / 1000 ))
  [ "$rc" = 0 ] || fail "$name: the copy failed (dd exit $rc): $(cat "$W/$name.dd.err")"
  sync
  echo 3 > /proc/sys/vm/drop_caches
  sum=$(sha256sum < "$srv" | cut -c1-64)
  vmt_note "$name: $COPY_MIB MiB copied in $((ms / 1000)).$((ms % 1000 / 100)) s (paced until released); the server's file: $(srv_size "$srv") bytes, sha256 $sum"
  assert_eq $((COPY_MIB << 20)) "$(srv_size "$srv")" "$name: the server's file has the whole copy"
  assert_eq "$SRC_SUM" "$sum" "$name: the server's file has the source's sha256"
  rm -f "$srv"
}

# cmd_ms T0: milliseconds since T0 (an $EPOCHREALTIME).
cmd_ms() { echo $(( (${EPOCHREALTIME/./} - ${1/./}) / 1000 )); }

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

vmt_step "1. rpc.nfsd --vsock 2049 on the running server, while a copy over the IP mount writes"
copy_start add "$W/ip/copy-add" "$R/data/copy-add"
size0=$(srv_size "$R/data/copy-add") t0=$EPOCHREALTIME
vmt_capture "$NFSD" --vsock 2049
vmt_note "rpc.nfsd --vsock 2049 took $(cmd_ms "$t0") ms"
copy_still_running "rpc.nfsd --vsock 2049" "$size0" "$R/data/copy-add"
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
copy_finish add "$R/data/copy-add"
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

vmt_step "3. the bridge reloads (SIGHUP) while the guest copies through it"
STATUS=/run/nfs-vsock-bridge/status BLOG=/var/log/nfs-vsock-bridge.log
# guest1 FIELD: a count of guest 1's in the bridge's status file.
guest1() { sed -n "s/^guest 1 .* $1=\([0-9]*\).*/\1/p" "$STATUS"; }
guest1_from_at_least() { [ "$(guest1 from-guest)" -ge "$1" ]; }
log_since() { tail -c +$(( $1 + 1 )) "$BLOG"; }
reloaded_since() { log_since "$1" | grep -q "reloaded:"; }
cp /etc/nfs.conf "$W/nfs.conf.orig"
vmt_defer "cp $W/nfs.conf.orig /etc/nfs.conf"
vmt_note "the bridge's status for guest 1 before the copy: $(grep '^guest 1 ' "$STATUS")"
open0=$(guest1 open) accepted0=$(guest1 accepted) from0=$(guest1 from-guest)
[ -n "$open0" ] && [ "$open0" -ge 1 ] || fail "the guest's mount holds no connection through the bridge"
mark=$(stat -c %s "$BLOG")
copy_start hup "$W/guest/copy-hup" "$R/data/copy-hup"
{ cat "$W/nfs.conf.orig"; printf '[vsock]\nmax-per-guest = 8\n'; } > /etc/nfs.conf
size0=$(srv_size "$R/data/copy-hup")
vmt_run kill -HUP "$bridge_pid"
wait_for 10 "the bridge to reload" reloaded_since "$mark"
copy_alive "the bridge's reload"
size1=$(srv_size "$R/data/copy-hup")
vmt_note "the bridge reloaded with the copy at $size0 -> $size1 bytes on the server (pid $COPIER still writing)"
assert_contains "$(log_since "$mark")" "reloaded: max-per-guest 16 -> 8; no connection dropped" "the bridge says what changed"
wait_for 60 "the copy to go on after the reload" srv_has "$R/data/copy-hup" $(( size1 + (2 << 20) ))
vmt_note "after the reload the copy went on: $size1 -> $(srv_size "$R/data/copy-hup") bytes on the server"
copy_finish hup "$R/data/copy-hup"
kill -0 "$bridge_pid" || fail "the bridge is gone after SIGHUP"
assert_eq "$bridge_pid" "$(vmt_bridge_pid)" "the same bridge after SIGHUP"
wait_for 10 "the bridge's status to count the copy" guest1_from_at_least $(( from0 + (COPY_MIB << 20) ))
vmt_note "the bridge's status for guest 1 after the copy: $(grep '^guest 1 ' "$STATUS")"
assert_eq "$accepted0" "$(guest1 accepted)" "guest 1's connections accepted by the bridge (a dropped connection is made again: one more)"
assert_eq "$open0" "$(guest1 open)" "guest 1's open connections"
grep -q "max-per-guest=8 " "$STATUS" || fail "the status does not show the reloaded max-per-guest: $(grep '^limits' "$STATUS")"
printf -- '--- the bridge log since the copy began\n'; log_since "$mark" | sed 's/^/  | /'
assert_not_contains "$(log_since "$mark")" " connected as " "no guest connection opened during the copy"
assert_not_contains "$(log_since "$mark")" " closed" "no guest connection closed during the copy"
assert_not_contains "$(log_since "$mark")" " ended: " "no guest connection ended during the copy"
vmt_note "the old limits back for the steps below"
cp "$W/nfs.conf.orig" /etc/nfs.conf
mark=$(stat -c %s "$BLOG")
vmt_run kill -HUP "$bridge_pid"
wait_for 10 "the bridge to reload" reloaded_since "$mark"
assert_contains "$(log_since "$mark")" "reloaded: max-per-guest 8 -> 16; no connection dropped" "the second reload"
assert_eq "guest $token" "$(timeout 20 cat "$W/guest/from-guest")" "the guest's mount still reads"

vmt_step "4. -H 127.0.0.2 adds a listener to the running server"
vmt_capture "$NFSD" -H 127.0.0.2 --vsock 2049 8
assert_eq 0 "$VMT_RC" "rpc.nfsd -H 127.0.0.2"
assert_contains "$VMT_OUT" "changed: listening on tcp 127.0.0.2:2049" "the new listener"
assert_eq "tcp 2049;tcp 2049;" "$(tr '\n' ';' < /proc/fs/nfsd/portlist)" "two listeners"
vmt_nfs_mount "127.0.0.2:/data" "$W/ip2"
assert_eq 0 "$VMT_RC" "a mount through the new listener"
assert_eq "ip $token" "$(timeout 20 cat "$W/ip2/before")" "read through the new listener"
vmt_umount "$W/ip2"

vmt_step "5. a version named on a running server: the kernel's EBUSY, explained"
vmt_capture "$NFSD" -V 3 --vsock 2049 8
assert_ne 0 "$VMT_RC" "a version change on a running server"
assert_contains "$VMT_OUT" "cannot change the NFS versions of a running server" "the refusal"
assert_contains "$VMT_OUT" "stop the server first: rpc.nfsd 0" "what to do"
assert_eq "$versions0" "$(cat /proc/fs/nfsd/versions)" "the versions"
assert_eq 8 "$(cat /proc/fs/nfsd/threads)" "the threads"
assert_eq "$bridge_pid" "$(vmt_bridge_pid)" "the bridge"

vmt_step "6. rpc.nfsd --vsock 0: vsock service goes, IP service stays, while a copy over the IP mount writes"
vmt_run timeout 20 umount "$W/guest"
copy_start stop "$W/ip/copy-stop" "$R/data/copy-stop"
size0=$(srv_size "$R/data/copy-stop") t0=$EPOCHREALTIME
vmt_capture "$NFSD" --vsock 0
vmt_note "rpc.nfsd --vsock 0 took $(cmd_ms "$t0") ms"
copy_still_running "rpc.nfsd --vsock 0" "$size0" "$R/data/copy-stop"
assert_eq 0 "$VMT_RC" "rpc.nfsd --vsock 0"
assert_contains "$VMT_OUT" "vsock is no longer served: stopped nfs-vsock-bridge (pid $bridge_pid) and the nfsd for vsock guests and network namespace nfs-vsock" "what it stopped"
assert_contains "$VMT_OUT" "IP service is left as it was (8 threads" "what it left"
vmt_pid_gone "$bridge_pid" || fail "the bridge still runs"
[ ! -e /run/netns/nfs-vsock ] || fail "the bridge's namespace is still there"
[ ! -e /run/nfs-vsock-bridge.wanted ] || fail "the bridge is still marked wanted"
assert_eq 8 "$(cat /proc/fs/nfsd/threads)" "the host's threads"
no_restart "after --vsock 0" after-vsock0
copy_finish stop "$R/data/copy-stop"
wait_for 15 "mountd to let the guests' nfsd go" grep -q "no longer answering its nfsd" "$W/mountd.log"
vmt_capture "$NFSD" --vsock 0
assert_eq 0 "$VMT_RC" "rpc.nfsd --vsock 0 again"
assert_contains "$VMT_OUT" "vsock was not served; nothing changed" "nothing to stop"
vmt_capture "$NFSD" --vsock 0 --vsock 2049
assert_ne 0 "$VMT_RC" "--vsock 0 with a port"
assert_contains "$VMT_OUT" "--vsock 0 stops vsock service and takes no other --vsock port" "the refusal"
vmt_umount "$W/ip"
vmt_step "ok"
