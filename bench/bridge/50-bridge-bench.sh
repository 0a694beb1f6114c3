#!/usr/bin/env bash
# Benchmark (not a test), run inside the integration/vm harness's VM by
# bench/bridge-bench: NFSv4.1 through the vsock bridge path against plain
# NFSv4.1 over TCP loopback, same kernel, same server, same export.
#
#   - one ext4 image (loop) mounted at <root>/data below an fsid=0 tmpfs
#     <root> (the VM's "/" is 9p and /tmp an overlay, neither exportable);
#     both exported to 127.0.0.1 and to vsock:1 with the same options
#     (ext4 made without lazy initialisation; a 16 MiB write and read
#     through each path first, untimed);
#   - server: our nfsd-control -N 3 -H 127.0.0.1 8 (loopback only), our
#     mountd, nfs-vsock-bridge --vsock 2049 --target 127.0.0.1:2049 (what
#     rpc.nfsd --vsock 2049 starts on a kernel without the vsock transport,
#     in its network namespace with the guests' own nfsd instance: the two
#     sides now reach two nfsd instances of one kernel, same threads and
#     export);
#   - direct: mount -t nfs -o vers=4.1,proto=tcp[,BB_NFS_OPTS]
#     127.0.0.1:/data, from the root network namespace;
#   - bridge: mount.vsock 1:/data -o vers=4.1[,BB_NFS_OPTS] from network
#     namespace bbg (NFSv4.1 would merge both mounts of one server in one
#     namespace into one client); vsock_loopback, the local CID is 1:
#       NFS client -> TCP 127.0.0.1:<relay> -> mount.vsock's relay ->
#       vsock 1:2049 -> nfs-vsock-bridge -> TCP 127.128.0.1 -> 127.0.0.1:2049
#   - per side and round: (1) mount, dd 256 MiB from /dev/zero with
#     conv=fsync, umount; (2) sync, drop caches, mount, dd the file to
#     /dev/null, then (3) the metadata workload (metadata.py: create, stat,
#     unlink 2,000 files of 512 bytes, one process), umount; the file is
#     removed on the server, caches dropped. Rounds alternate which side goes
#     first (direct first in odd rounds).
# Besides wall time, the VM's busy CPU time (/proc/stat) per test, and the
# relay's and the bridge's own CPU time on the bridge side, show where the
# time goes (under QEMU software emulation CPU per byte is what counts).
#
# Settings (environment; bench/bridge-bench sets them through a wrapper):
#   BB_ROUNDS (3)  BB_MIB (256)  BB_FILES (2000)  BB_NFS_OPTS (empty: extra
#   NFS options for both mounts)  BB_DEBUG (1: the bridge logs each
#   connection; 0: quiet)
# Goals are judged on the median of the per-round ratios (both sides of a
# round run back to back); the ratios of the per-side medians are printed too.
# Output: lines starting "bridge-bench:" and "goal:" here and in
# $RESULTS_DIR/bridge-bench/summary.txt; raw per-test lines in results.txt.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../../integration/vm/lib.sh}"
vmt_begin

ROUNDS=${BB_ROUNDS:-3}
MIB=${BB_MIB:-256}
FILES=${BB_FILES:-2000}
EXTRA=${BB_NFS_OPTS:-}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || fail "BB_ROUNDS must be a positive number"
[[ $MIB =~ ^[1-9][0-9]*$ && $MIB -le 1024 ]] || fail "BB_MIB must be 1..1024"
[[ $FILES =~ ^[1-9][0-9]*$ ]] || fail "BB_FILES must be a positive number"

HERE=$(cd "$(dirname "$0")" && pwd)
METADATA=$HERE/metadata.py
[ -f "$METADATA" ] || METADATA=${BB_METADATA:?metadata.py not found}
W=$VMT_WORK
ROOT=$W/root DATA=$W/root/data MNT=$W/mnt
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd BRIDGE=$BIN_DIR/nfs-vsock-bridge HELPER=$BIN_DIR/mount.vsock
OUT=$RESULTS_DIR/bridge-bench
mkdir -p "$OUT" "$MNT"
SUMMARY=$OUT/summary.txt RAW=$OUT/results.txt
: > "$SUMMARY"; : > "$RAW"
TICK=$(getconf CLK_TCK)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

say() { printf 'bridge-bench: %s\n' "$*" | tee -a "$SUMMARY"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# busy jiffies of the whole VM (all but idle and iowait)
vm_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# utime + stime of PID in clock ticks (0 when gone)
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  awk '{ print $12 + $13 }' <<<"$s"
}
# RPCs the server has answered (both paths go to the same nfsd), and the
# VM's context switches so far: per metadata RPC, they show what each
# request/reply round trip costs on either path.
srv_rpcs() { awk '/^rpc / { print $2; exit }' /proc/net/rpc/nfsd; }
vm_ctxt() { awk '/^ctxt / { print $2; exit }' /proc/stat; }
ticks_s() { awk -v a="$1" -v t="$TICK" 'BEGIN { printf "%.2f", a / t }'; }
# A fixed bit of CPU work, timed: the host's other load shows in it (QEMU
# software emulation gives the guest no steal time to read).
probe() { "$PY" -c 'import time; t = time.monotonic(); sum(range(1000000)); print("%.3f" % (time.monotonic() - t))'; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# ------------------------------------------------------------------ setup
vmt_step "file systems: fsid=0 tmpfs root, ext4 image for the data"
vmt_mk_v4root "$ROOT"
# Not vmt_mk_ext4: no lazy inode table / journal initialisation, whose
# background thread (ext4lazyinit) would steal CPU from the first tests; and
# the image allocated in full up front (it lives in RAM under /tmp), so no
# side pays for its pages. (Round 1's first write, direct, is still slower
# than later ones; the cause is not known: judge rounds by their ratios.)
fallocate -l $(( MIB + MIB / 2 + 128 ))M "$W/data.img" || truncate -s $(( MIB + MIB / 2 + 128 ))M "$W/data.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$W/data.img"
mkdir -p "$DATA"
mount -o loop "$W/data.img" "$DATA"
chmod 777 "$DATA"
vmt_write_exports <<EOF
$ROOT       127.0.0.1(ro,fsid=0,insecure,no_subtree_check) vsock:1(ro,fsid=0,insecure,no_subtree_check)
$DATA  127.0.0.1(rw,no_root_squash,insecure,no_subtree_check) vsock:1(rw,no_root_squash,insecure,no_subtree_check)
EOF
vmt_run "$EXPORTFS" -ra

vmt_step "server: loopback-only nfsd and the guests' nfsd (8 threads each), mountd, nfs-vsock-bridge"
vmt_run "$NFSD" -N 3 -H 127.0.0.1 -G 10 --vsock 2049 8
printf '  versions: %s; listeners: %s\n' "$(cat /proc/fs/nfsd/versions)" "$(tr '\n' ' ' < /proc/fs/nfsd/portlist)"
printf "  the guests' nfsd: versions %s; listeners: %s\n" "$(cat "$VMT_BRIDGE_NFSD/versions")" "$(tr '\n' ' ' < "$VMT_BRIDGE_NFSD/portlist")"
# rpc.nfsd started a bridge; this benchmark runs its own (-d or not).
vmt_stop_rpcnfsd_bridge
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
wait_for 10 "mountd to answer the bridge's nfsd" grep -q "answering the vsock bridge's nfsd too" "$W/mountd.log"
dbg=(-d)
[ "${BB_DEBUG:-1}" == 1 ] || dbg=()
vmt_start_daemon bridge "$W/bridge.log" "$BRIDGE" --vsock 2049 --target 127.0.0.1:2049 "${dbg[@]}"
wait_for 10 "the bridge" sh -c "grep -q forwarding '$W/bridge.log'"
BRIDGE_PID=$(vmt_pid bridge)
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || vmt_note "could not end the grace period"
vmt_end_bridge_grace
vmt_run ip netns add bbg
vmt_run ip -n bbg link set lo up

DIRECT_OPTS="vers=4.1,proto=tcp${EXTRA:+,$EXTRA}"
BRIDGE_OPTS="vers=4.1${EXTRA:+,$EXTRA}"

# mount_side direct|bridge: mounts the export at $MNT
mount_side() {
  if [ "$1" == direct ]; then
    timeout 60 mount -t nfs -o "$DIRECT_OPTS" 127.0.0.1:/data "$MNT"
  else
    nsenter --net=/run/netns/bbg timeout 60 "$HELPER" 1:/data "$MNT" -o "$BRIDGE_OPTS"
  fi
}
# the mount's options as the kernel reports them, minus where it connects to
mount_opts() { findmnt -n -o OPTIONS "$MNT" | tr ',' '\n' | grep -vE '^(addr|clientaddr|port)=' | paste -sd, -; }
relay_pid() { pgrep -f "^$HELPER 1:/data " | head -n 1 || true; }
umount_side() {
  timeout 60 umount "$MNT"
  # The relay exits once the NFS client closes its connection; wait for it
  # so that it does not overlap the next test.
  local n
  for ((n = 0; n < 100; n++)); do [ -z "$(relay_pid)" ] && return 0; sleep 0.1; done
  vmt_note "the relay still runs 10 s after umount"
}

vmt_step "preflight: both paths mount, and the bridge path really goes through the bridge"
for side in direct bridge; do
  vmt_capture mount_side "$side"
  [ "$VMT_RC" == 0 ] || fail "$side mount failed"
  echo "$side" > "$MNT/preflight-$side"
  sync -f "$MNT/preflight-$side"
  # warm-up (untimed): first writes through each path
  dd if=/dev/zero of="$MNT/warmup" bs=1M count=16 conv=fsync status=none
  dd if="$MNT/warmup" of=/dev/null bs=1M status=none
  rm "$MNT/warmup"
  printf '  %s: %s\n' "$side" "$(findmnt -n -o SOURCE,FSTYPE,OPTIONS "$MNT")"
  declare "OPTS_$side=$(mount_opts)"
  ss -Htn state established '( dport = :2049 )' | sed 's/^/  tcp to :2049: /'
  vmt_in_bridge_ns ss -Htn state established '( dport = :2049 )' | sed "s/^/  tcp to :2049 in the bridge's namespace: /"
  if [ "$side" == bridge ]; then
    vmt_in_bridge_ns ss -Htn state established '( dport = :2049 )' | grep -q '127\.128\.0\.1:' || fail "no connection from 127.128.0.1 to the guests' nfsd: not through the bridge"
    [ -n "$(relay_pid)" ] || fail "no mount.vsock relay process"
  fi
  umount_side
done
assert_eq "direct bridge" "$(cat "$DATA/preflight-direct") $(cat "$DATA/preflight-bridge")" "files written through both paths"
rm -f "$DATA"/preflight-*
if [ "$OPTS_direct" != "$OPTS_bridge" ]; then
  say "WARNING: the two mounts' options differ (besides addr/port):"
  say "  direct: $OPTS_direct"
  say "  bridge: $OPTS_bridge"
fi

# ------------------------------------------------------------------ tests
declare -A PROBE0 PROBE1 WRITE READ META METAPH METARPC METACS CPUW CPUR CPUM AUXW AUXR AUXM

# aux_ticks SIDE: CPU ticks of the relay + bridge so far (bridge side only)
aux_ticks() {
  if [ "$1" == bridge ]; then
    local r relay=0; r=$(relay_pid)
    [ -z "$r" ] || relay=$(cpu_ticks "$r")
    echo $(( $(cpu_ticks "$BRIDGE_PID") + relay ))
  else
    echo 0
  fi
}

run_side() { # direct|bridge ROUND
  local side=$1 r=$2 tag=$1.r$2 t0 t1 b0 b1 a0 a1 n0 n1 c0 c1 out
  vmt_step "round $r: $side"
  PROBE0[$tag]=$(probe)
  rm -f "$DATA/seq"
  drop_caches
  # (1) sequential write
  mount_side "$side" || fail "round $r: $side mount failed"
  a0=$(aux_ticks "$side"); b0=$(vm_busy); t0=$EPOCHREALTIME
  dd if=/dev/zero of="$MNT/seq" bs=1M count="$MIB" conv=fsync status=none || fail "round $r: $side write failed"
  t1=$EPOCHREALTIME; b1=$(vm_busy); a1=$(aux_ticks "$side")
  WRITE[$tag]=$(secs "$t0" "$t1"); CPUW[$tag]=$(ticks_s $((b1 - b0))); AUXW[$tag]=$(ticks_s $((a1 - a0)))
  umount_side
  [ "$(stat -c %s "$DATA/seq")" == $((MIB * 1024 * 1024)) ] || fail "round $r: $side wrote $(stat -c %s "$DATA/seq") bytes"
  # (2) sequential read, cold caches on client and server
  drop_caches
  mount_side "$side" || fail "round $r: $side mount failed"
  a0=$(aux_ticks "$side"); b0=$(vm_busy); t0=$EPOCHREALTIME
  dd if="$MNT/seq" of=/dev/null bs=1M status=none || fail "round $r: $side read failed"
  t1=$EPOCHREALTIME; b1=$(vm_busy); a1=$(aux_ticks "$side")
  READ[$tag]=$(secs "$t0" "$t1"); CPUR[$tag]=$(ticks_s $((b1 - b0))); AUXR[$tag]=$(ticks_s $((a1 - a0)))
  # (3) metadata
  a0=$(aux_ticks "$side"); b0=$(vm_busy); n0=$(srv_rpcs); c0=$(vm_ctxt)
  out=$("$PY" "$METADATA" "$MNT/meta.$tag" "$FILES") || fail "round $r: $side metadata workload failed"
  c1=$(vm_ctxt); n1=$(srv_rpcs); b1=$(vm_busy); a1=$(aux_ticks "$side")
  METARPC[$tag]=$((n1 - n0)); METACS[$tag]=$((c1 - c0))
  METAPH[$tag]=$out
  META[$tag]=$(awk '{ print $8 }' <<<"$out")
  CPUM[$tag]=$(ticks_s $((b1 - b0))); AUXM[$tag]=$(ticks_s $((a1 - a0)))
  umount_side
  rm -f "$DATA/seq"
  PROBE1[$tag]=$(probe)
  printf '  bridge threads %s, relays running %s\n' "$(awk '/^Threads:/ { print $2 }' "/proc/$BRIDGE_PID/status")" "$(pgrep -c -f "^$HELPER 1:/data " || true)"
  printf '  write %s s, read %s s, metadata %s s (%s); VM busy CPU %s/%s/%s s; relay+bridge CPU %s/%s/%s s\n' \
    "${WRITE[$tag]}" "${READ[$tag]}" "${META[$tag]}" "$out" "${CPUW[$tag]}" "${CPUR[$tag]}" "${CPUM[$tag]}" \
    "${AUXW[$tag]}" "${AUXR[$tag]}" "${AUXM[$tag]}"
  echo "$tag write_s ${WRITE[$tag]} read_s ${READ[$tag]} meta_s ${META[$tag]} vmcpu_w ${CPUW[$tag]} vmcpu_r ${CPUR[$tag]} vmcpu_m ${CPUM[$tag]} aux_w ${AUXW[$tag]} aux_r ${AUXR[$tag]} aux_m ${AUXM[$tag]} meta_rpcs ${METARPC[$tag]} meta_ctxt ${METACS[$tag]} probe ${PROBE0[$tag]} ${PROBE1[$tag]} $out" >> "$RAW"
}

for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then run_side direct "$r"; run_side bridge "$r"; else run_side bridge "$r"; run_side direct "$r"; fi
done

# ------------------------------------------------------------------ summary
vmt_step "summary"
mibs() { awk -v m="$MIB" -v s="$1" 'BEGIN { printf "%.1f", m / s }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { # ARRAY-NAME SIDE
  local -n arr=$1
  local r
  for ((r = 1; r <= ROUNDS; r++)); do echo "${arr[$2.r$r]}"; done | median
}
per_rpc() { # ARRAY-NAME SIDE: median over rounds of metadata seconds x 1e6 / RPCs, or switches / RPC
  local -n arr=$1
  local r
  for ((r = 1; r <= ROUNDS; r++)); do
    awk -v a="${arr[$2.r$r]}" -v n="${METARPC[$2.r$r]}" -v s="$3" 'BEGIN { printf "%.1f\n", (n > 0 ? a * s / n : 0) }'
  done | median
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

say "$MIB MiB sequential write (dd bs=1M conv=fsync) and read (dd bs=1M, cold caches), $FILES files create+stat+unlink (512 bytes each, one python3 process); $ROUNDS round(s), alternating order"
say "kernel $(uname -r), $(nproc) vCPUs (QEMU TCG), clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo '?'), server 8 nfsd threads, export: ext4 on a loop device"
say "direct: mount -t nfs -o $DIRECT_OPTS 127.0.0.1:/data"
say "bridge: mount.vsock 1:/data -o $BRIDGE_OPTS (relay -> vsock_loopback -> nfs-vsock-bridge -> TCP loopback)"
say "effective options, direct: $OPTS_direct"
say "effective options, bridge: $OPTS_bridge"
for ((r = 1; r <= ROUNDS; r++)); do
  first=$( ((r % 2)) && echo direct || echo bridge)
  say "round $r ($first first): bridge/direct write throughput $(ratio "${WRITE[direct.r$r]}" "${WRITE[bridge.r$r]}"), read throughput $(ratio "${READ[direct.r$r]}" "${READ[bridge.r$r]}"), metadata time $(ratio "${META[bridge.r$r]}" "${META[direct.r$r]}"); CPU probe (s, before/after) direct ${PROBE0[direct.r$r]}/${PROBE1[direct.r$r]}, bridge ${PROBE0[bridge.r$r]}/${PROBE1[bridge.r$r]}"
  for side in direct bridge; do
    t=$side.r$r
    say "  $(printf '%-6s' "$side") metadata: ${METARPC[$t]} RPCs at the server, $(awk -v a="${META[$t]}" -v n="${METARPC[$t]}" 'BEGIN { printf "%.0f", (n > 0 ? a * 1e6 / n : 0) }') us and $(awk -v c="${METACS[$t]}" -v n="${METARPC[$t]}" 'BEGIN { printf "%.1f", (n > 0 ? c / n : 0) }') context switches (whole VM) per RPC"
    say "  $(printf '%-6s' "$side") write ${WRITE[$t]} s ($(mibs "${WRITE[$t]}") MiB/s), read ${READ[$t]} s ($(mibs "${READ[$t]}") MiB/s), metadata ${META[$t]} s [${METAPH[$t]}]; VM busy CPU w/r/m ${CPUW[$t]}/${CPUR[$t]}/${CPUM[$t]} s$( [ "$side" == bridge ] && echo "; of it relay+bridge ${AUXW[$t]}/${AUXR[$t]}/${AUXM[$t]} s")"
  done
done
dw=$(med WRITE direct) bw=$(med WRITE bridge) dr=$(med READ direct) br=$(med READ bridge)
dm=$(med META direct) bm=$(med META bridge)
wr=$(ratio "$dw" "$bw") rr=$(ratio "$dr" "$br") mr=$(ratio "$bm" "$dm")
say "median direct: write $dw s ($(mibs "$dw") MiB/s), read $dr s ($(mibs "$dr") MiB/s), metadata $dm s; VM busy CPU w/r/m $(med CPUW direct)/$(med CPUR direct)/$(med CPUM direct) s"
say "median bridge: write $bw s ($(mibs "$bw") MiB/s), read $br s ($(mibs "$br") MiB/s), metadata $bm s; VM busy CPU w/r/m $(med CPUW bridge)/$(med CPUR bridge)/$(med CPUM bridge) s, of it relay+bridge $(med AUXW bridge)/$(med AUXR bridge)/$(med AUXM bridge) s"
say "metadata per RPC (median): direct $(per_rpc META direct 1e6) us, $(per_rpc METACS direct 1) context switches; bridge $(per_rpc META bridge 1e6) us, $(per_rpc METACS bridge 1) context switches"
say "ratios of the per-side medians (bridge/direct): write throughput $wr, read throughput $rr, metadata time $mr"
# Each round measures both sides back to back, so its ratio is the one least
# disturbed by the host's load drifting over the run (the CPU probe shows
# it); the goals are judged on the median of the per-round ratios.
paired() { # ARRAY NUMERATOR-SIDE DENOMINATOR-SIDE
  local -n arr=$1
  local r
  for ((r = 1; r <= ROUNDS; r++)); do ratio "${arr[$2.r$r]}" "${arr[$3.r$r]}"; echo; done | median
}
pw=$(paired WRITE direct bridge) pr=$(paired READ direct bridge) pm=$(paired META bridge direct)
say "median of the per-round ratios (bridge/direct): write throughput $pw, read throughput $pr, metadata time $pm"
tmin=$(awk -v a="$pw" -v b="$pr" 'BEGIN { print (a < b) ? a : b }')
if awk -v r="$tmin" 'BEGIN { exit !(r >= 0.8) }'; then v=met; else v="NOT met"; fi
echo "goal: throughput ratio >= 0.8: $v (write $pw, read $pr; ratios of medians: write $wr, read $rr)" | tee -a "$SUMMARY"
if awk -v r="$pm" 'BEGIN { exit !(r <= 1.25) }'; then v=met; else v="NOT met"; fi
echo "goal: metadata ratio <= 1.25: $v ($pm; ratio of medians: $mr)" | tee -a "$SUMMARY"
