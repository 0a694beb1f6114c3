#!/usr/bin/env bash
# The guest's side of NFS over vsock, and the bridge's view of its guests,
# with util-linux mount(8) finding mount.vsock as on a real guest (local
# CID 1 over vsock_loopback; CID 7 through a hybrid-vsock Unix socket):
#   1. mount.vsock's errors: no bridge, wrong port, no such export, a
#      refused export (secure root, unprivileged port);
#   2. `mount -t vsock` and an fstab line (mount -T) read and write;
#   3. nfsd-control status [--json] shows the bridge, its listeners and
#      guest CID 1 at 127.128.0.1 while the mount is open;
#   4. flood isolation: CID 7 opens connections past its cap and never
#      reads its replies; CID 1's mount keeps writing and reading;
#   5. relays: the one whose transport a second (trunked) mount shares
#      outlives its own umount and carries the other mount across a bridge
#      restart (SIGKILL: status reported stale); every relay exits within
#      10 s once no mount uses it; SIGTERM removes the status file;
#   6. no vsock transport (vsock_loopback unloaded): a specific error.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd BRIDGE=$BIN_DIR/nfs-vsock-bridge HELPER=$BIN_DIR/mount.vsock
STATUS_FILE=/run/nfs-vsock-bridge/status
CAP=4          # connections per guest for this bridge
FLOOD=$((CAP + 3))
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
in_ns() { local ns=$1; shift; nsenter "--net=/run/netns/$ns" "$@"; }

modprobe vsock_loopback
rm -f "$STATUS_FILE"
vmt_defer "rm -f $STATUS_FILE"

vmt_step "exports and the server (loopback-only nfsd, mountd)"
R1=$W/r1 R7=$W/r7
vmt_mk_v4root "$R1"
vmt_mk_v4root "$R7"
vmt_mk_ext4 "$R1/vm1" 96M
vmt_mk_ext4 "$R7/vm7"
chmod 777 "$R1/vm1"
# The root is secure (the default): a guest on an unprivileged port is
# refused right at the mount.
vmt_write_exports <<EOF2
$R1      vsock:1(ro,fsid=0)
$R1/vm1  vsock:1(rw,no_root_squash,insecure)
$R7      vsock:7(ro,fsid=0,insecure)
$R7/vm7  vsock:7(rw,insecure)
EOF2
vmt_run "$EXPORTFS" -ra
vmt_run "$NFSD" -N 3 -H 127.0.0.1 -G 10 --vsock 2049 8
# This scenario starts and stops its own bridge (cap, hybrid socket).
vmt_stop_rpcnfsd_bridge
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
wait_for 10 "mountd to answer the bridge's nfsd" grep -q "answering the vsock bridge's nfsd too" "$W/mountd.log"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true
vmt_end_bridge_grace
for ns in g1 g1u; do
  vmt_run ip netns add "$ns"
  vmt_run ip -n "$ns" link set lo up
done
vmt_install_sbin_helper mount.vsock "$HELPER"
mkdir -p "$W/x" "$W/y" "$W/z"

# relay_of OUTPUT: "PID PORT" of the relay named by mount.vsock -v.
relay_of() { sed -n 's/.*relay 127\.0\.0\.1:\([0-9]*\) -> vsock .*(pid \([0-9]*\)).*/\2 \1/p' <<<"$1" | head -n 1; }
# expect_mount_error WHAT MESSAGE cmd...: exit 32 and MESSAGE on stderr.
expect_mount_error() {
  local what=$1 message=$2; shift 2
  vmt_capture "$@"
  if [ "$VMT_RC" = 0 ]; then umount "$W/z" || true; fi
  assert_eq 32 "$VMT_RC" "$what: exit status"
  assert_contains "$VMT_OUT" "$message" "$what: message"
}
status_json() { "$NFSD" status --json; }
# guest_field CID FIELD: one field of a guest in status --json ("" if absent);
# FIELD may name a member of a member (rpc.latency.count).
guest_field() {
  status_json | python3 -c 'import json, sys
bridge = json.load(sys.stdin)["vsock"]["bridge"] or {}
for guest in bridge.get("guests", []):
    if guest["cid"] == int(sys.argv[1]):
        value = guest
        for name in sys.argv[2].split("."): value = value[name]
        print(value)' "$1" "$2"
}

vmt_step "1a. no bridge yet: the host is not listening"
expect_mount_error "mount without a bridge" "the host (CID 1) is not listening on vsock port 2049" \
  in_ns g1 mount -t vsock 1:/vm1 "$W/z"

vmt_step "the bridge (cap $CAP per guest) and its status"
start_bridge() { # [log name]
  vmt_start_daemon bridge "$W/${1:-bridge}.log" "$BRIDGE" --vsock 2049 --target 127.0.0.1:2049 \
    --unix "$W/vm7.vsock_2049=7" --max-per-guest "$CAP" -d
  wait_for 10 "the bridge's status file" grep -q "^pid $(vmt_pid bridge) " "$STATUS_FILE"
}
start_bridge
sed 's/^/  | /' "$STATUS_FILE"
vmt_capture "$NFSD" status
assert_contains "$VMT_OUT" "vsock:      served by nfs-vsock-bridge (pid $(vmt_pid bridge))" "status: what serves vsock"
assert_contains "$VMT_OUT" "bridge:     running (pid $(vmt_pid bridge))" "status: the bridge"
assert_contains "$VMT_OUT" "listens:  vsock port 2049 (every CID), $W/vm7.vsock_2049 (CID 7)" "status: listeners"
assert_contains "$VMT_OUT" "limits:   $CAP connections per guest" "status: limits"

vmt_step "2a. mount -t vsock (util-linux finds /sbin/mount.vsock)"
vmt_capture in_ns g1 mount -v -t vsock 1:/vm1 "$W/x" -o soft,timeo=100,retrans=3
[ "$VMT_RC" = 0 ] || fail "mount -t vsock failed"
read -r relay_x port_x <<<"$(relay_of "$VMT_OUT")"
[ -n "$relay_x" ] || fail "mount.vsock -v named no relay"
findmnt -n "$W/x" | sed 's/^/  /'
echo "x $token" > "$W/x/f"
timeout 20 sync -f "$W/x/f"
assert_eq "x $token" "$(cat "$R1/vm1/f")" "written through mount -t vsock"

vmt_step "3. status while the mount is open: guest CID 1 at 127.128.0.1"
wait_for 5 "the status to count the mount's bytes" sh -c "grep -q '^guest 1 127.128.0.1 open=[1-9].* to-guest=[1-9]' $STATUS_FILE"
sed 's/^/  | /' "$STATUS_FILE"
vmt_capture "$NFSD" status
printf '%s\n' "$VMT_OUT" | grep -qE '^    1 +127\.128\.0\.1 +[1-9]' || fail "status lists no open connection for guest CID 1"
assert_eq 127.128.0.1 "$(guest_field 1 address)" "status --json: guest 1's address"
assert_gt "$(guest_field 1 open)" 0 "status --json: guest 1's open connections"
assert_gt "$(guest_field 1 bytesFromGuest)" 0 "status --json: bytes from guest 1"
assert_ne None "$(guest_field 1 lastActivity)" "status --json: guest 1's last activity"
# The bridge follows the mount's RPC stream: calls, replies, round trips.
wait_for 5 "the status to count the mount's RPCs" sh -c "grep -q '^guest 1 .* rpc-replies=[1-9]' $STATUS_FILE"
assert_gt "$(guest_field 1 rpc.calls)" 0 "status --json: RPC calls of guest 1"
assert_gt "$(guest_field 1 rpc.replies)" 0 "status --json: RPC replies to guest 1"
assert_gt "$(guest_field 1 rpc.latency.count)" 0 "status --json: round trips of guest 1"
assert_eq 0 "$(guest_field 1 rpc.unparsedConnections)" "status --json: guest 1's stream followed as RPC"
vmt_capture "$NFSD" status --prometheus
assert_contains "$VMT_OUT" 'nfs_vsock_guest_rpc_latency_seconds_count{cid="1",address="127.128.0.1"} ' "status --prometheus: guest 1's round trips"

vmt_step "3b. the metrics against the bytes copied: 16 MiB written through mount x, then read back cold"
# Guest 1's counter NAME as nfsd-control status --prometheus has it.
metric_of() { "$NFSD" status --prometheus | awk -v prefix="$1{cid=\"1\"," 'index($0, prefix) == 1 { print $2 }'; }
# BEFORE AFTER WHAT: the counter moved by the payload, and by at most 5% + 256 KiB more
# (RPC and record headers, the mount's GETATTRs and COMMIT).
assert_moved_by_payload() {
  local delta=$(( $2 - $1 )) high=$(( PAYLOAD * 105 / 100 + (256 << 10) ))
  vmt_note "$3: $delta bytes for a $PAYLOAD-byte file"
  (( delta >= PAYLOAD && delta <= high )) || fail "$3: moved by $delta bytes, not within $PAYLOAD..$high"
}
PAYLOAD=$(( 16 << 20 ))
head -c "$PAYLOAD" /dev/urandom > "$W/payload16"
received0=$(metric_of nfs_vsock_guest_received_bytes_total)
cp "$W/payload16" "$W/x/payload16"
timeout 60 sync -f "$W/x/payload16"
sleep 2  # the bridge publishes its counts once a second
received1=$(metric_of nfs_vsock_guest_received_bytes_total)
assert_moved_by_payload "$received0" "$received1" "nfs_vsock_guest_received_bytes_total of guest 1 over the write"
cmp "$W/payload16" "$R1/vm1/payload16" || fail "the file written through mount x differs on the server"
sync; echo 3 > /proc/sys/vm/drop_caches
sent0=$(metric_of nfs_vsock_guest_sent_bytes_total)
cmp "$W/payload16" "$W/x/payload16" || fail "the file read back through mount x differs"
sleep 2
sent1=$(metric_of nfs_vsock_guest_sent_bytes_total)
assert_moved_by_payload "$sent0" "$sent1" "nfs_vsock_guest_sent_bytes_total of guest 1 over the cold read"
rm -f "$W/payload16" "$W/x/payload16"

vmt_step "2b. an fstab line (mount -T), with options only mount(8) and systemd know"
cat > "$W/fstab" <<EOF2
# a guest's fstab line for its host's export
1:/vm1  $W/y  vsock  noauto,_netdev,nofail,x-systemd.device-timeout=10,defaults,soft,timeo=100,retrans=3  0 0
EOF2
vmt_capture in_ns g1 mount -v -T "$W/fstab" "$W/y"
[ "$VMT_RC" = 0 ] || fail "mount through the fstab line failed"
read -r relay_y port_y <<<"$(relay_of "$VMT_OUT")"
# The same export twice in one namespace: the kernel may give y x's
# superblock, whose options (port= too) /proc/mounts then shows for y.
grep -E " $W/(x|y) " /proc/mounts | sed 's/^/  /'
vmt_note "mount(8) ran: $(grep -o 'called as .*' <<<"$VMT_OUT" || echo '?')"
assert_eq "x $token" "$(timeout 20 cat "$W/y/f")" "read through the fstab mount"
echo "y $token" > "$W/y/g"
timeout 20 sync -f "$W/y/g"
assert_eq "y $token" "$(cat "$R1/vm1/g")" "written through the fstab mount"
vmt_note "NFS clients in g1: $(in_ns g1 cat /proc/fs/nfsfs/servers | tail -n +2 | tr -s ' ' | paste -sd ';')"

vmt_step "1b. errors with the bridge up: wrong port, no such export, refused"
expect_mount_error "wrong vsock port" "the host (CID 1) is not listening on vsock port 2999" \
  in_ns g1 mount -t vsock -o vsock_port=2999 1:/vm1 "$W/z"
expect_mount_error "no such export" "the host has no export /nothere for this guest" \
  in_ns g1 mount -t vsock 1:/nothere "$W/z"
expect_mount_error "unprivileged port on a secure root" "the host refused /vm1 to this guest" \
  in_ns g1u timeout 120 mount -t vsock -o noresvport,soft,timeo=50,retrans=1 1:/vm1 "$W/z"

vmt_step "4. flood: $FLOOD connections from guest 7 (cap $CAP), never reading; CID 1 keeps working"
head -c $((16 * 1024 * 1024)) /dev/urandom > "$W/big"
# write_and_read NAME: 16 MiB through guest 1's mount and back (caches
# dropped between), compared; sets LAST_MS to the milliseconds taken.
write_and_read() {
  local t0=$EPOCHREALTIME
  timeout 120 cp "$W/big" "$W/y/$1" && timeout 60 sync -f "$W/y/$1" || fail "guest 1 could not write $1"
  echo 3 > /proc/sys/vm/drop_caches
  timeout 120 cmp "$W/big" "$W/y/$1" || fail "guest 1 read back something else than it wrote ($1)"
  cmp "$W/big" "$R1/vm1/$1" || fail "the server holds something else than guest 1 wrote ($1)"
  LAST_MS=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
}
write_and_read quiet
quiet_ms=$LAST_MS
cat > "$W/flood.py" <<'EOF2'
# Guest 7's misbehaving VMM: opens N connections on its hybrid socket and
# sends NFS NULL calls (up to 1 MiB per connection) without ever reading
# a reply. Reports how many connections the bridge kept, as
# "settled open=N closed=N sent=BYTES stalled=N" once things settle.
import os, select, socket, struct, sys, time
path, count, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def call(xid):
    body = struct.pack(">10I", xid, 0, 2, 100003, 4, 0, 0, 0, 0, 0)
    return struct.pack(">I", 0x80000000 | len(body)) + body
burst = b"".join(call(i) for i in range(1024))
conns = []
for _ in range(count):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.setblocking(False)
    conns.append(s)
sent, closed, stalled = [0] * count, [False] * count, [False] * count
poller = select.poll()
for s in conns:
    poller.register(s.fileno(), select.POLLHUP | select.POLLRDHUP | select.POLLERR)
start = time.time()
while True:
    for fd, _ in poller.poll(100):
        i = [s.fileno() for s in conns].index(fd)
        closed[i] = True
        poller.unregister(fd)
    for i, s in enumerate(conns):
        if closed[i] or sent[i] >= 1 << 20:
            continue
        try:
            sent[i] += s.send(burst)
        except BlockingIOError:
            stalled[i] = True
        except OSError:
            closed[i] = True
    state = "settled" if time.time() - start > 3 else "starting"
    with open(report + ".tmp", "w") as f:
        f.write("%s open=%d closed=%d sent=%d stalled=%d\n" % (state, closed.count(False), closed.count(True), sum(sent), stalled.count(True)))
    os.rename(report + ".tmp", report)
    time.sleep(0.2)
EOF2
vmt_start_daemon flood "$W/flood.log" python3 "$W/flood.py" "$W/vm7.vsock_2049" "$FLOOD" "$W/flood.report"
wait_for 20 "the flood to settle" grep -q '^settled' "$W/flood.report"
vmt_note "flood: $(cat "$W/flood.report")"
assert_contains "$(cat "$W/flood.report")" "open=$CAP closed=$((FLOOD - CAP))" "the bridge kept exactly $CAP of guest 7's connections"
grep -q "refused vsock:7 via $W/vm7.vsock_2049: guest 7 has $CAP connections (limit $CAP)" "$W/bridge.log" \
  || fail "the bridge log shows no cap refusal for guest 7"
write_and_read flooded
flood_ms=$LAST_MS
vmt_note "guest 1: 16 MiB written and read back in ${quiet_ms} ms before the flood, ${flood_ms} ms during it"
assert_eq "$CAP" "$(guest_field 7 open)" "status --json: guest 7's open connections"
assert_gt "$(guest_field 7 refused)" $((FLOOD - CAP - 1)) "status --json: guest 7's refusals"
vmt_run kill "$(vmt_pid flood)"
wait_for 10 "the status to show guest 7's connections closed" sh -c "grep -q '^guest 7 127.128.0.7 open=0 ' $STATUS_FILE"

vmt_step "5. relays: trunked mounts, umount, a bridge restart"
servers=$(in_ns g1 cat /proc/fs/nfsfs/servers)
printf '%s\n' "$servers" | sed 's/^/  | /'
x_shared=
for hex in $(printf '%s\n' "$servers" | awk 'NR > 1 { print $3 }'); do
  if [ "$((16#$hex))" = "$port_x" ]; then x_shared=1; fi
done
vmt_run umount "$W/x"
if [ -n "$x_shared" ]; then
  vmt_note "the NFS client of g1 goes through x's relay (port $port_x): it must stay for y"
  sleep 3
  vmt_pid_gone "$relay_x" && fail "x's relay exited although y's traffic goes through it"
else
  vmt_note "y has its own transport: x's relay must go"
  wait_for 10 "x's relay to exit after umount" vmt_pid_gone "$relay_x"
fi
vmt_run kill -9 "$(vmt_pid bridge)"
vmt_capture "$NFSD" status
assert_contains "$VMT_OUT" "$STATUS_FILE is stale: pid $(vmt_pid bridge) is gone" "status after SIGKILL"
start_bridge bridge2
echo "after restart $token" > "$W/y/h"
timeout 60 sync -f "$W/y/h" || fail "y could not write after the bridge restart"
assert_eq "after restart $token" "$(cat "$R1/vm1/h")" "y carries on across the bridge restart"
vmt_note "relay connections in g1 before the last umount (x: $port_x, y: $port_y):"
in_ns g1 ss -tanH | grep -E ":($port_x|$port_y)\b" | sed 's/^/  | /' || true
vmt_run umount "$W/y"
t0=$EPOCHREALTIME
# relay_exits NAME PID: within 10 s, else what it still holds, then fail.
relay_exits() {
  local deadline=$(( ${EPOCHREALTIME/./} + 10000000 ))
  until vmt_pid_gone "$2"; do
    if [ "${EPOCHREALTIME/./}" -gt "$deadline" ]; then
      in_ns g1 ss -tanpH | grep -E "pid=$2\b" | sed 's/^/  | /' || true
      in_ns g1 cat /proc/fs/nfsfs/servers | sed 's/^/  | /'
      fail "$1's relay (pid $2) still runs 10 s after the last umount"
    fi
    sleep 0.2
  done
  vmt_note "$1's relay exited $(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )) ms after the last umount"
}
relay_exits y "$relay_y"
relay_exits x "$relay_x"

vmt_step "SIGTERM: the bridge removes its status file"
vmt_run kill "$(vmt_pid bridge)"
wait_for 10 "the bridge to stop" vmt_pid_gone "$(vmt_pid bridge)"
[ ! -e "$STATUS_FILE" ] || fail "$STATUS_FILE left behind by a clean stop"
vmt_capture "$NFSD" status
assert_contains "$VMT_OUT" "vsock:      not served" "status without a bridge"
assert_not_contains "$VMT_OUT" "bridge:" "status without a bridge"

vmt_step "1c. no vsock transport (vsock_loopback unloaded)"
vmt_defer "modprobe vsock_loopback"
wait_for 20 "vsock_loopback to unload (closing sockets hold it briefly)" rmmod vsock_loopback
expect_mount_error "no vsock transport" "no vsock device in this guest to reach CID 1" \
  in_ns g1 mount -t vsock 1:/vm1 "$W/z"
vmt_run modprobe vsock_loopback
vmt_step "ok"
