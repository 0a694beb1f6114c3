#!/usr/bin/env bash
# The bridge's connection caps against the limits of the kernel and of the
# process (our tools only: rpc.nfsd --vsock 2049 and the bridge it starts):
#   1. rpc.nfsd gives the guests' nfsd a max_connections above the bridge's
#      cap ([vsock] max-connections + 64) and says so; nfsd-control status
#      shows it. Left at 0, nfsd closes its oldest connection for each one
#      past (threads + 3) x 20 on Linux 6.1 (220 with 8 threads), and past
#      64 that have presented no file handle on kernels with the 2025
#      change (6.12.y's later releases);
#   2. the bridge raised its open-files limit to fit its caps (two
#      descriptors per connection); a bridge whose limit cannot be raised
#      (hard limit 200, no CAP_SYS_RESOURCE) refuses to start and says why;
#   3. 300 connections of one guest (a hybrid vsock socket, CID 9) are each
#      answered, and all of them still are once the 300th is open: nfsd
#      closed none. Control: with max_connections back at the kernel's
#      default, the same run loses its oldest connections: down to 220 and
#      the kernel says "too many open connections" (6.1), or down to 64
#      silently (kernels that count only connections without a file
#      handle; these NULL-only connections never present one);
#   4. what those connections cost the bridge: resident memory and threads
#      while all 300 are open, against the bridge idle (goal of issue 14:
#      1,000 connections in 64 MiB);
#   5. a guest's users cannot take its kernel's slots: as nobody, 12
#      connections over vsock loopback (CID 1) from unprivileged ports get
#      4 answered (the unprivileged quota) while root's 16 from privileged
#      ports, made meanwhile, are all answered; of the 8 refusals the log
#      shows 5 and a line saying the rest are counted (rate limit);
#   6. a guest that floods fills the bridge only up to the reserve kept for
#      guests without a connection (320 / 16 = 20): guest 9 gets 300 of 305,
#      and a newcomer (CID 1) then still gets its first connection, not a
#      second;
#   7. SIGHUP with new limits in nfs.conf (max-per-guest 3, max-connections
#      400): the same bridge keeps guest 9's 5 open connections, refuses a
#      sixth, and says that nfsd's max_connections is now too low; rpc.nfsd
#      on the running server raises it (464) and leaves the bridge.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control BRIDGE=$BIN_DIR/nfs-vsock-bridge
HOLD=$(dirname "$0")/../conn-hold.py
SOCK=/run/vm9.vsock_2049 COUNT=300 CAP=320
modprobe vsock_loopback
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }

vmt_step "rpc.nfsd --vsock 2049 with the bridge's caps in nfs.conf: $CAP in total, 400 per guest; guest 9 on a hybrid socket"
printf '[vsock]\nmax-connections = %s\nmax-per-guest = 400\nunix = %s=9\n' "$CAP" "$SOCK" > /etc/nfs.conf
vmt_defer ": > /etc/nfs.conf; rm -f $SOCK"
vmt_note "this shell's open-files limit: soft $(ulimit -Sn), hard $(ulimit -Hn)"
vmt_capture "$NFSD" -G 10 -T --vsock 2049 8
[ "$VMT_RC" = 0 ] || fail "rpc.nfsd --vsock 2049 failed"
vmt_defer "$NFSD 0 >/dev/null"
vmt_end_bridge_grace
wait_for 10 "the bridge to forward" grep -q "forwarding vsock" /var/log/nfs-vsock-bridge.log
bridge_pid=$(vmt_bridge_pid)

limits() {
  if [ ! -e /run/nfs-vsock/nfsd/max_connections ]; then
    vmt_note "this kernel has no max_connections (it limits only connections without a file handle, to 64)"
    assert_contains "$VMT_OUT" "no max_connections in this kernel" "rpc.nfsd says it set none"
    vmt_capture "$NFSD" status
    assert_contains "$VMT_OUT" "max_connections none (not in this kernel)" "nfsd-control status"
  else
    assert_contains "$VMT_OUT" "max_connections $((CAP + 64)) (the bridge's max-connections $CAP + 64)" "rpc.nfsd says what it set"
    assert_eq "$((CAP + 64))" "$(cat /run/nfs-vsock/nfsd/max_connections)" "the guests' nfsd's max_connections"
    assert_eq 0 "$(cat /proc/fs/nfsd/max_connections)" "the host's nfsd is left as it was"
    vmt_capture "$NFSD" status
    assert_contains "$VMT_OUT" "max_connections $((CAP + 64))" "nfsd-control status"
    vmt_capture "$NFSD" status --json
    assert_contains "$VMT_OUT" "\"maxConnections\": $((CAP + 64))" "nfsd-control status --json"
  fi

  local needed=$((2 * CAP + 2 + 64)) soft
  soft=$(awk '/^Max open files/ { print $4 }' "/proc/$bridge_pid/limits")
  vmt_note "the bridge's open-files limit: $(grep '^Max open files' "/proc/$bridge_pid/limits")"
  [ "$soft" -ge "$needed" ] || fail "the bridge's soft limit $soft is below the $needed its caps need"
  if [ "$(ulimit -Sn)" -lt "$needed" ]; then
    assert_contains "$(cat /var/log/nfs-vsock-bridge.log)" "open files limit raised from $(ulimit -Sn) to $needed (max-connections $CAP)" "the bridge says it raised its limit"
  fi

  vmt_note "a bridge that cannot hold its caps refuses to start (hard limit 200, no CAP_SYS_RESOURCE)"
  vmt_capture setpriv --bounding-set=-sys_resource -- prlimit --nofile=200:200 -- \
    "$BRIDGE" --unix "$W/other.vsock=10" --max-connections "$CAP" --status-file none
  assert_ne 0 "$VMT_RC" "the bridge's exit status"
  assert_contains "$VMT_OUT" "max-connections $CAP needs $((2 * CAP + 1 + 64)) file descriptors, and the limit is 200 (hard 200), which cannot be raised" "the refusal"
  assert_contains "$VMT_OUT" "LimitNOFILE=" "the refusal says what to raise"
  assert_contains "$VMT_OUT" "not serving vsock" "the refusal says what it means"
}
vmt_part "1-2. max_connections of the guests' nfsd, the bridge's descriptor budget" limits

cost() { awk '/^(VmRSS|Threads):/ { printf "%s %s ", $1, $2 }' "/proc/$bridge_pid/status"; }  # "VmRSS: KIB Threads: N"
hold() { # LABEL: holds COUNT connections of guest 9; sets HELD (with the bridge's cost while they are open)
  HELD=$(timeout 300 python3 "$HOLD" "unix:$SOCK" "$COUNT" "$bridge_pid")
  vmt_note "$1: $HELD"
}

connections() {
  dmesg -C
  local idle
  idle=$(cost)
  vmt_note "the bridge idle: $idle"
  hold "max_connections $((CAP + 64))"
  assert_contains "$HELD" "opened $COUNT first-answered $COUNT still-answered $COUNT" "every connection kept"
  assert_not_contains "$(dmesg)" "too many open connections" "the kernel closed no connection"
  local rss0 rss1 threads1 per
  rss0=$(echo "$idle" | awk '{ print $2 }')
  rss1=$(echo "$HELD" | awk '/^held:/ { print $3 }')
  threads1=$(echo "$HELD" | awk '/^held:/ { print $5 }')
  per=$(( (rss1 - rss0) / COUNT ))
  vmt_note "4. per connection: $per KiB resident (bridge $rss0 -> $rss1 KiB), threads $(echo "$idle" | awk '{ print $4 }') -> $threads1"
  [ "$per" -lt 64 ] || fail "each idle connection costs the bridge $per KiB (goal: 1,000 in 64 MiB)"

  [ -e /run/nfs-vsock/nfsd/max_connections ] || return 0  # no control possible
  vmt_note "control: max_connections 0, the kernel's default"
  echo 0 > /run/nfs-vsock/nfsd/max_connections
  wait_for 20 "the bridge to drop the first run's connections" \
    sh -c "! grep -q '^guest 9 ' /run/nfs-vsock-bridge/status || grep -q '^guest 9 .* open=0 ' /run/nfs-vsock-bridge/status"
  hold "max_connections 0"
  echo "$((CAP + 64))" > /run/nfs-vsock/nfsd/max_connections  # before any assertion: part 6 needs it
  assert_contains "$HELD" "opened $COUNT first-answered $COUNT" "each connection was answered as it opened"
  assert_contains "$HELD" "lost 0 " "the oldest connection went first"
  local kept
  kept=$(echo "$HELD" | sed -n 's/.*still-answered \([0-9]*\).*/\1/p')
  if dmesg | grep -q "too many open connections"; then
    vmt_note "this kernel counts every connection: (8 + 3) x 20 = 220, and says so"
    assert_eq 220 "$kept" "connections the kernel's default kept"
  else
    vmt_note "this kernel counts only connections that presented no file handle (NULL-only ones here), 64 by default, and logs nothing"
    assert_eq 64 "$kept" "connections the kernel's default kept"
  fi
}
vmt_part "3. 300 connections of one guest, none closed by nfsd" connections

# hold_in_background OUT SECONDS LABEL COMMAND...: runs a conn-hold.py that
# keeps its connections SECONDS after its report; returns once it reported
# (HOLDER: its pid).
hold_in_background() {
  local out=$1 seconds=$2 label=$3
  shift 3
  HOLD_SECONDS=$seconds "$@" > "$out" &
  HOLDER=$!
  vmt_defer "kill $HOLDER 2>/dev/null"
  wait_for 120 "$label to be tried" grep -q '^opened' "$out"
  vmt_note "$label: $(head -1 "$out")"
}

quota() {
  hold_in_background "$W/unprivileged.out" 30 "nobody's 12 connections from unprivileged ports" \
    as_nobody python3 "$HOLD" vsock:1:2049 12
  local held=$HOLDER
  assert_contains "$(cat "$W/unprivileged.out")" "opened 12 first-answered 4 still-answered 4" "the unprivileged quota"
  local why="guest 1 has 4 connections from unprivileged ports (limit 4; its privileged ones are not affected)"
  assert_contains "$(cat /var/log/nfs-vsock-bridge.log)" "$why" "the bridge says why"
  assert_eq 6 "$(grep -cF "$why" /var/log/nfs-vsock-bridge.log)" "refusals logged of 8 (5, then the one saying the rest are counted)"
  assert_contains "$(cat /var/log/nfs-vsock-bridge.log)" "(further refusals of guest 1 in the next 10 s are counted, not logged)" "the rate limit says so"
  HELD=$(timeout 120 python3 "$HOLD" vsock-priv:1:2049 16)
  vmt_note "root, privileged ports, meanwhile: $HELD"
  assert_contains "$HELD" "opened 16 first-answered 16 still-answered 16" "the kernel's slots stay free"
  kill "$held" 2>/dev/null || true
}
vmt_part "5. a guest's unprivileged connections have their own quota" quota

reserve() {
  wait_for 30 "the earlier parts' connections to close" sh -c "! grep -q ' open=[1-9]' /run/nfs-vsock-bridge/status"
  hold_in_background "$W/flood.out" 60 "guest 9's flood of 305 connections" python3 "$HOLD" "unix:$SOCK" 305
  local flood=$HOLDER
  assert_contains "$(cat "$W/flood.out")" "opened 305 first-answered 300 still-answered 300" "the flood stops at the reserve"
  assert_contains "$(cat /var/log/nfs-vsock-bridge.log)" "its last 20 are kept for guests that have none, and guest 9 has 300" "the bridge says why"
  HELD=$(timeout 120 python3 "$HOLD" vsock-priv:1:2049 2)
  vmt_note "a newcomer, meanwhile: $HELD"
  assert_contains "$HELD" "opened 2 first-answered 1 still-answered 1" "the newcomer's first connection, not a second"
  kill "$flood" 2>/dev/null || true
}
vmt_part "6. a flooding guest leaves the reserve to guests without a connection" reserve

reload() {
  wait_for 30 "the earlier parts' connections to close" sh -c "! grep -q ' open=[1-9]' /run/nfs-vsock-bridge/status"
  hold_in_background "$W/reload.out" 90 "guest 9's 5 connections" python3 "$HOLD" "unix:$SOCK" 5
  local holder=$HOLDER
  assert_contains "$(cat "$W/reload.out")" "opened 5 first-answered 5 still-answered 5" "5 connections before the reload"
  printf '[vsock]\nmax-connections = 400\nmax-per-guest = 3\nunix = %s=9\n' "$SOCK" > /etc/nfs.conf
  vmt_run kill -HUP "$bridge_pid"
  wait_for 10 "the bridge to reload" grep -q "reloaded:" /var/log/nfs-vsock-bridge.log
  local log
  log=$(cat /var/log/nfs-vsock-bridge.log)
  assert_contains "$log" "reloaded: max-per-guest 400 -> 3; max-connections 320 -> 400" "the bridge says what changed"
  assert_contains "$log" "no connection dropped" "and that it kept the connections"
  assert_contains "$log" "max-connections 400 is above the guests' nfsd's max_connections $((CAP + 64)): run rpc.nfsd --vsock PORT again to raise it" "the nfsd limit it cannot raise itself"
  kill -0 "$bridge_pid" || fail "the bridge is gone after SIGHUP"
  assert_eq "$bridge_pid" "$(vmt_bridge_pid)" "the same bridge"
  wait_for 5 "the status to show the new limits" grep -q "max-per-guest=3 max-connections=400" /run/nfs-vsock-bridge/status
  assert_contains "$(grep '^guest 9 ' /run/nfs-vsock-bridge/status)" " open=5 " "guest 9's 5 connections kept"
  HELD=$(timeout 60 python3 "$HOLD" "unix:$SOCK" 1)
  vmt_note "a sixth connection of guest 9 after the reload: $HELD"
  assert_contains "$HELD" "opened 1 first-answered 0" "the new cap refuses a sixth"
  vmt_capture "$NFSD" -G 10 -T --vsock 2049 8
  assert_eq 0 "$VMT_RC" "rpc.nfsd on the running server"
  assert_contains "$VMT_OUT" "max_connections of the nfsd for vsock guests $((CAP + 64)) -> 464 (the bridge's max-connections 400 + 64)" "rpc.nfsd raises nfsd's limit"
  assert_contains "$VMT_OUT" "left running, its guests keep their connections" "the bridge is left"
  assert_eq 464 "$(cat /run/nfs-vsock/nfsd/max_connections)" "the guests' nfsd's max_connections"
  assert_contains "$(grep '^guest 9 ' /run/nfs-vsock-bridge/status)" " open=5 " "guest 9's connections still there"
  local metrics
  metrics=$("$NFSD" status --prometheus)
  assert_contains "$metrics" 'nfs_vsock_guest_connections{cid="9",address="127.128.0.9"} 5' "the metrics: guest 9's open connections"
  assert_contains "$metrics" 'nfs_vsock_guest_connections_refused_total{cid="9",address="127.128.0.9"} ' "the metrics: its refusals"
  assert_contains "$metrics" "nfs_vsock_bridge_max_connections 400" "the metrics: the reloaded cap"
  kill "$holder" 2>/dev/null || true
}
vmt_part "7. SIGHUP: new limits without dropping a connection; rpc.nfsd raises nfsd's limit to match" reload
vmt_parts_end
vmt_step "ok"
