#!/usr/bin/env bash
# Benchmark (not a test), run inside the integration/vm harness's VM by
# bench/guest-bench: one nested guest (guests.sh: Debian's kernel, the
# outer VM's own, from a busybox initramfs) carrying four devices, and four
# ways to give it the same host directory (one ext4 image, loop-mounted
# below an fsid=0 tmpfs in this VM; 9p and virtio-fs share the ext4 root):
#   vsock     NFSv4.1 through mount.vsock and the bridge: rpc.nfsd --vsock
#             2049 (the guests' nfsd in the bridge's network namespace, as
#             in scenario 70): guest NFS client -> TCP 127.0.0.1 -> relay ->
#             vhost-vsock -> nfs-vsock-bridge -> TCP loopback -> nfsd
#   net       NFSv4.1 over virtio-net: a tap here with vhost-net, the host's
#             own nfsd (rpc.nfsd -H on the tap's address, link-local
#             169.254.77.1), busybox mount -t nfs4 with addr=/clientaddr=;
#             the same NFS options as vsock
#   virtiofs  Debian's /usr/lib/qemu/virtiofsd -o cache=auto,
#             vhost-user-fs-pci, guest RAM in a shared memfd
#   9p        -virtfs local, security_model=passthrough, 9p2000.L,
#             msize=512000, cache=mmap
# Both nfsd instances get GB_THREADS threads; nothing else runs here while
# the guest measures. The guest runs bench/guest/guest.sh (orders, groups,
# cache drops) with bench/guest/gbench.c built static; it asks
# bench/guest/host-agent.py (vsock port 7007 here) to drop this VM's caches
# and to mark the CPU counters around each timed step. summary.py turns the
# guest's console lines and the agent's marks into the report.
#
# Settings (environment; bench/guest-bench sets them through a wrapper):
#   GB_ROUNDS (3) GB_MIB (16) GB_BS_KIB (1024) GB_RAND (200: 4 KiB reads)
#   GB_FILES (50: metadata files) GB_GROUPS ("seq meta tree")
#   GB_TREE (/usr/include/linux/netfilter) GB_TREE_FILES (0: all its files)
#   GB_NFS_OPTS (extra options for both NFS rows) GB_VSOCK_EXTRA (";"-
#   separated option sets: one more vsock row each) GB_THREADS (8)
#   GB_GUEST_MEMORY (512) GB_GUEST_CPUS (1) GB_GUEST_TIMEOUT (seconds)
#   GB_CRELAY (1: one more row, vsock-crelay: the bridge path through
#   gbench's minimal relay instead of mount.vsock's, to tell the relay's
#   own cost from the hop's) GB_GBENCH (a prebuilt static gbench; else
#   built here)
# Output: $RESULTS_DIR/guest-bench/{summary.txt,guest.txt,marks.txt}.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../../integration/vm/lib.sh}"
vmt_begin

ROUNDS=${GB_ROUNDS:-3}
MIB=${GB_MIB:-16}
BS_KIB=${GB_BS_KIB:-1024}
RAND=${GB_RAND:-200}
FILES=${GB_FILES:-50}
GROUPS_=${GB_GROUPS:-seq meta tree}
TREE=${GB_TREE:-/usr/include/linux/netfilter}
TREE_FILES=${GB_TREE_FILES:-0}
NFS_OPTS=${GB_NFS_OPTS:-}
VSOCK_EXTRA=${GB_VSOCK_EXTRA:-}
THREADS=${GB_THREADS:-8}
GMEM=${GB_GUEST_MEMORY:-512}
GCPUS=${GB_GUEST_CPUS:-1}
GUEST_TIMEOUT=${GB_GUEST_TIMEOUT:-2400}
for v in ROUNDS MIB BS_KIB RAND FILES THREADS GMEM GCPUS GUEST_TIMEOUT; do
  [[ ${!v} =~ ^[0-9]+$ ]] || fail "GB_$v must be a number, got '${!v}'"
done
[ -d "$TREE" ] || fail "GB_TREE $TREE is not a directory"

HERE=$(cd "$(dirname "$0")" && pwd)
W=$VMT_WORK
ROOT=$W/root DATA=$W/root/data
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd
OUT=$RESULTS_DIR/guest-bench
mkdir -p "$OUT"
: > "$OUT/marks.txt"
NET_HOST=169.254.77.1 NET_GUEST=169.254.77.2 TAP=gbtap0
AGENT_PORT=7007
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

vmt_step "the outer VM's devices: vhost-vsock, vhost-net, tap"
modprobe vhost_vsock
modprobe tun
modprobe vhost_net
[ -e /dev/vhost-vsock ] && [ -e /dev/vhost-net ] && [ -e /dev/net/tun ] || fail "no /dev/vhost-vsock, /dev/vhost-net or /dev/net/tun"
vmt_run ip tuntap add dev "$TAP" mode tap
vmt_defer "ip link del $TAP"
vmt_run ip addr add "$NET_HOST/24" dev "$TAP"
vmt_run ip link set "$TAP" up

vmt_step "the export: an ext4 image below an fsid=0 tmpfs"
vmt_mk_v4root "$ROOT"
# As in bridge-bench: no lazy inode table or journal initialisation (its
# kernel thread would take CPU from the first rows), the image allocated up
# front (it lives in RAM under /tmp).
tree_kib=$(du -sk "$TREE" | cut -f1)
size=$(( MIB * 2 + tree_kib / 512 + 128 ))
fallocate -l "${size}M" "$W/data.img" || truncate -s "${size}M" "$W/data.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$W/data.img"
mkdir -p "$DATA"
mount -o loop "$W/data.img" "$DATA"
chmod 777 "$DATA"
vmt_write_exports <<EOF
$ROOT  vsock:3(ro,fsid=0,no_subtree_check) $NET_GUEST(ro,fsid=0,no_subtree_check)
$DATA  vsock:3(rw,no_root_squash,no_subtree_check) $NET_GUEST(rw,no_root_squash,no_subtree_check)
EOF
vmt_run "$EXPORTFS" -ra

vmt_step "the tree: a tarball of $TREE"
if [ "$TREE_FILES" -gt 0 ]; then
  (cd "$(dirname "$TREE")" && find "$(basename "$TREE")" -type f | sort | awk -v n="$TREE_FILES" 'NR <= n' | tar -cf "$W/tree.tar" -T -)
else
  tar -C "$(dirname "$TREE")" -cf "$W/tree.tar" "$(basename "$TREE")"
fi
tree_desc="$(tar -tf "$W/tree.tar" | awk '/\/$/ { d++; next } { f++ } END { printf "%d files and %d directories", f, d }') of $TREE, $(( $(stat -c %s "$W/tree.tar") / 1024 )) KiB tar"
vmt_note "tree: $tree_desc"

vmt_step "gbench (static)"
if [ -n "${GB_GBENCH:-}" ]; then
  cp "$GB_GBENCH" "$W/gbench"
else
  gcc -O2 -static -o "$W/gbench" "$HERE/gbench.c"
fi

vmt_step "servers: mountd, rpc.nfsd (host nfsd on the tap, the guests' nfsd and the bridge), virtiofsd, the agent"
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
vmt_run "$NFSD" -N 3 -H "$NET_HOST" -G 10 --vsock 2049 "$THREADS"
wait_for 10 "mountd to answer the bridge's nfsd" grep -q "answering the vsock bridge's nfsd too" "$W/mountd.log"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || vmt_note "could not end the grace period"
vmt_end_bridge_grace
server_desc="host nfsd: versions $(cat /proc/fs/nfsd/versions), listeners $(tr '\n' ' ' < /proc/fs/nfsd/portlist)threads $(cat /proc/fs/nfsd/threads), max_block_size $(cat /proc/fs/nfsd/max_block_size); guests' nfsd: versions $(cat "$VMT_BRIDGE_NFSD/versions"), listeners $(tr '\n' ' ' < "$VMT_BRIDGE_NFSD/portlist")threads $(cat "$VMT_BRIDGE_NFSD/threads"), max_block_size $(cat "$VMT_BRIDGE_NFSD/max_block_size")"
vmt_note "$server_desc"
[ -n "$(vmt_bridge_pid)" ] || fail "rpc.nfsd started no bridge"
VIRTIOFSD_ARGS=(--socket-path="$W/vfs.sock" -o source="$DATA" -o cache=auto)
vmt_start_daemon virtiofsd "$W/virtiofsd.log" /usr/lib/qemu/virtiofsd "${VIRTIOFSD_ARGS[@]}"
wait_for 20 "virtiofsd's socket" test -S "$W/vfs.sock"
vmt_start_daemon agent "$W/agent.log" "$PY" "$HERE/host-agent.py" "$AGENT_PORT" "$OUT/marks.txt" \
  "$VMT_STATE/guest-gb.pid" "$VMT_STATE/virtiofsd.pid" /run/nfs-vsock-bridge.pid
wait_for 20 "the agent" grep -q listening "$W/agent.log"

vmt_step "the guest's settings"
P9_OPTS=trans=virtio,version=9p2000.L,msize=512000,cache=mmap
{
  printf 'ROUNDS=%s\nMIB=%s\nBS_KIB=%s\nRAND_COUNT=%s\nFILES=%s\nGROUPS="%s"\n' "$ROUNDS" "$MIB" "$BS_KIB" "$RAND" "$FILES" "$GROUPS_"
  printf 'EXPORT=/data\nNET_HOST=%s\nNET_GUEST=%s\nVIRTIOFS_TAG=gbfs\nP9_TAG=gb9p\nGB_AGENT_PORT=%s\n' "$NET_HOST" "$NET_GUEST" "$AGENT_PORT"
  # The row lines are read by awk; as shell they do nothing.
  echo 'row() { :; }'
  echo "row vsock vsock vers=4.1${NFS_OPTS:+,$NFS_OPTS}"
  echo "row net net vers=4.1${NFS_OPTS:+,$NFS_OPTS}"
  echo "row virtiofs virtiofs rw"
  echo "row 9p 9p $P9_OPTS"
  [ "${GB_CRELAY:-0}" == 0 ] || echo "row vsock-crelay crelay vers=4.1${NFS_OPTS:+,$NFS_OPTS}"
  n=0
  IFS=';' read -r -a extras <<<"$VSOCK_EXTRA"
  for e in "${extras[@]}"; do
    [ -n "$e" ] || continue
    n=$((n + 1))
    echo "row vsock-x$n vsock vers=4.1${NFS_OPTS:+,$NFS_OPTS},$e"
  done
} > "$W/gb.conf"
sed 's/^/  | /' "$W/gb.conf"
cp "$W/gb.conf" "$OUT/gb.conf"

vmt_step "boot the guest (nested QEMU, software emulation) and let it measure"
VMT_GUEST_MODULES+=(virtio_net virtiofs 9pnet_virtio 9p)
VMT_GUEST_MEMORY=$GMEM VMT_GUEST_CPUS=$GCPUS
VMT_GUEST_FILES="$W/gb.conf:gb.conf $W/gbench:bin/gbench $W/tree.tar:tree.tar"
QEMU_ARGS=(
  -object "memory-backend-memfd,id=gbmem,size=${GMEM}M,share=on" -numa node,memdev=gbmem
  -chardev "socket,id=gbvfs,path=$W/vfs.sock" -device vhost-user-fs-pci,chardev=gbvfs,tag=gbfs
  -virtfs "local,path=$DATA,mount_tag=gb9p,security_model=passthrough,id=gb9p"
  -netdev "tap,id=gbnet,ifname=$TAP,script=no,downscript=no,vhost=on" -device virtio-net-pci,netdev=gbnet,romfile=
)
t0=$(date +%s)
vmt_guest_start gb 3 "$HERE/guest.sh" "${QEMU_ARGS[@]}"
vmt_guest_started gb 3 "$HERE/guest.sh" 400 "${QEMU_ARGS[@]}"
vmt_note "the guest's init ran $(( $(date +%s) - t0 )) s after start"
vmt_guest_wait gb "$GUEST_TIMEOUT"
vmt_note "the guest was done $(( $(date +%s) - t0 )) s after start"
console=$(vmt_guest_console gb)
tr -d '\r' < "$console" | grep '^@@' > "$OUT/guest.txt" || true
grep -q '^@@done' "$OUT/guest.txt" || fail "the guest did not finish its rounds (see $console)"

vmt_step "summary"
{
  echo "outer VM: kernel $(uname -r), $(nproc) vCPUs (QEMU TCG), $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
  echo "guest: kernel $(vmt_guest_kver) (booted as $(vmt_guest_image "$(vmt_guest_kver)")), $GCPUS vCPU(s), $GMEM MiB, nested QEMU TCG ($(qemu-system-x86_64 --version | head -n 1)), CID 3; devices vhost-vsock-pci, virtio-net-pci (tap, vhost=on), vhost-user-fs-pci, virtio-9p-pci"
  echo "export: ext4 on a loop device (image in RAM), $DATA; $server_desc"
  echo "virtiofsd: /usr/lib/qemu/virtiofsd ${VIRTIOFSD_ARGS[*]}"
  echo "9p: -virtfs local,path=$DATA,security_model=passthrough; mount -t 9p -o $P9_OPTS"
  echo "tree: $tree_desc"
  echo "workloads: $MIB MiB in ${BS_KIB} KiB writes (fsync included) and reads, $RAND random 4 KiB reads, $FILES files per metadata run; groups $GROUPS_; $ROUNDS round(s)"
  awk '$1 == "row" && NF >= 3 { printf "row %s: %s, options %s\n", $2, $3, $4 }' "$W/gb.conf"
} > "$OUT/setup.txt"
"$PY" "$HERE/summary.py" "$OUT/setup.txt" "$OUT/guest.txt" "$OUT/marks.txt" > "$OUT/summary.txt"
cat "$OUT/summary.txt"
