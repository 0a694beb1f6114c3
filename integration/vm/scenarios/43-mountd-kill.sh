#!/usr/bin/env bash
# mountd killed (SIGKILL) and restarted ten times while several clients mount
# and do I/O (issue 16): no client may see an error it would not see with
# nfs-utils' rpc.mountd under the same test. One VM boot runs the same test
# twice, with the same kill schedule: with our mountd, exportfs and
# nfsd-control ("ours"), then with Debian's rpc.mountd, exportfs and rpc.nfsd
# ("debian"); Debian's mount.nfs is the client in both. Each run:
#   - four clients, each in a network namespace of its own (its own address,
#     its own NFSv4 client), each mounting an ext4 export of its own:
#       v4.1-hard  v4.1-soft  v3-hard  v3-soft      (all timeo=30,retrans=2)
#     and looping: write 32 KiB of fresh random data (O_DIRECT, fsync), read
#     it back (O_DIRECT: from the server), compare checksums, remove the file;
#   - a fifth namespace mounts, reads a file and unmounts in a loop (v4.1 and
#     v3 in turn), from a new source address each time, so each mount needs
#     a new auth.unix.ip upcall (and each v3 mount a MOUNT call to mountd);
#   - mountd gets SIGKILL 10 times (the seed of the schedule is logged; both
#     runs use it): odd kills after 2-4 s of service, even ones 0-0.3 s
#     after the restarted mountd read its first upcall, while it answers the
#     ones that queued up; it stays dead 1-3 s. The caches are flushed (as
#     exportfs -f does, through /proc/net/rpc/*/flush, the same way in both
#     runs) right after each kill, so the clients' next requests need upcalls
#     while mountd is dead and the restarted mountd finds them queued. Never
#     while mountd runs: a flush landing between the two cache entries a
#     MOUNT call primes makes the kernel refuse the second ("Cannot export
#     ..., possibly unsupported filesystem", then "access denied" at the
#     client; seen with Debian's rpc.mountd), a race of flushes with MOUNT,
#     not of the kill;
#   - then a control: mountd stopped (SIGSTOP), a v3 mount connects to it,
#     mountd gets SIGKILL: what mount.nfs says is what any mountd killed in
#     the middle of a MOUNT call makes a client see. Errors of that kind from
#     commands under way at a kill are listed as cut off by the kill, not
#     compared (they come with the timing, not with the implementation);
#     both controls must say the same.
# Mount options: both kinds. A hard mount waits for the server: a stall, no
# error (its longest round shows it). A soft mount turns a wait longer than
# its timeouts (3 s, then 6 s: about 9 s over TCP) into EIO, so a mountd that
# comes back too slowly, or answers wrong when it does, shows up as an error
# there. The cycle mounts are soft with retry=1, as a mount at boot retries:
# mount.nfs tries again while MOUNT is unreachable (v3: connection refused)
# instead of failing at once; a refusal (access denied) or a reset still
# fails at once. Every client command has a 90 s limit (SIGKILL: hard-mount
# waits are killable); hitting it counts as an error.
# Recorded per run: each client's errors (command and message), I/O rounds,
# the longest round, mount cycles completed/failed, the longest mount,
# mountd's restarts (how soon a restarted mountd reads its first upcall, and
# has MOUNT in rpcbind), and from a kernel trace how many requests nfsd had
# to defer; the records (client, mountd and mount.nfs logs with times, the
# trace) are kept in <results>/43-mountd-kill.files.
# Asserted: every checksum matches (both runs); the clients really worked
# through the outages; the two controls agree; our set of error kinds (the
# client, the command, the message without names) is a subset of Debian's
# (or both are empty).
# Environment (integration/vm/run passes them in):
# VMT43_SEED (kill schedule), VMT43_KILLS (default 10).
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
ROOT=$W/root
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd
KILLS=${VMT43_KILLS:-10}
SEED=${VMT43_SEED:-$(( ${EPOCHREALTIME/./} % 32768 ))}
LIMIT=90                                   # seconds, any client command
V4=vers=4.1,timeo=30,retrans=2
V3=vers=3,proto=tcp,mountproto=tcp,nolock,timeo=30,retrans=2
CLIENTS=(v4.1-hard v4.1-soft v3-hard v3-soft)
SCENARIO_T0=${EPOCHREALTIME/./}
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
LOOP_PIDS=()
vmt_note "kill schedule seed $SEED (VMT43_SEED=$SEED repeats it), $KILLS kills per run"

# ---------------------------------------------------------------- helpers

# now_ms: NOW = milliseconds since the run began (no fork).
now_ms() { NOW=$(( (${EPOCHREALTIME/./} - RUN_T0) / 1000 )); }
secs() { printf '%d.%d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }
sleep_ms() { local s; printf -v s '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); sleep "$s"; }

# record_error FILE LABEL OP STATUS OUTPUT [KIND]: one error line (ms at the
# failure, ms when the command began (CMD_T0), label, op, kind, message). The kind is the message's last line without the
# program's name, quoted names, addresses and paths, so that both runs'
# kinds compare.
record_error() {
  local file=$1 label=$2 op=$3 rc=$4 out=$5 kind=${6:-} line
  now_ms
  if [ -z "$kind" ]; then
    line=$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n 1)
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then kind="no answer within $LIMIT s (killed)"
    elif [ -z "$line" ]; then kind="exit $rc, no message"
    else
      kind=$(sed -E "s/^[A-Za-z0-9._-]+: //; s/'[^']*'/'*'/g; s/[0-9]+(\.[0-9]+){3}(:[^ ]*)?/ADDR/g; s#(^| )/[^ ]*#\1PATH#g" <<<"$line")
    fi
  fi
  out=${out//$'\n'/ | }
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$NOW" "${CMD_T0:-$NOW}" "$label" "$op" "$kind" "$out" >> "$file"
  printf '  ! [%s s] %s %s: %s\n' "$(secs "$NOW")" "$label" "$op" "${out:-exit $rc}"
}

# try FILE LABEL OP CMD...: runs CMD with the time limit; records a failure.
try() {
  local file=$1 label=$2 op=$3 out rc=0
  shift 3
  now_ms; CMD_T0=$NOW
  out=$(timeout -s KILL "$LIMIT" "$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || return 0
  record_error "$file" "$label" "$op" "$rc" "$out"
  return 1
}

# io_loop DIR LABEL MOUNTPOINT: write, read back, compare, remove, until
# DIR/stop exists. DIR/rounds.LABEL: "start-ms end-ms ok|failed|mismatch".
io_loop() {
  set +e
  local d=$1 label=$2 mnt=$3 n=0 f want got st t0
  local err=$d/err.$label src=$d/src.$label back=$d/back.$label
  : > "$err"
  while [ ! -e "$d/stop" ]; do
    n=$((n + 1)) f=$mnt/$IMPL-r$n st=ok
    now_ms; t0=$NOW
    head -c 32768 /dev/urandom > "$src"
    want=$(sha256sum < "$src")
    if ! try "$err" "$label" write dd if="$src" of="$f" bs=64k oflag=direct conv=fsync status=none; then
      st=failed
    elif ! try "$err" "$label" read dd if="$f" of="$back" bs=64k iflag=direct status=none; then
      st=failed
    else
      got=$(sha256sum < "$back")
      if [ "$got" != "$want" ]; then
        CMD_T0=$t0
        record_error "$err" "$label" read 0 "round $n: wrote ${want%% *}, read ${got%% *}" "checksum mismatch"
        st=mismatch
      fi
    fi
    try "$err" "$label" remove rm -f "$f" || st=failed
    now_ms
    echo "$t0 $NOW $st" >> "$d/rounds.$label"
  done
}

# stamp: prefixes each line with the ms since the run began.
stamp() { local l; while IFS= read -r l; do now_ms; printf '%s %s\n' "$NOW" "$l"; done; }

# cycle_loop DIR NETNS SERVER-IP NET: mount, read the token, unmount, until
# DIR/stop exists; each time from a new address of NET.x (x 20..219), made
# the source by a host route to the server. DIR/cycles: "start-ms
# mounted-ms end-ms version ok|failed".
cycle_loop() {
  set +e
  local d=$1 ns=$2 hip=$3 net=$4 i=0 ver src opts out rc t0 t1 st got
  local mnt=$d/m-cycle err=$d/err.cycles label
  mkdir -p "$mnt"
  : > "$err"
  while [ ! -e "$d/stop" ]; do
    i=$((i + 1)) st=ok
    ip -n "$ns" route replace "$hip/32" dev "vc-$ns" src "$net.$(( 20 + (i - 1) % 200 ))"
    if (( i % 2 )); then ver=4.1 src=$hip:/k opts=$V4,soft,retry=1
    else ver=3 src=$hip:$ROOT/k opts=$V3,soft,retry=1; fi
    label=cycle-v$ver
    now_ms; t0=$NOW
    rc=0
    # mount.nfs -v says what it tries (line-buffered: in order); each line
    # gets its time
    out=$(nsenter "--net=/run/netns/$ns" unshare --uts sh -c \
      'echo "$1" > /proc/sys/kernel/hostname && exec timeout -s KILL "$2" stdbuf -oL -eL mount.nfs "$4" "$5" -v -o "$3"' \
      sh "k43-$IMPL-cycle$i" "$LIMIT" "$opts" "$src" "$mnt" 2>&1 | stamp) || rc=$?
    now_ms; t1=$NOW CMD_T0=$t0
    printf '== cycle %d: v%s from %s, %s..%s ms, exit %s\n%s\n' "$i" "$ver" "$net.$(( 20 + (i - 1) % 200 ))" \
      "$t0" "$t1" "$rc" "$out" >> "$d/cycles.log"
    if [ "$rc" -ne 0 ] || [ $(( t1 - t0 )) -gt 15000 ]; then
      printf '  cycle %d (v%s) took %s s, exit %s; mount.nfs said (ms since the run began):\n%s\n' "$i" "$ver" \
        "$(secs $(( t1 - t0 )))" "$rc" "$(sed 's/^/    | /' <<<"$out")"
    fi
    if [ "$rc" -ne 0 ]; then
      # the message: its last line that is not a progress line of -v
      record_error "$err" "$label" mount "$rc" "$(sed -E 's/^[0-9]+ //' <<<"$out" \
        | grep -vE '^mount\.nfs: (timeout set for|trying |prog [0-9]+, trying|mount\(2\): |portmap query retrying)' | tail -n 1)"
      st=failed
      ! mountpoint -q "$mnt" || umount -l "$mnt"
    else
      now_ms; CMD_T0=$NOW
      got=$(timeout -s KILL "$LIMIT" cat "$mnt/token" 2>&1)
      rc=$?
      if [ "$rc" -ne 0 ]; then record_error "$err" "$label" read "$rc" "$got"; st=failed
      elif [ "$got" != "cycle $token" ]; then record_error "$err" "$label" read 0 "read '$got'" "wrong content"; st=failed; fi
      if ! try "$err" "$label" umount umount "$mnt"; then
        st=failed
        umount -f "$mnt" 2>/dev/null || umount -l "$mnt"
      fi
    fi
    now_ms
    echo "$t0 $t1 $NOW $ver $st" >> "$d/cycles"
  done
}

save_files() { # the runs' records, next to the scenario's log
  local i dest=${RESULTS_DIR:-}/$VMT_NAME.files
  [ -n "${RESULTS_DIR:-}" ] && [ -d "$RESULTS_DIR" ] || return 0
  for i in ours debian; do
    [ -d "$W/$i" ] || continue
    mkdir -p "$dest/$i"
    find "$W/$i" -maxdepth 1 -type f ! -name 'src.*' ! -name 'back.*' -exec cp {} "$dest/$i/" \;
  done
}
vmt_defer save_files

stop_loops() {
  local p
  for p in ours debian; do [ ! -d "$W/$p" ] || touch "$W/$p/stop"; done
  for p in "${LOOP_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  return 0
}
vmt_defer stop_loops

# start_mountd DIR N: mountd number N of the run; its log DIR/mountd.N.log
# gets each line's time (ms since the run began) through a FIFO.
start_mountd() {
  local fifo=$1/mountd.$2.fifo
  mkfifo "$fifo"
  stamp < "$fifo" > "$1/mountd.$2.log" &
  if [ "$IMPL" = ours ]; then
    vmt_start_daemon mountd "$fifo" "$MOUNTD" -F -N 2 --no-udp -d all
  else
    vmt_start_daemon mountd "$fifo" "$REF_MOUNTD" -F -N 2 --no-udp --debug all
  fi
}

# flush DIR PHASE: what exportfs -f does (every entry of the four caches
# expires), written here the same way for both runs.
flush() {
  local c
  for c in "${RPC_CACHES[@]}"; do
    [ ! -w "/proc/net/rpc/$c/flush" ] || echo "$EPOCHSECONDS" > "/proc/net/rpc/$c/flush"
  done
  now_ms
  echo "flush $NOW $2" >> "$1/events"
}

mount_port() { rpcinfo -p 127.0.0.1 2>/dev/null | awk '$1 == 100005 && $2 == 3 && $3 == "tcp" { print $4; exit }'; }

# registered PID: waits (up to 10 s) until rpcbind maps MOUNT v3 over TCP
# to a port PID listens on.
registered() {
  local p deadline=$(( EPOCHSECONDS + 10 ))
  while [ "$EPOCHSECONDS" -le "$deadline" ]; do
    p=$(mount_port)
    if [ -n "$p" ] && ss -tlnpH "sport = :$p" | grep -q "pid=$1,"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# kill_loop DIR: the kills, the same schedule for both runs.
# DIR/events: "outage K kill-ms flushed-ms restart-ms ready-ms
# registered-ms" (ready: holds the channels; registered: its MOUNT port is
# in rpcbind, -1 if not within 10 s).
kill_loop() {
  local d=$1 k alive quick dead pid t_kill t_flush t_start t_ready t_reg
  RANDOM=$SEED
  for k in $(seq 1 "$KILLS"); do
    alive=$(( 2000 + RANDOM % 2001 )) quick=$(( RANDOM % 301 )) dead=$(( 1000 + RANDOM % 2001 ))
    if (( k % 2 )); then
      # odd kills: after 2-4 s of service
      sleep_ms "$alive"
    else
      # even kills: 0-0.3 s after the restarted mountd read its first
      # upcall, while it answers those that queued up while it was dead
      wait_for 15 "$IMPL mountd $((k - 1)) to read an upcall" grep -qE "request: |inbuf '" "$d/mountd.$((k - 1)).log"
      sleep_ms "$quick"
    fi
    pid=$(vmt_pid mountd)
    now_ms; t_kill=$NOW
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    flush "$d" dead
    now_ms; t_flush=$NOW
    sleep_ms "$dead"
    now_ms; t_start=$NOW
    start_mountd "$d" "$k" > /dev/null
    wait_for 30 "$IMPL mountd (restart $k) to open the cache channels" vmt_holds_channels "$(vmt_pid mountd)"
    now_ms; t_ready=$NOW
    if registered "$(vmt_pid mountd)"; then now_ms; t_reg=$NOW; else t_reg=-1; fi
    echo "outage $k $t_kill $t_flush $t_start $t_ready $t_reg" >> "$d/events"
    printf '  kill %2d/%d at %5s s: dead %s s (caches flushed at once); restarted: MOUNT port in rpcbind after %s\n' \
      "$k" "$KILLS" "$(secs "$t_kill")" "$(secs $(( t_start - t_kill )))" \
      "$([ "$t_reg" -ge 0 ] && echo "$(secs $(( t_reg - t_start ))) s" || echo "NOT within 10 s")"
  done
  # the clients carry on with a live mountd for a while
  sleep_ms 4000
}

# control_cutoff DIR NETNS SERVER-IP: one v3 mount whose MOUNT call is in
# flight when mountd gets SIGKILL, for certain: mountd is stopped (SIGSTOP)
# first, the kernel still accepts the connection and queues the call. What
# mount.nfs says then (DIR/control.err) is what any mountd killed in the
# middle of a call makes a client see.
control_cutoff() {
  local d=$1 ns=$2 hip=$3 pid port mp rc=0
  pid=$(vmt_pid mountd)
  port=$(mount_port)
  [ -n "$port" ] || fail "$IMPL: MOUNT v3 is not registered"
  ip -n "$ns" route replace "$hip/32" dev "vc-$ns" src "${hip%.1}.2"
  vmt_run kill -STOP "$pid"
  now_ms; CMD_T0=$NOW
  nsenter "--net=/run/netns/$ns" timeout -s KILL "$LIMIT" mount -t nfs -o "$V3,soft,retry=0" \
    "$hip:$ROOT/k" "$d/m-cycle" > "$d/control.out" 2>&1 &
  mp=$!
  wait_for 30 "the mount to connect to mountd (port $port)" \
    sh -c "ss -tnH state established '( sport = :$port )' | grep -q ."
  vmt_run kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
  wait "$mp" || rc=$?
  [ "$rc" -ne 0 ] || fail "$IMPL: the mount whose MOUNT call mountd never answered succeeded"
  : > "$d/control.err"
  record_error "$d/control.err" control-v3 mount "$rc" "$(cat "$d/control.out")"
  start_mountd "$d" control
  wait_for 30 "$IMPL mountd (after the control) to open the cache channels" vmt_holds_channels "$(vmt_pid mountd)"
}

# The kernel's side, for explaining errors: nfsd's failed compounds, file
# handle and export lookups and the cache entries mountd wrote, and the
# NFSv4 client's error replies (tracefs; best effort). DIR/kernel-trace.txt,
# DIR/trace-t0 (the uptime when the run began).
TRACE=/sys/kernel/tracing
TRACE_EVENTS=(
  "nfsd/nfsd_compound_status:status != 0" nfsd/nfsd_fh_verify_err nfsd/nfsd_set_fh_dentry_badexport
  "nfsd/nfsd_exp_find_key:status != 0" "nfsd/nfsd_exp_get_by_name:status != 0"
  nfsd/nfsd_export_update nfsd/nfsd_expkey_update nfs4/nfs4_xdr_status "nfs4/nfs4_open_file:error != 0"
  sunrpc/svc_authenticate
)
trace_start() {
  local e ev filter
  [ -e "$TRACE/trace" ] || mount -t tracefs tracefs "$TRACE" 2>/dev/null || return 0
  echo 0 > "$TRACE/tracing_on"
  echo 4096 > "$TRACE/buffer_size_kb" 2>/dev/null || true
  : > "$TRACE/trace"
  for e in "${TRACE_EVENTS[@]}"; do
    ev=${e%%:*} filter=
    [ "$ev" = "$e" ] || filter=${e#*:}
    [ -d "$TRACE/events/$ev" ] || continue
    [ -z "$filter" ] || echo "$filter" > "$TRACE/events/$ev/filter" 2>/dev/null || true
    echo 1 > "$TRACE/events/$ev/enable" 2>/dev/null || true
  done
  echo 1 > "$TRACE/tracing_on"
}
trace_save() { # DIR
  [ -e "$TRACE/trace" ] || return 0
  echo 0 > "$TRACE/tracing_on"
  cp "$TRACE/trace" "$1/kernel-trace.txt"
  echo 0 > "$TRACE/events/enable" 2>/dev/null || true
  : > "$TRACE/trace"
}

# ---------------------------------------------------------------- one run

run_impl() { # IMPL BASE: BASE.0/21 holds the run's addresses
  IMPL=$1 RUN_T0=${EPOCHREALTIME/./}
  local base=$2 d=$W/$1 i ns hip label opts src
  mkdir -p "$d"
  read -r i _ < /proc/uptime
  echo "$i" > "$d/trace-t0"
  : > "$d/events"; : > "$d/cycles"
  if [ "$IMPL" = ours ]; then XFS=$EXPORTFS; else XFS=$REF_EXPORTFS; fi

  vmt_step "$IMPL: client namespaces (one per client, 10.99.$((base + 1))-$((base + 5)).2)"
  for i in 1 2 3 4 5; do
    vmt_netns_create "${IMPL:0:1}$i" "10.99.$((base + i)).1/24" "10.99.$((base + i)).2/24" >> "$d/netns.log"
  done
  # the cycle namespace's addresses, one per mount (source chosen per cycle)
  for i in $(seq 20 219); do echo "addr add 10.99.$((base + 5)).$i/24 dev vc-${IMPL:0:1}5"; done \
    | ip -n "${IMPL:0:1}5" -batch -

  vmt_step "$IMPL: exports ($XFS -ra), server, mountd"
  vmt_write_exports <<EOF
$ROOT     10.99.$base.0/21(ro,fsid=0,no_subtree_check)
$ROOT/c1  10.99.$((base + 1)).2(rw,no_root_squash,no_subtree_check)
$ROOT/c2  10.99.$((base + 2)).2(rw,no_root_squash,no_subtree_check)
$ROOT/c3  10.99.$((base + 3)).2(rw,no_root_squash,no_subtree_check)
$ROOT/c4  10.99.$((base + 4)).2(rw,no_root_squash,no_subtree_check)
$ROOT/k   10.99.$((base + 5)).0/24(rw,no_root_squash,no_subtree_check)
EOF
  vmt_run "$XFS" -ra
  if [ "$IMPL" = ours ]; then
    vmt_run "$NFSD" 16
    echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true
  else
    vmt_start_ref_nfsd --no-udp 16
  fi
  start_mountd "$d" 0
  wait_for 30 "$IMPL mountd to open the cache channels" vmt_holds_channels "$(vmt_pid mountd)"
  wait_for 30 "MOUNT v3 in rpcbind" sh -c 'rpcinfo -p 127.0.0.1 | grep -Eq "100005 +3 +tcp"'

  vmt_step "$IMPL: the four clients mount their exports"
  for i in 1 2 3 4; do
    label=${CLIENTS[i - 1]} ns=${IMPL:0:1}$i hip=10.99.$((base + i)).1
    case $label in
      v4.1-*) src=$hip:/c$i opts=$V4 ;;
      v3-*)   src=$hip:$ROOT/c$i opts=$V3 ;;
    esac
    opts=$opts,${label#*-},retry=0
    VMT_NFS_OPTS=$opts vmt_nfs_mount "$src" "$d/m$i" "$ns" "k43-$IMPL-c$i"
    [ "$VMT_RC" = 0 ] || fail "$IMPL: client $label could not mount $src"
    opts=$(findmnt -rn -o OPTIONS "$d/m$i")
    grep -Eq "(^|,)vers=${label:1:${#label}-6}(,|$)" <<<"$opts" && grep -Eq "(^|,)${label#*-}(,|$)" <<<"$opts" \
      || fail "$IMPL: $d/m$i is not a $label mount: $opts"
  done

  vmt_step "$IMPL: I/O and mount cycles, mountd killed $KILLS times"
  trace_start
  LOOP_PIDS=()
  for i in 1 2 3 4; do
    io_loop "$d" "${CLIENTS[i - 1]}" "$d/m$i" &
    LOOP_PIDS+=($!)
  done
  cycle_loop "$d" "${IMPL:0:1}5" "10.99.$((base + 5)).1" "10.99.$((base + 5))" &
  LOOP_PIDS+=($!)
  kill_loop "$d"
  touch "$d/stop"
  now_ms; local t_stop=$NOW
  for i in "${LOOP_PIDS[@]}"; do wait "$i" || true; done
  LOOP_PIDS=()
  now_ms
  printf '  clients stopped %s s after the stop was asked\n' "$(secs $(( NOW - t_stop )))"

  vmt_step "$IMPL: control: mountd killed while a MOUNT call waits for it"
  control_cutoff "$d" "${IMPL:0:1}5" "10.99.$((base + 5)).1"

  trace_save "$d"
  vmt_step "$IMPL: stop"
  for i in 1 2 3 4; do
    vmt_run timeout 60 umount "$d/m$i" || { umount -f "$d/m$i" 2>/dev/null || umount -l "$d/m$i"; }
  done
  kill "$(vmt_pid mountd)" 2>/dev/null || true
  wait "$(vmt_pid mountd)" 2>/dev/null || true
  if [ "$IMPL" = ours ]; then vmt_run "$NFSD" 0; else vmt_run "$REF_NFSD" 0; fi
  vmt_run "$XFS" -au
  vmt_flush_caches
  for i in 1 2 3 4 5; do ip netns del "${IMPL:0:1}$i"; done
  vmt_reset_nfs_state_dir

  summarize "$d"
}

# summarize DIR: DIR/summary (key=value), DIR/kinds, and the run's results.
summarize() {
  local d=$1 label f k
  cat "$d"/err.* > "$d/errors" 2>/dev/null || true
  sort -n -o "$d/errors" "$d/errors"
  awk -F'\t' '{ print $3 " " $4 ": " $5 }' "$d/errors" | sort -u > "$d/kinds"
  {
    echo "errors=$(wc -l < "$d/errors")"
    echo "kinds=$(wc -l < "$d/kinds")"
    printf 'by_client='
    for label in "${CLIENTS[@]}" cycle-v4.1 cycle-v3; do
      printf '%s %s ' "$label" "$(awk -F'\t' -v l="$label" '$3 == l' "$d/errors" | wc -l)"
    done
    echo
    echo "mismatches=$(awk -F'\t' '$5 == "checksum mismatch"' "$d/errors" | wc -l)"
    for label in "${CLIENTS[@]}"; do
      f=$d/rounds.$label
      awk -v l="$label" '{ if ($3 == "ok") ok++; else bad++; t = $2 - $1; if (t > max) max = t }
        END { printf "rounds_%s=%d/%d\nmaxround_%s=%d\n", l, ok, bad, l, max }' "$f"
    done
    awk '{ if ($5 == "ok") ok++; else bad++; t = $2 - $1; if (t > max) max = t; if ($5 == "ok") { s += t; n++ } }
      END { printf "cycles=%d/%d\nmaxmount=%d\nmeanmount=%d\n", ok, bad, max, n ? s / n : 0 }' "$d/cycles"
    awk '$1 == "outage" { n++; o = $6 - $3; if (o > mo) mo = o
        if ($7 < 0) un++; else { g = $7 - $5; if (g > mg) mg = g } }
      END { printf "restarts=%d\nmaxoutage=%d\nmaxregistered=%d\nunregistered=%d\n", n, mo, mg, un }' "$d/events"
    # back in service: a restarted mountd's first upcall read, after its start
    for k in $(seq 1 "$KILLS"); do
      printf '%s %s\n' "$(awk -v k="$k" '$1 == "outage" && $2 == k { print $5 }' "$d/events")" \
        "$(grep -m1 -E "request: |inbuf '" "$d/mountd.$k.log" 2>/dev/null | cut -d' ' -f1)"
    done | awk 'NF == 2 { t = $2 - $1; s += t; n++; if (t > m) m = t } NF < 2 { u++ }
      END { printf "maxserving=%d\nmeanserving=%d\nnoupcall=%d\n", m, n ? s / n : 0, u }'
    # rounds and cycles under way while mountd was dead (after the flush)
    awk 'FNR == NR { if ($1 == "outage") { n++; s[n] = $4; e[n] = $6 }; next }
      { end = FILENAME ~ /cycles$/ ? $3 : $2
        for (i = 1; i <= n; i++) if ($1 < e[i] && end > s[i]) { c++; break } }
      END { printf "during_outages=%d\n", c }' "$d/events" "$d"/rounds.* "$d/cycles"
    echo "upcalls=$(cat "$d"/mountd.*.log | grep -cE "request: |inbuf '" || true)"
    # requests nfsd set aside (deferred) because no answer came within its
    # wait, and NFSv4 compounds answered NFS4ERR_DELAY
    echo "deferred=$(grep -c 'auth_res=SVC_DROP' "$d/kernel-trace.txt" 2>/dev/null || true)"
    echo "delayed=$(grep -c 'nfsd_compound_status: .*status=10008' "$d/kernel-trace.txt" 2>/dev/null || true)"
  } > "$d/summary"
  vmt_step "$IMPL: results"
  sed 's/^/  /' "$d/summary"
  printf '  error kinds:\n'; sed 's/^/    /' "$d/kinds"
  if [ -s "$d/errors" ]; then
    printf '  errors (ms since the run began: failed, command began; client, command, kind, message):\n'
    head -n 40 "$d/errors" | sed 's/^/    /'
  fi
}

get() { sed -n "s/^$2=//p" "$W/$1/summary"; }

one_line() { # IMPL
  local i=$1 label rounds=
  for label in "${CLIENTS[@]}"; do rounds+=" $label $(get "$i" "rounds_$label")"; done
  local maxround=0 m
  for label in "${CLIENTS[@]}"; do m=$(get "$i" "maxround_$label"); [ "$m" -le "$maxround" ] || maxround=$m; done
  printf 'SUMMARY %-6s errors %s (%s kinds; per client: %s) | I/O rounds ok/failed:%s | longest round %s s | mount cycles ok/failed %s, longest mount %s s (mean %s s) | %s restarts, longest outage %s s; a restarted mountd read its first upcall within %s s (mean %s s; %s read none) and had MOUNT in rpcbind within %s s (%s times not within 10 s) | %s rounds/cycles under way while mountd was dead | %s upcalls logged; nfsd deferred %s requests, answered %s NFS4ERR_DELAY\n' \
    "$i" "$(get "$i" errors)" "$(get "$i" kinds)" "$(get "$i" by_client | sed 's/ $//')" "$rounds" "$(secs "$maxround")" "$(get "$i" cycles)" \
    "$(secs "$(get "$i" maxmount)")" "$(secs "$(get "$i" meanmount)")" "$(get "$i" restarts)" \
    "$(secs "$(get "$i" maxoutage)")" "$(secs "$(get "$i" maxserving)")" "$(secs "$(get "$i" meanserving)")" "$(get "$i" noupcall)" "$(secs "$(get "$i" maxregistered)")" "$(get "$i" unregistered)" "$(get "$i" during_outages)" "$(get "$i" upcalls)" "$(get "$i" deferred)" "$(get "$i" delayed)"
}

# ---------------------------------------------------------------- the test

vmt_step "file systems (shared by both runs): an NFSv4 root, an ext4 per client and one for the cycles"
vmt_mk_v4root "$ROOT"
for e in c1 c2 c3 c4 k; do vmt_mk_ext4 "$ROOT/$e" 16M; done
echo "cycle $token" > "$ROOT/k/token"
vmt_start_rpcbind

run_impl ours 64
run_impl debian 72

vmt_step "comparison (the same kill schedule, seed $SEED)"
one_line ours
one_line debian
# The control: what a client sees when the mountd its MOUNT call waits for
# is killed. An error of that kind, from a command under way at a kill, was
# cut off by the kill: any mountd does that (the kernel resets a killed
# process's connections); it is listed, not compared.
ctl_ours=$(cut -f5 "$W/ours/control.err") ctl_debian=$(cut -f5 "$W/debian/control.err")
printf '  a MOUNT call cut off by SIGKILL (the control): ours: "%s"; Debian'"'"'s: "%s"\n' "$ctl_ours" "$ctl_debian"
split_errors() { # IMPL: DIR/cut, DIR/rest, DIR/kinds.cmp (the kinds of the rest)
  local d=$W/$1 kills
  kills=$(awk '$1 == "outage" { printf "%s ", $3 }' "$d/events")
  : > "$d/cut"; : > "$d/rest"
  awk -F'\t' -v ck="$ctl_debian" -v kills="$kills" -v cut="$d/cut" -v rest="$d/rest" '
    BEGIN { n = split(kills, k, " ") }
    { c = 0; if ($5 == ck) for (i = 1; i <= n; i++) if (k[i] >= $2 && k[i] <= $1) c = 1
      print >> (c ? cut : rest) }' "$d/errors"
  awk -F'\t' '{ print $3 " " $4 ": " $5 }' "$d/rest" | sort -u > "$d/kinds.cmp"
  printf '  %s: %d error(s) cut off by a kill, %d other(s); kinds compared: %s\n' "$1" \
    "$(wc -l < "$d/cut")" "$(wc -l < "$d/rest")" "$(paste -sd';' "$d/kinds.cmp")"
  [ ! -s "$d/cut" ] || sed 's/^/    cut off: /' "$d/cut"
}
split_errors ours
split_errors debian
extra=$(comm -23 "$W/ours/kinds.cmp" "$W/debian/kinds.cmp")
if [ -n "$extra" ]; then
  printf '  error kinds only our run saw:\n%s\n' "$(sed 's/^/    /' <<<"$extra")"
  printf '  those errors (failed-ms began-ms client command kind message), and the outages (outage K kill-ms flushed-ms restart-ms ready-ms):\n'
  while IFS= read -r k; do
    awk -F'\t' -v k="$k" '$3 " " $4 ": " $5 == k' "$W/ours/rest" | sed 's/^/    /'
  done <<<"$extra"
  grep '^outage' "$W/ours/events" | sed 's/^/    /'
  if [ -s "$W/ours/kernel-trace.txt" ]; then
    printf '  the kernel trace around them (uptime s; the run began at %s):\n' "$(cat "$W/ours/trace-t0")"
    while IFS= read -r k; do
      awk -F'\t' -v k="$k" '$3 " " $4 ": " $5 == k { print $2, $1 }' "$W/ours/rest"
    done <<<"$extra" | while read -r b e; do
      awk -v t0="$(cat "$W/ours/trace-t0")" -v b="$b" -v e="$e" '
        match($0, /[0-9]+\.[0-9]+: /) { t = substr($0, RSTART, RLENGTH - 2) - t0
          if (t * 1000 >= b - 500 && t * 1000 <= e + 500) print "    " $0 }' "$W/ours/kernel-trace.txt" | head -n 40
    done
  fi
  printf '  what our mountds logged besides upcalls:\n'
  grep -vhE 'request: |^$' "$W"/ours/mountd.*.log | sed -E 's/^[0-9]+ //' | sort | uniq -c | sort -rn | head -n 20 | sed 's/^/    /'
fi
assert_eq "$ctl_debian" "$ctl_ours" "what mount.nfs says when mountd is killed during its MOUNT call (ours vs Debian's)"
for i in ours debian; do
  assert_eq 0 "$(get $i mismatches)" "$i: rounds whose read-back checksum differed from what was written"
  assert_eq "$KILLS" "$(get $i restarts)" "$i: mountd restarts"
  for label in "${CLIENTS[@]}"; do
    ok=$(get $i "rounds_$label"); ok=${ok%%/*}
    assert_gt "$ok" 2 "$i: $label's completed I/O rounds"
  done
  ok=$(get $i cycles); ok=${ok%%/*}
  assert_gt "$ok" 2 "$i: completed mount cycles"
  assert_gt "$(get $i during_outages)" "$KILLS" "$i: rounds and cycles under way while mountd was dead"
done
[ -z "$extra" ] || fail "our run saw error kinds Debian's rpc.mountd run did not: $(tr '\n' ';' <<<"$extra")"
printf 'scenario time: %s s\n' "$(secs $(( (${EPOCHREALTIME/./} - SCENARIO_T0) / 1000 )))"
echo "PASS: $KILLS SIGKILLs of mountd: our clients saw no error kind Debian's did not ($(get ours errors) errors ours, $(get debian errors) Debian's)"
