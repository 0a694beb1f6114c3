#!/usr/bin/env bash
# Benchmark (not a test), run inside the integration/vm harness's VM by
# bench/mountd-bench: our mountd against Debian's rpc.mountd answering the
# kernel's upcalls for many clients mounting from a large export table.
#
#   - one ext4 image holding MB_EXPORTS directories dNNNNN, mounted at
#     <root>/data, under an fsid=0 tmpfs <root> (the VM's "/" is 9p, not
#     exportable). /etc/exports: <root> (ro,fsid=0) and <root>/data (ro) for
#     127.0.1.0/24, then one rw line per directory; MB_CLIENTS of them (spread
#     evenly through the file) name a client 127.0.1.i, the others a distinct
#     10.x.y.z. Our exportfs -ra writes etab once; both daemons read it.
#     With an fsid=0 export nfs-utils builds no NFSv4 pseudo filesystem, and
#     the kernel only enters another export at a mount point, so each client's
#     directory is bind-mounted onto itself (the other exports stay plain
#     directories);
#   - client i lives in network namespace mbc<i> on a veth pair whose only
#     address is 127.0.1.i and reaches the server as 127.0.0.1
#     (route_localnet=1, static neighbours, a /32 route to 127.0.1.i in the
#     root namespace's local table), and mounts in its own UTS namespace
#     (hostname mb-client-i, so the NFSv4 client owners differ): it mounts
#     127.0.0.1:/data/dNNNNN and stats id-dNNNNN there (a file only its own
#     export has). By default (MB_CLIENT_TOOL=syscall) one process,
#     mount-clients.py, forks a child per client that enters the namespaces
#     and calls mount(2) with the text options mount.nfs would pass: the
#     route through nsenter, unshare, sh, timeout, mount and mount.nfs (seven
#     programs per mount, each exec tens of milliseconds under emulation) is
#     a fixed cost on both sides that only hides the daemons' share.
#     MB_CLIENT_TOOL=mount.nfs times that route instead; the preflight always
#     takes it (Debian's mount.nfs as the reference client);
#   - the kernel server (our nfsd-control -N 3 8) stays up throughout; per run
#     the daemon starts and is left until idle (etab loaded, startup time and
#     CPU reported apart), then all mounts + stats are timed, the server's
#     view of client addresses is checked (auth.unix.ip cache, TCP peers),
#     everything is unmounted, the daemon stopped and the kernel caches
#     flushed (our exportfs -f);
#   - a preflight with Debian's rpc.mountd (untimed) checks that the server
#     sees distinct addresses before any timing; rounds alternate which daemon
#     goes first.
# Both daemons: -F -N 2 -N 3 --no-udp and the same debug logging.
#
# Settings (environment; bench/mountd-bench sets them through a wrapper):
#   MB_CLIENTS (20, at most 254)  MB_EXPORTS (10000)  MB_ROUNDS (2)
#   MB_PARALLEL (1: mounts one after the other)  MB_NFS_OPTS (vers=4.1,...)
#   MB_DEBUG (all; "none": both daemons without debug logging)
#   MB_CLIENT_TOOL (syscall: mount-clients.py; mount.nfs: nsenter + unshare
#     + mount.nfs per client)
#   MB_CLTRACK (legacy: the kernel records NFSv4 clients in v4recovery
#     directories; umh: its default, running /sbin/nfsdcltrack per client)
# Output: lines starting "mountd-bench:" and "goal:" here and in
# $RESULTS_DIR/mountd-bench/summary.txt (failures.txt explains failed runs);
# daemon logs and per-mount times (<daemon>.r<round>.mounts) beside them.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../../integration/vm/lib.sh}"
vmt_begin

CLIENTS=${MB_CLIENTS:-20}
EXPORTS=${MB_EXPORTS:-10000}
ROUNDS=${MB_ROUNDS:-2}
CLTRACK=${MB_CLTRACK:-legacy}
PARALLEL=${MB_PARALLEL:-1}
NFS_OPTS=${MB_NFS_OPTS:-vers=4.1,retry=0,soft,timeo=50,retrans=2}
DEBUG=${MB_DEBUG:-all}
CLIENT_TOOL=${MB_CLIENT_TOOL:-syscall}
[[ $CLIENTS =~ ^[1-9][0-9]*$ && $CLIENTS -le 254 ]] || fail "MB_CLIENTS must be 1..254"
[[ $EXPORTS =~ ^[1-9][0-9]*$ && $EXPORTS -le 99999 && $EXPORTS -ge $CLIENTS ]] || fail "MB_EXPORTS must be MB_CLIENTS..99999"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || fail "MB_ROUNDS must be a positive number"
[[ $PARALLEL =~ ^[1-9][0-9]*$ ]] || fail "MB_PARALLEL must be a positive number"
[[ $CLTRACK == legacy || $CLTRACK == umh ]] || fail "MB_CLTRACK must be legacy or umh"
[[ $CLIENT_TOOL == syscall || $CLIENT_TOOL == mount.nfs ]] || fail "MB_CLIENT_TOOL must be syscall or mount.nfs"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
MOUNT_CLIENTS=$(cd "$(dirname "$0")" && pwd)/mount-clients.py
[ -f "$MOUNT_CLIENTS" ] || MOUNT_CLIENTS=${MB_MOUNT_CLIENTS:?mount-clients.py not found}

W=$VMT_WORK
ROOT=$W/root
DATA=$ROOT/data
SERVER=127.0.0.1
OUR_MOUNTD=$BIN_DIR/mountd
NFSD=$BIN_DIR/nfsd-control
OUT=$RESULTS_DIR/mountd-bench
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
FAILURES=$OUT/failures.txt
: > "$SUMMARY"
: > "$FAILURES"
TICK=$(getconf CLK_TCK)
STEP=$((EXPORTS / CLIENTS))

say() { printf 'mountd-bench: %s\n' "$*" | tee -a "$SUMMARY"; }
# failure report: to the log and to failures.txt (bench/mountd-bench prints it)
report() { tee -a "$FAILURES"; }

# the export (directory) client i mounts: spread evenly through the table
dir_of() { printf 'd%05d' $(( ($1 - 1) * STEP + STEP / 2 )); }

# utime + stime of PID in clock ticks
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  awk '{ print $12 + $13 }' <<<"$s"
}

# client addresses (127.0.1.x) the server has a positive auth.unix.ip entry
# for / has an established NFS connection from, one per line
cache_addrs() { awk '$1 == "nfsd" && $2 ~ /^127\.0\.1\./ && $3 != "-no-domain-" { print $2 }' /proc/net/rpc/auth.unix.ip/content; }
tcp_peers() { ss -Htn state established '( sport = :2049 )' | awk '{ split($4, a, ":"); if (a[1] ~ /^127\.0\.1\./) print a[1] }'; }

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ------------------------------------------------------------------ setup
vmt_step "file systems: fsid=0 tmpfs root, one ext4 with $EXPORTS directories"
vmt_mk_v4root "$ROOT"
vmt_mk_ext4 "$DATA" 96M
t0=$EPOCHREALTIME
(cd "$DATA" && seq -f d%05g 0 $((EXPORTS - 1)) | xargs mkdir)
# Debian's rpc.mountd builds no NFSv4 pseudo filesystem when an fsid=0 export
# exists (nfs-utils' v4root_needed = 0): below the root, the kernel only
# crosses into another export at a mount point. So the ext4 root is exported
# (ro) to the clients, and each client's directory is bind-mounted onto itself.
for ((i = 1; i <= CLIENTS; i++)); do
  d=$(dir_of "$i"); echo "$d" > "$DATA/$d/id-$d"; mount --bind "$DATA/$d" "$DATA/$d"
done
sync
printf '  %d directories in %s s\n' "$EXPORTS" "$(secs "$t0" "$EPOCHREALTIME")"

vmt_step "exports: $EXPORTS lines + the fsid=0 root + the ext4 root; our exportfs -ra"
{
  echo "# mountd-bench: $CLIENTS clients 127.0.1.1-$CLIENTS among $EXPORTS exports"
  echo "$ROOT 127.0.1.0/24(ro,fsid=0,no_subtree_check)"
  echo "$DATA 127.0.1.0/24(ro,no_subtree_check)"
  awk -v n="$EXPORTS" -v c="$CLIENTS" -v step="$STEP" -v data="$DATA" 'BEGIN {
    for (j = 0; j < n; j++) {
      k = int(j / step)
      if (j % step == int(step / 2) && k < c) host = "127.0.1." (k + 1)
      else host = sprintf("10.%d.%d.%d", int(j / 65536) % 256, int(j / 256) % 256, j % 256)
      printf "%s/d%05d %s(rw,no_root_squash,no_subtree_check)\n", data, j, host
    }
  }'
} > /etc/exports
printf '  /etc/exports: %d lines; first and client lines:\n' "$(wc -l < /etc/exports)"
head -n 4 /etc/exports | sed 's/^/  | /'
grep -m 3 ' 127\.0\.1\.' /etc/exports | sed 's/^/  | /'
vmt_run "$EXPORTFS" -ra
printf '  etab: %d lines\n' "$(wc -l < "$NFS_STATE_DIR/etab")"
[ "$(grep -c " 127\.0\.1\.[0-9]*(" /etc/exports)" -ge "$CLIENTS" ] || fail "exports lack client lines"

vmt_step "kernel server: our nfsd-control -N 3 8 (client tracking: $CLTRACK)"
# With no nfsdcld running, the kernel records each NFSv4 client by running
# /sbin/nfsdcltrack (a process + sqlite fsyncs per mount and per unmount: slow
# under emulation, the same for both daemons). "legacy" points the helper at a
# missing program, so the kernel falls back to directories in
# /var/lib/nfs/v4recovery (a tmpfs here).
cltrack=/sys/module/nfsd/parameters/cltrack_prog
if [ "$CLTRACK" == legacy ] && [ -w "$cltrack" ]; then
  vmt_defer "echo $(cat "$cltrack") > $cltrack"
  echo /nonexistent/nfsdcltrack > "$cltrack"
fi
vmt_run "$NFSD" -N 3 8
printf '  versions: %s; listeners: %s\n' "$(cat /proc/fs/nfsd/versions)" "$(tr '\n' ' ' < /proc/fs/nfsd/portlist)"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || vmt_note "could not end the grace period"
TRACKING=$(dmesg | sed -n 's/.*NFSD: Using \(.*\) client tracking operations.*/\1/p' | tail -n 1)
printf '  kernel client tracking: %s\n' "${TRACKING:-unknown}"

vmt_step "$CLIENTS client namespaces on veth pairs, source addresses 127.0.1.1-$CLIENTS"
# 127/8 on a non-loopback device needs route_localnet (new namespaces inherit
# "all" from the root namespace).
old_localnet=$(cat /proc/sys/net/ipv4/conf/all/route_localnet)
vmt_defer "echo $old_localnet > /proc/sys/net/ipv4/conf/all/route_localnet"
echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet
ip link set lo up
t0=$EPOCHREALTIME
mac() { printf '02:00:00:00:%02x:%02x' "$1" "$2"; }   # side (1 server, 2 client), i
{
  for ((i = 1; i <= CLIENTS; i++)); do
    echo "netns add mbc$i"
    echo "link add vh$i address $(mac 1 "$i") type veth peer name vc$i address $(mac 2 "$i") netns mbc$i"
    echo "link set vh$i up"
    # replies to 127.0.1.i leave through vh<i>: more specific than local 127/8
    echo "route add 127.0.1.$i/32 dev vh$i table local"
    echo "neigh replace 127.0.1.$i lladdr $(mac 2 "$i") dev vh$i nud permanent"
  done
} > "$W/root.batch"
vmt_run ip -batch "$W/root.batch"
pids=()
for ((i = 1; i <= CLIENTS; i++)); do
  # lo stays down in the client namespace: 127.0.0.1 there is the server
  printf '%s\n' "link set vc$i up" "addr add 127.0.1.$i/32 dev vc$i" \
    "route add 127.0.0.1/32 dev vc$i src 127.0.1.$i" \
    "neigh replace 127.0.0.1 lladdr $(mac 1 "$i") dev vc$i nud permanent" > "$W/ns$i.batch"
  nsenter "--net=/run/netns/mbc$i" ip -batch "$W/ns$i.batch" &
  pids+=($!)
  if ((${#pids[@]} == 4)); then wait "${pids[@]}"; pids=(); fi
done
if ((${#pids[@]})); then wait "${pids[@]}"; fi
printf '  %d namespaces in %s s; client 1: %s\n' "$CLIENTS" "$(secs "$t0" "$EPOCHREALTIME")" \
  "$(ip -n mbc1 -4 -br addr show dev vc1 | tr -s ' ')"
vmt_tcp_reachable mbc1 "$SERVER" 2049 || fail "client namespace mbc1 cannot reach $SERVER:2049"
mkdir -p "$W/m"
for ((i = 1; i <= CLIENTS; i++)); do mkdir -p "$W/m/c$i"; done

# ------------------------------------------------------------------ runs

# mount_one I RESULT-DIR: mount + stat for client i; writes "ok|fail seconds"
mount_one() {
  local i=$1 res=$2 d mnt t0 st=ok
  d=$(dir_of "$i"); mnt=$W/m/c$i
  t0=$EPOCHREALTIME
  if ! nsenter "--net=/run/netns/mbc$i" unshare --uts sh -c \
        'echo "$1" > /proc/sys/kernel/hostname && exec timeout 30 mount -t nfs -o "$2" "$3" "$4"' \
        sh "mb-client-$i" "$NFS_OPTS" "$SERVER:/data/$d" "$mnt" > "$res/e$i" 2>&1; then
    st=fail
  elif ! timeout 30 stat -c %i "$mnt/id-$d" > /dev/null 2>> "$res/e$i"; then
    st=fail
  fi
  echo "$st $(secs "$t0" "$EPOCHREALTIME")" > "$res/r$i"
}

# mount_all RESULT-DIR: every client mounts + stats, PARALLEL at a time, with
# the client tool chosen (MB_CLIENT_TOOL)
mount_all() {
  local res=$1 i pids=()
  if [ "$CLIENT_TOOL" == syscall ]; then
    for ((i = 1; i <= CLIENTS; i++)); do
      printf '%d /run/netns/mbc%d 127.0.1.%d /data/%s %s %s\n' "$i" "$i" "$i" "$(dir_of "$i")" "$W/m/c$i" "id-$(dir_of "$i")"
    done > "$res.jobs"
    "$PY" "$MOUNT_CLIENTS" "$res" "$PARALLEL" "$SERVER" "$NFS_OPTS" "$res.jobs" || true
  elif [ "$PARALLEL" == 1 ]; then
    for ((i = 1; i <= CLIENTS; i++)); do mount_one "$i" "$res"; done
  else
    for ((i = 1; i <= CLIENTS; i++)); do
      mount_one "$i" "$res" &
      pids+=($!)
      if ((${#pids[@]} == PARALLEL)); then wait "${pids[@]}" || true; pids=(); fi
    done
    if ((${#pids[@]})); then wait "${pids[@]}" || true; fi
  fi
  for ((i = 1; i <= CLIENTS; i++)); do
    [ -s "$res/r$i" ] || { echo "fail 0" > "$res/r$i"; echo "no result from the client tool" >> "$res/e$i"; }
  done
}

# (a bare "wait" would also wait for the daemon: wait for these pids only)
umount_all() {
  local t i pids=()
  for ((i = 1; i <= CLIENTS; i++)); do
    mountpoint -q "$W/m/c$i" || continue
    { timeout 30 umount "$W/m/c$i" || umount -l "$W/m/c$i"; } &
    pids+=($!)
    if ((${#pids[@]} == 8)); then wait "${pids[@]}" || true; pids=(); fi
  done
  if ((${#pids[@]})); then wait "${pids[@]}" || true; fi
  for t in $(findmnt -rn -t nfs,nfs4 -o TARGET | sort -r); do umount -l "$t"; done
}

start_daemon() { # ours|ref LOG
  local dbg=()
  if [ "$1" == ours ]; then
    [ "$DEBUG" == none ] || dbg=(-d "$DEBUG")
    vmt_start_daemon mountd "$2" "$OUR_MOUNTD" -F -N 2 -N 3 --no-udp "${dbg[@]}"
  else
    [ "$DEBUG" == none ] || dbg=(--debug "$DEBUG")
    vmt_start_daemon mountd "$2" "$REF_MOUNTD" -F -N 2 -N 3 --no-udp "${dbg[@]}"
  fi
}

# true once PID holds the cache channels; false if it exits or 60 s pass
daemon_ready() {
  local n
  for ((n = 0; n < 600; n++)); do
    kill -0 "$1" 2>/dev/null || return 1
    vmt_holds_channels "$1" && return 0
    sleep 0.1
  done
  return 1
}

# wait until PID has used no CPU for a second (etab loaded, nothing pending)
wait_idle() {
  local pid=$1 a b n=0 still=0
  a=$(cpu_ticks "$pid")
  while ((n < 120 && still < 2)); do
    sleep 0.5; n=$((n + 1))
    b=$(cpu_ticks "$pid")
    if [ "$a" == "$b" ]; then still=$((still + 1)); else still=0; fi
    a=$b
  done
}

# show_daemon_failure NAME LOG: what the daemon said (errors first, then tail)
show_daemon_failure() {
  {
    echo "--- $1: lines of $2 that look like errors (first 40):"
    grep -niE 'error|fail|denied|refus|cannot|can.t|unable|warn|fatal|crash|abort|invalid|no such' "$2" | head -n 40 | sed 's/^/  | /' || true
    echo "--- $1: last 40 lines of $2:"
    tail -n 40 "$2" | sed 's/^/  | /'
  } | report
}

declare -A TOTAL CPU MEDIAN MAX OKS UMOUNT STARTUP STARTCPU ADDRS
name_of() { if [ "$1" == ours ]; then echo "ours"; else echo "nfs-utils"; fi; }
INVALID=0

run_one() { # ours|ref ROUND
  local who=$1 r=$2 tag=$1.r$2 log res pid t0 t1 c0 c1 ts i n_ok n_fail seen_cache seen_tcp rc pids
  log=$OUT/$tag.mountd.log
  res=$W/res.$tag
  mkdir -p "$res"
  vmt_step "round $r: $(name_of "$who") mountd"
  ts=$EPOCHREALTIME
  start_daemon "$who" "$log"
  pid=$(vmt_pid mountd)
  if ! daemon_ready "$pid"; then
    if kill -0 "$pid" 2>/dev/null; then
      echo "round $r: $(name_of "$who") mountd did not open the cache channels within 60 s" | report
    else
      rc=0; wait "$pid" || rc=$?
      echo "round $r: $(name_of "$who") mountd exited (status $rc) before opening the cache channels" | report
    fi
    show_daemon_failure "$(name_of "$who") mountd" "$log"
    kill "$pid" 2>/dev/null || true
    rm -f "$VMT_STATE/mountd.pid"
    TOTAL[$tag]=0 CPU[$tag]=0 MEDIAN[$tag]=0 MAX[$tag]=0 OKS[$tag]=0 UMOUNT[$tag]=0 STARTCPU[$tag]=0 ADDRS[$tag]=-
    STARTUP[$tag]=0
    : > "$OUT/$tag.mounts"
    return 0
  fi
  wait_idle "$pid"
  STARTUP[$tag]=$(secs "$ts" "$EPOCHREALTIME")
  c0=$(cpu_ticks "$pid")
  STARTCPU[$tag]=$(awk -v a="$c0" -v t="$TICK" 'BEGIN { printf "%.2f", a / t }')
  printf '  started and idle after %s s (pid %s, CPU %s s)\n' "${STARTUP[$tag]}" "$pid" "${STARTCPU[$tag]}"

  t0=$EPOCHREALTIME
  mount_all "$res"
  t1=$EPOCHREALTIME
  c1=$(cpu_ticks "$pid")
  TOTAL[$tag]=$(secs "$t0" "$t1")
  CPU[$tag]=$(awk -v a="$c0" -v b="$c1" -v t="$TICK" 'BEGIN { printf "%.2f", (b - a) / t }')

  n_ok=$(cat "$res"/r* | awk '$1 == "ok"' | wc -l)
  n_fail=$((CLIENTS - n_ok))
  OKS[$tag]=$n_ok
  for ((i = 1; i <= CLIENTS; i++)); do echo "$i $(cat "$res/r$i")"; done > "$OUT/$tag.mounts"
  MEDIAN[$tag]=$(awk '{ print $3 }' "$OUT/$tag.mounts" | sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  MAX[$tag]=$(awk '{ print $3 }' "$OUT/$tag.mounts" | sort -n | tail -n 1)
  printf '  %d mounts + stats: %s s (median %s s, max %s s per mount), %d ok, %d failed; daemon CPU %s s\n' \
    "$CLIENTS" "${TOTAL[$tag]}" "${MEDIAN[$tag]}" "${MAX[$tag]}" "$n_ok" "$n_fail" "${CPU[$tag]}"

  # did the server really see one address per client?
  seen_cache=$(cache_addrs | sort -u | wc -l)
  seen_tcp=$(tcp_peers | sort -u | wc -l)
  ADDRS[$tag]="$seen_cache/$seen_tcp"
  printf '  server view: %d distinct 127.0.1.x in auth.unix.ip/content, %d distinct 127.0.1.x TCP peers on :2049\n' "$seen_cache" "$seen_tcp"
  awk '/^nfsd 127\.0\.1\./' /proc/net/rpc/auth.unix.ip/content | sort -V | head -n 3 | sed 's/^/  | /'
  if [ "$seen_tcp" -lt "$n_ok" ] || [ "$seen_cache" -lt "$n_ok" ]; then
    INVALID=1
    echo "round $r $(name_of "$who"): the server saw fewer distinct client addresses ($seen_cache cached, $seen_tcp TCP) than mounts ($n_ok)" | report
  fi

  if ! kill -0 "$pid" 2>/dev/null; then
    rc=0; wait "$pid" || rc=$?
    echo "round $r: $(name_of "$who") mountd (pid $pid) DIED during the run, exit status $rc" | report
    show_daemon_failure "$(name_of "$who") mountd" "$log"
  elif [ "$n_fail" -gt 0 ]; then
    {
      echo "round $r: $(name_of "$who") mountd: $n_fail of $CLIENTS mounts failed; first failures:"
      awk '$2 == "fail" { print $1 }' "$OUT/$tag.mounts" | head -n 5 | while read -r i; do
        echo "  client $i (127.0.1.$i, /data/$(dir_of "$i")): $(tr '\n' ' ' < "$res/e$i")"
      done
    } | report
    show_daemon_failure "$(name_of "$who") mountd" "$log"
  fi

  ts=$EPOCHREALTIME
  umount_all
  UMOUNT[$tag]=$(secs "$ts" "$EPOCHREALTIME")
  printf '  unmounted in %s s\n' "${UMOUNT[$tag]}"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "$VMT_STATE/mountd.pid"
  vmt_run "$EXPORTFS" -f
  sleep 1
}

# ------------------------------------------------------------------ preflight
vmt_step "preflight (untimed): Debian's rpc.mountd, clients 1 and $(( CLIENTS > 1 ? 2 : 1 ))"
start_daemon ref "$OUT/preflight.mountd.log"
wait_for 60 "rpc.mountd to open the cache channels" vmt_holds_channels "$(vmt_pid mountd)"
mkdir -p "$W/res.pre"
for i in 1 $(( CLIENTS > 1 ? 2 : 1 )); do
  mount_one "$i" "$W/res.pre"
  printf '  client %d: %s %s\n' "$i" "$(cat "$W/res.pre/r$i")" "$(tr '\n' ' ' < "$W/res.pre/e$i")"
  grep -q '^ok' "$W/res.pre/r$i" || { show_daemon_failure "preflight rpc.mountd" "$OUT/preflight.mountd.log"; fail "preflight mount of client $i failed"; }
done
findmnt -rn -t nfs4 -o TARGET,SOURCE,OPTIONS | sed 's/^/  /' | cut -c1-200
ss -Htn state established '( sport = :2049 )' | sed 's/^/  tcp: /'
sed 's/^/  auth.unix.ip: /' /proc/net/rpc/auth.unix.ip/content
want=$(( CLIENTS > 1 ? 2 : 1 ))
got=$(tcp_peers | sort -u | wc -l)
[ "$got" == "$want" ] || fail "preflight: the server sees $got distinct 127.0.1.x peers, not $want"
umount_all
kill "$(vmt_pid mountd)"; wait "$(vmt_pid mountd)" 2>/dev/null || true; rm -f "$VMT_STATE/mountd.pid"
vmt_run "$EXPORTFS" -f
sleep 1

# ------------------------------------------------------------------ rounds
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then run_one ours "$r"; run_one ref "$r"; else run_one ref "$r"; run_one ours "$r"; fi
done

# ------------------------------------------------------------------ summary
vmt_step "summary"
sum() { # ours|ref KEY-ARRAY-NAME
  local -n arr=$2
  local r s=0
  for ((r = 1; r <= ROUNDS; r++)); do s=$(awk -v a="$s" -v b="${arr[$1.r$r]}" 'BEGIN { printf "%.3f", a + b }'); done
  echo "$s"
}
ours=$(sum ours TOTAL); ref=$(sum ref TOTAL)
ratio=$(awk -v a="$ours" -v b="$ref" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')
median_of() { cat "$OUT"/"$1".r*.mounts | awk '$2 == "ok" { print $3 }' | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.3f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else print "n/a" }'; }
ours_med=$(median_of ours); ref_med=$(median_of ref)
ours_ok=0; ref_ok=0
for ((r = 1; r <= ROUNDS; r++)); do ours_ok=$((ours_ok + ${OKS[ours.r$r]})); ref_ok=$((ref_ok + ${OKS[ref.r$r]})); done
say "$CLIENTS clients x 1 mount (+ stat), $EXPORTS exports, $ROUNDS round(s), mounts $( [ "$PARALLEL" == 1 ] && echo sequential || echo "$PARALLEL at a time"), NFS opts $NFS_OPTS, clients mount with $( [ "$CLIENT_TOOL" == syscall ] && echo "mount(2) from one forked process (mount-clients.py)" || echo "nsenter + unshare + mount.nfs"), daemon debug logging: $DEBUG, kernel client tracking: ${TRACKING:-?}"
say "kernel $(uname -r), $(nproc) vCPUs (QEMU TCG); ours $OUR_MOUNTD; nfs-utils $REF_MOUNTD ($(dpkg-query -W -f '${Version}' nfs-kernel-server 2>/dev/null || echo '?'))"
for ((r = 1; r <= ROUNDS; r++)); do
  first=$( ((r % 2)) && echo ours || echo nfs-utils)
  say "round $r ($first first): ours ${TOTAL[ours.r$r]} s, nfs-utils ${TOTAL[ref.r$r]} s"
  for w in ours ref; do
    t=$w.r$r
    say "  $(printf '%-9s' "$(name_of "$w")") ${OKS[$t]}/$CLIENTS mounts ok, ${TOTAL[$t]} s (median ${MEDIAN[$t]} s, max ${MAX[$t]} s per mount+stat); daemon CPU ${CPU[$t]} s during the mounts; startup to idle ${STARTUP[$t]} s (CPU ${STARTCPU[$t]} s); unmount ${UMOUNT[$t]} s"
  done
done
say "distinct client addresses the server saw per run (auth.unix.ip cache/TCP peers): $(for t in $(printf '%s\n' "${!ADDRS[@]}" | sort); do printf '%s %s; ' "$t" "${ADDRS[$t]}"; done)"
say "daemon CPU during the mounts, all rounds: ours $(sum ours CPU) s, nfs-utils $(sum ref CPU) s (startup, loading etab: ours $(sum ours STARTCPU) s, nfs-utils $(sum ref STARTCPU) s)"
say "median mount+stat over all rounds (less sensitive to host load spikes): ours $ours_med s, nfs-utils $ref_med s, ratio $(awk -v a="$ours_med" -v b="$ref_med" 'BEGIN { if (a != "n/a" && b > 0) printf "%.3f", a / b; else print "n/a" }')"
ours_s=$(awk -v a="$ours" -v b="$(sum ours STARTUP)" 'BEGIN { printf "%.3f", a + b }')
ref_s=$(awk -v a="$ref" -v b="$(sum ref STARTUP)" 'BEGIN { printf "%.3f", a + b }')
say "counting from each daemon's start instead (startup + >= 1 s idle check + mounts; ours loads etab at startup, nfs-utils on the first upcall): ours $ours_s s, nfs-utils $ref_s s, ratio $(awk -v a="$ours_s" -v b="$ref_s" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')"
say "$CLIENTS clients x 1 mount, $EXPORTS exports: ours $ours s, nfs-utils $ref s, ratio $ratio"
valid=1
if [ "$ours_ok" != $((CLIENTS * ROUNDS)) ] || [ "$ref_ok" != $((CLIENTS * ROUNDS)) ]; then
  valid=0; say "WARNING: failed mounts (ours $((CLIENTS * ROUNDS - ours_ok)), nfs-utils $((CLIENTS * ROUNDS - ref_ok))): the ratio compares unequal work (see failures.txt)"
fi
if [ "$INVALID" == 1 ]; then
  valid=0; say "WARNING: the server did not see one distinct address per client: the measurement is not what was asked"
fi
if [ "$valid" == 1 ] && awk -v r="$ratio" 'BEGIN { exit !(r <= 0.5) }'; then verdict=met
elif [ "$valid" == 1 ]; then verdict="not met"
else verdict="not met (invalid run)"
fi
echo "goal: ours <= 0.5 x nfs-utils: $verdict (ratio $ratio)" | tee -a "$SUMMARY"
[ "$valid" == 1 ] || exit 1
