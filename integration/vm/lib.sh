# shellcheck shell=bash
# Shared helpers for the real-kernel scenarios. Sourced by guest-main.sh and by
# every scenario; runs inside the virtme-ng VM as root, never on the host.
#
# A scenario looks like:
#   set -euo pipefail
#   . "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
#   vmt_begin                      # work dir, EXIT trap, clean state check
#   vmt_defer "some undo command"  # optional extra undo steps (run LIFO)
#   ... assert_* ...
#
# Paths: everything a scenario creates lives under $VMT_WORK
# (/tmp/vmtest/<scenario>); /tmp is a writable overlay in the VM whose upper
# layer is RAM. /etc and /var are writable overlays too (virtme-ng), so
# /etc/exports is written in place; /var/lib/nfs gets a fresh tmpfs from
# guest-main.sh. Nothing here touches the host.

VMT_ROOT=${VMT_ROOT:-/tmp/vmtest}
VMT_STATE=${VMT_STATE:-$VMT_ROOT/.state}        # pid files of daemons we started
REF_EXPORTFS=${REF_EXPORTFS:-/usr/sbin/exportfs} # Debian's nfs-utils: the reference
REF_NFSD=${REF_NFSD:-/usr/sbin/rpc.nfsd}
REF_MOUNTD=${REF_MOUNTD:-/usr/sbin/rpc.mountd}
EXPORTFS=${EXPORTFS:-${BIN_DIR:+$BIN_DIR/exportfs}} # ours (or the reference, see run)
NFS_STATE_DIR=/var/lib/nfs
RPC_CACHES=(auth.unix.ip auth.unix.gid nfsd.fh nfsd.export)

# ---------------------------------------------------------------- messages

vmt_note() { printf '# %s\n' "$*"; }
# Steps carry the VM's uptime, so slow steps show in the log.
vmt_step() { local up; read -r up _ < /proc/uptime; printf '\n== [%ss] %s\n' "$up" "$*"; }

# set -e ends a scenario at the first failing command; say which one, or the
# log would just stop. (ERR also fires where set -e is off: ignore those.)
vmt_on_err() { # status command line
  case $- in *e*) ;; *) return 0 ;; esac
  local what=$2
  # A helper's "return $rc" is reported at its caller's line.
  [[ "$what" != return* ]] || what="a helper failed (its command is logged above)"
  printf 'COMMAND FAILED (exit %s) at %s:%s: %s\n' "$1" "${BASH_SOURCE[1]##*/}" "$3" "$what"
}

# Prints the failure and ends the scenario (the EXIT trap cleans up).
fail() {
  printf 'ASSERTION FAILED: %s\n' "$*"
  exit 1
}

# Runs a command, echoing it first, so the log shows what happened.
vmt_run() {
  printf '$ %s\n' "$*"
  local t0=$EPOCHREALTIME rc=0
  "$@" || rc=$?
  vmt_slow_note "$t0"
  [ "$rc" -eq 0 ] || printf '  -> exit %s\n' "$rc"
  return "$rc"
}

# Notes commands that took over half a second (everything is slow under
# software emulation; this shows where the time goes).
vmt_slow_note() {
  local ms=$(( (${EPOCHREALTIME/./} - ${1/./}) / 1000 ))
  [ "$ms" -lt 500 ] || printf '  (%d.%ds)\n' $((ms / 1000)) $((ms % 1000 / 100))
}

# Runs a command and stores its combined output in $VMT_OUT and its exit status
# in $VMT_RC without tripping set -e. Echoes both to the log.
vmt_capture() {
  printf '$ %s\n' "$*"
  local t0=$EPOCHREALTIME errexit=
  case $- in *e*) errexit=1 ;; esac
  set +e
  VMT_OUT=$("$@" 2>&1)
  VMT_RC=$?
  [ -z "$errexit" ] || set -e
  if [ -n "$VMT_OUT" ]; then printf '%s\n' "$VMT_OUT" | sed 's/^/  | /'; fi
  printf '  -> exit %s\n' "$VMT_RC"
  vmt_slow_note "$t0"
}

# ---------------------------------------------------------------- asserts

assert_eq() { # expected actual message
  [ "$1" == "$2" ] || fail "$3: expected '$1', got '$2'"
}

assert_ne() { # unexpected actual message
  [ "$1" != "$2" ] || fail "$3: did not expect '$2'"
}

assert_gt() { # a b message   (integers; a > b)
  [ "$1" -gt "$2" ] || fail "$3: expected $1 > $2"
}

assert_contains() { # haystack needle message   (fixed string, case-sensitive)
  case "$1" in *"$2"*) ;; *) fail "$3: '$2' not found in: $1" ;; esac
}

assert_contains_ci() { # haystack needle message  (fixed string, ignoring case)
  grep -qiF -- "$2" <<<"$1" || fail "$3: '$2' not found (ignoring case) in: $1"
}

assert_not_contains() { # haystack needle message
  case "$1" in *"$2"*) fail "$3: '$2' unexpectedly present in: $1" ;; *) ;; esac
}

assert_file_has_line() { # file exact-line message
  [ -f "$1" ] || fail "$3: $1 does not exist"
  grep -qxF -- "$2" "$1" || { sed 's/^/  | /' "$1"; fail "$3: line not in $1: $2"; }
}

assert_file_lacks() { # file fixed-string message
  if [ -f "$1" ] && grep -qF -- "$2" "$1"; then
    sed 's/^/  | /' "$1"
    fail "$3: '$2' unexpectedly in $1"
  fi
}

# assert_lines_equal FILE EXPECTED-FILE MESSAGE: same lines, any order.
assert_lines_equal() {
  local got want
  got=$(sort "$1"); want=$(sort "$2")
  if [ "$got" != "$want" ]; then
    printf '  expected (sorted):\n'; sed 's/^/  < /' <<<"$want"
    printf '  got (sorted):\n'; sed 's/^/  > /' <<<"$got"
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/  diff: /' || true
    fail "$3"
  fi
}

assert_success() { # message cmd...
  local msg=$1; shift
  vmt_capture "$@"
  [ "$VMT_RC" -eq 0 ] || fail "$msg (exit $VMT_RC)"
}

assert_failure() { # message cmd...
  local msg=$1; shift
  vmt_capture "$@"
  [ "$VMT_RC" -ne 0 ] || fail "$msg (unexpectedly succeeded)"
}

# wait_for TIMEOUT_SECONDS DESCRIPTION cmd...: polls every 0.1 s.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || fail "timed out after ${timeout}s waiting for $what"
    sleep 0.1
  done
}

# ---------------------------------------------------------------- parts

# A scenario with independent checks runs each as a part: a failed assertion
# ends only that part (it runs in a subshell), the scenario carries on so one
# run shows every problem, and vmt_parts_end fails the scenario at the end.
VMT_PARTS_FAILED=()

vmt_part() { # NAME FUNCTION [ARGS...]
  local name=$1 rc; shift
  vmt_step "part: $name"
  set +e
  ( set -e; "$@" )
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    printf 'part ok: %s\n' "$name"
  else
    printf 'PART FAILED: %s\n' "$name"
    VMT_PARTS_FAILED+=("$name")
  fi
}

vmt_parts_end() {
  [ ${#VMT_PARTS_FAILED[@]} -eq 0 ] || fail "failed parts: $(printf '[%s] ' "${VMT_PARTS_FAILED[@]}")"
}

# ---------------------------------------------------------------- lifecycle

VMT_DEFERRED=()

# vmt_defer CMD: run CMD (a string, eval'd) at scenario exit, last in first out.
vmt_defer() { VMT_DEFERRED+=("$1"); }

vmt_begin() {
  VMT_NAME=${VMT_NAME:-$(basename "${0%.sh}")}
  VMT_WORK=$VMT_ROOT/$VMT_NAME
  mkdir -p "$VMT_WORK" "$VMT_STATE"
  [ -n "${EXPORTFS:-}" ] || fail "EXPORTFS/BIN_DIR not set"
  [ -x "$EXPORTFS" ] || fail "exportfs under test not executable: $EXPORTFS"
  set -o errtrace
  trap 'vmt_on_err $? "$BASH_COMMAND" $LINENO' ERR
  trap 'vmt_end $?' EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  vmt_note "scenario $VMT_NAME; exportfs under test: $EXPORTFS$(vmt_is_reference_exportfs && echo ' (Debian reference)')"
  vmt_assert_clean_state
}

vmt_end() {
  local rc=$1 i
  trap - EXIT TERM INT ERR
  set +e
  if [ "$rc" -ne 0 ]; then
    # Daemon logs explain most failures; show them before cleaning up.
    for f in "$VMT_WORK"/*.log; do
      [ -f "$f" ] || continue
      printf '\n--- tail of %s\n' "$f"; tail -n 25 "$f"
    done
  fi
  vmt_step "cleanup (exit $rc)"
  for (( i=${#VMT_DEFERRED[@]}-1; i>=0; i-- )); do
    eval "${VMT_DEFERRED[$i]}" || printf 'cleanup step failed: %s\n' "${VMT_DEFERRED[$i]}"
  done
  vmt_reset
  # Tells guest-main.sh that its safety-net reset is not needed.
  touch "$VMT_STATE/reset-done"
  exit "$rc"
}

# True when the exportfs under test is Debian's (harness development mode).
vmt_is_reference_exportfs() {
  [ "$(readlink -f "$EXPORTFS")" == "$(readlink -f "$REF_EXPORTFS")" ]
}

# The bridge path's private network namespace (rpc.nfsd --vsock makes it on
# kernels without an AF_VSOCK nfsd transport) and its nfsd filesystem.
VMT_BRIDGE_NS=/run/netns/nfs-vsock
VMT_BRIDGE_NFSD=/run/nfs-vsock/nfsd

# vmt_in_bridge_ns cmd...: run in the bridge's network namespace (its
# /proc/net/rpc caches, its nfsd's listener); the mount namespace stays.
vmt_in_bridge_ns() { nsenter "--net=$VMT_BRIDGE_NS" "$@"; }

# vmt_bridge_pid: the bridge rpc.nfsd started (its pid file: "PID [START]").
vmt_bridge_pid() { [ -f /run/nfs-vsock-bridge.pid ] && read -r p _ < /run/nfs-vsock-bridge.pid && echo "$p"; }

# vmt_stop_rpcnfsd_bridge: stop the bridge rpc.nfsd started (a scenario that
# wants its own options runs its own in the foreground instead; it joins the
# same namespace).
vmt_stop_rpcnfsd_bridge() {
  local pid
  pid=$(vmt_bridge_pid) || return 0
  kill "$pid" 2>/dev/null || return 0
  wait_for 10 "the bridge rpc.nfsd started (pid $pid) to stop" vmt_pid_gone "$pid"
}

# vmt_end_bridge_grace: end the grace period of the bridge's nfsd too
# (best effort; the kernel may refuse it there, rpc.nfsd -G 10 bounds it).
vmt_end_bridge_grace() {
  [ -e "$VMT_BRIDGE_NFSD/v4_end_grace" ] || return 0
  vmt_in_bridge_ns sh -c "echo Y > $VMT_BRIDGE_NFSD/v4_end_grace" 2>/dev/null || true
}

# A scenario must start from nothing: no exports, no server, no NFS mounts.
vmt_assert_clean_state() {
  local threads
  threads=$(cat /proc/fs/nfsd/threads 2>/dev/null || echo 0)
  [ "$threads" == 0 ] || fail "precondition: nfsd already running ($threads threads)"
  [ ! -e "$VMT_BRIDGE_NS" ] || fail "precondition: the bridge's namespace $VMT_BRIDGE_NS exists"
  [ ! -s "$NFS_STATE_DIR/etab" ] || fail "precondition: $NFS_STATE_DIR/etab not empty"
  [ -z "$(findmnt -rn -t nfs,nfs4 -o TARGET)" ] || fail "precondition: NFS mounts present"
}

# Undo everything any scenario may have set up. Idempotent; also run by
# guest-main.sh between scenarios as a safety net. Never fails.
vmt_reset() {
  local t pidf pid n errexit=
  case $- in *e*) errexit=1 ;; esac
  set +e
  # 1. NFS client mounts first (they would hang once the server is gone).
  for t in $(findmnt -rn -t nfs,nfs4 -o TARGET | sort -r); do
    timeout 10 umount -f "$t" 2>/dev/null || umount -l "$t"
  done
  # 2. The kernel server, the bridge rpc.nfsd started, the bridge's nfsd and
  #    its namespace.
  if [ "$(cat /proc/fs/nfsd/threads 2>/dev/null || echo 0)" != 0 ]; then
    timeout 20 "$REF_NFSD" 0 || echo 0 > /proc/fs/nfsd/threads
  fi
  if pid=$(vmt_bridge_pid); then kill "$pid" 2>/dev/null; rm -f /run/nfs-vsock-bridge.pid; fi
  if [ -e "$VMT_BRIDGE_NFSD/threads" ]; then
    echo 0 > "$VMT_BRIDGE_NFSD/threads"
    umount -l "$VMT_BRIDGE_NFSD"
  fi
  rm -f /run/nfs-vsock/guest-block /run/nfs-vsock-bridge.wanted
  # Each scenario reads only its own bridge's log (a wait for "forwarding"
  # must not be met by an earlier scenario's bridge).
  [ -e /var/log/nfs-vsock-bridge.log ] && : > /var/log/nfs-vsock-bridge.log
  # 3. Daemons we started (by pid file, never by name).
  for pidf in "$VMT_STATE"/*.pid; do
    [ -f "$pidf" ] || continue
    pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for n in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidf"
  done
  # 4. Export configuration, export table, kernel caches.
  : > /etc/exports
  rm -f /etc/exports.d/*.exports
  "$REF_EXPORTFS" -au >/dev/null 2>&1
  vmt_reset_nfs_state_dir
  vmt_flush_caches
  # 5. Client network namespaces (all of them exist only inside this VM).
  for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do ip netns del "$n"; done
  # 6. A /usr/sbin of symlinks (vmt_install_sbin_helper), then file systems
  #    under the scenario root (deepest first), then the files.
  if findmnt -rn -o SOURCE --mountpoint /usr/sbin 2>/dev/null | grep -q '^vmt-sbin'; then
    umount /usr/sbin || umount -l /usr/sbin
  fi
  for t in $(findmnt -rn -o TARGET | grep "^$VMT_ROOT/" | sort -r); do
    umount "$t" 2>/dev/null || umount -l "$t"
  done
  find "$VMT_ROOT" -mindepth 1 -maxdepth 1 ! -name .state -exec rm -rf {} + 2>/dev/null
  [ -z "$errexit" ] || set -e
  return 0
}

# Empty /var/lib/nfs the way a fresh install has it (etab and rmtab exist).
vmt_reset_nfs_state_dir() {
  rm -rf "${NFS_STATE_DIR:?}"/* "$NFS_STATE_DIR"/.[!.]* 2>/dev/null
  mkdir -p "$NFS_STATE_DIR/v4recovery" "$NFS_STATE_DIR/nfsdcltrack"
  : > "$NFS_STATE_DIR/etab"
  : > "$NFS_STATE_DIR/rmtab"
}

vmt_flush_caches() {
  local c
  for c in "${RPC_CACHES[@]}"; do
    [ -w "/proc/net/rpc/$c/flush" ] && echo "$(date +%s)" > "/proc/net/rpc/$c/flush"
  done
  return 0
}

# vmt_cache_content CACHE [bridge]: a cache's content in the host's
# namespace, or the bridge's.
vmt_cache_content() {
  if [ "${2:-}" == bridge ]; then vmt_in_bridge_ns cat "/proc/net/rpc/$1/content"; else cat "/proc/net/rpc/$1/content"; fi
}

# ---------------------------------------------------------------- file systems

# vmt_mk_ext4 MOUNTPOINT [SIZE]: a fresh ext4 on a loop-mounted image file.
vmt_mk_ext4() {
  local mnt=$1 size=${2:-32M} img
  img=$VMT_WORK/$(echo "${mnt#"$VMT_WORK"/}" | tr / _).img
  mkdir -p "$mnt"
  truncate -s "$size" "$img"
  mkfs.ext4 -q -F "$img"
  mount -o loop "$img" "$mnt"
}

# vmt_mk_tmpfs MOUNTPOINT
vmt_mk_tmpfs() {
  mkdir -p "$1"
  mount -t tmpfs -o mode=0755,size=16m vmt-tmpfs "$1"
}

# vmt_mk_v4root DIR: a tmpfs to export with fsid=0 as the NFSv4 root; put the
# real exports below it and mount them as <server>:/<path below DIR>.
# Why: without an fsid=0 export, mountd builds the NFSv4 pseudo-root from "/",
# and here "/" is 9p and /tmp an overlay; the kernel refuses both (EINVAL, even
# with NFSEXP_FSID), so every NFSv4 mount fails with "No such file or
# directory" and mountd logs "Cannot export /, possibly unsupported
# filesystem or fsid= required". A tmpfs is exportable once it has an fsid.
vmt_mk_v4root() { vmt_mk_tmpfs "$1"; }

# ---------------------------------------------------------------- exports

# vmt_write_exports < text: replaces /etc/exports and shows it in the log.
vmt_write_exports() {
  cat > /etc/exports
  printf -- '--- /etc/exports\n'; sed 's/^/  | /' /etc/exports
}

vmt_show_etab() {
  printf -- '--- %s/etab\n' "$NFS_STATE_DIR"; sed 's/^/  | /' "$NFS_STATE_DIR/etab"
}

# ---------------------------------------------------------------- servers

vmt_start_daemon() { # name logfile cmd...   (cmd must stay in the foreground)
  local name=$1 log=$2; shift 2
  printf '$ %s &   (log: %s)\n' "$*" "$log"
  "$@" >"$log" 2>&1 &
  echo $! > "$VMT_STATE/$name.pid"
}

vmt_pid() { cat "$VMT_STATE/$1.pid"; }

# vmt_pid_gone PID: true once PID has exited (a zombie nobody reaps counts
# as gone: it no longer runs).
vmt_pid_gone() {
  [ ! -e "/proc/$1" ] || grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# vmt_install_sbin_helper NAME TARGET: /usr/sbin/NAME (so /sbin/NAME on a
# merged /usr) runs TARGET for the rest of the scenario, so that mount(8)
# finds helpers like mount.vsock. /usr/sbin is the host's, shared read-only
# over 9p: a tmpfs holding a symlink to every original entry, plus NAME, is
# bound over it (the original stays reachable through a bind mount under
# $VMT_WORK). Undone at scenario exit (and by vmt_reset).
vmt_install_sbin_helper() {
  local name=$1 target=$2 orig=$VMT_WORK/sbin.orig farm=$VMT_WORK/sbin.farm
  if ! mountpoint -q "$farm"; then
    mkdir -p "$orig" "$farm"
    mount --bind /usr/sbin "$orig"
    mount -t tmpfs -o mode=0755 vmt-sbin "$farm"
    ln -s "$orig"/* "$farm/"   # one process: forks are slow under emulation
    mount --bind "$farm" /usr/sbin
    vmt_defer "umount /usr/sbin"
  fi
  ln -sfn "$target" "$farm/$name"
  printf '# /usr/sbin/%s -> %s (for this scenario)\n' "$name" "$target"
}

vmt_start_rpcbind() {
  vmt_start_daemon rpcbind "$VMT_WORK/rpcbind.log" rpcbind -f
  wait_for 10 "rpcbind to answer" rpcinfo -p 127.0.0.1
}

# vmt_start_ref_nfsd [rpc.nfsd args...]: Debian's rpc.nfsd, NFSv4 only by
# default, then end the grace period so new OPENs are not delayed 90 s.
vmt_start_ref_nfsd() {
  local args=("$@")
  [ ${#args[@]} -gt 0 ] || args=(-N 3 --no-udp 4)
  vmt_run "$REF_NFSD" "${args[@]}"
  [ "$(cat /proc/fs/nfsd/threads)" -gt 0 ] || fail "rpc.nfsd started no threads"
  printf '  versions: %s; listeners: %s\n' "$(cat /proc/fs/nfsd/versions)" \
    "$(tr '\n' ' ' < /proc/fs/nfsd/portlist)"
  echo Y > /proc/fs/nfsd/v4_end_grace || vmt_note "could not end the grace period"
}

# True once process PID holds the auth.unix.ip and nfsd.export channels open,
# i.e. a mountd is ready to answer the kernel's upcalls.
vmt_holds_channels() {
  local pid=$1 links
  links=$(ls -l "/proc/$pid/fd" 2>/dev/null) || return 1
  grep -q 'auth.unix.ip/channel' <<<"$links" && grep -q 'nfsd.export/channel' <<<"$links"
}

# vmt_start_ref_mountd [extra args...]: Debian's rpc.mountd in the foreground
# with upcall debugging into $VMT_WORK/mountd.log.
vmt_start_ref_mountd() {
  vmt_start_daemon mountd "$VMT_WORK/mountd.log" \
    "$REF_MOUNTD" -F -N 2 -N 3 --no-udp --debug all "$@"
  wait_for 10 "rpc.mountd to open the cache channels" vmt_holds_channels "$(vmt_pid mountd)"
}

# ---------------------------------------------------------------- clients

# Mount options for test mounts: one attempt (retry=0) and soft, so a broken
# server makes the test fail instead of hanging it.
VMT_NFS_OPTS=${VMT_NFS_OPTS:-vers=4.1,retry=0,soft,timeo=50,retrans=2}

# vmt_nfs_mount SERVER:PATH MOUNTPOINT [netns [hostname]]: captures output in
# $VMT_OUT, status in $VMT_RC (124 = the 30 s timeout hit). With a host name,
# the mount runs in a UTS namespace of its own with that name: the NFSv4
# client owner string, so that clients in different network namespaces of
# one host are different clients to the server.
vmt_nfs_mount() {
  local src=$1 mnt=$2 ns=${3:-} host=${4:-}
  mkdir -p "$mnt"
  if [ -n "$host" ]; then
    vmt_capture nsenter "--net=/run/netns/$ns" unshare --uts sh -c \
      'echo "$1" > /proc/sys/kernel/hostname && exec timeout 30 mount -t nfs -o "$2" "$3" "$4"' \
      sh "$host" "$VMT_NFS_OPTS" "$src" "$mnt"
  elif [ -n "$ns" ]; then
    vmt_capture nsenter "--net=/run/netns/$ns" timeout 30 mount -t nfs -o "$VMT_NFS_OPTS" "$src" "$mnt"
  else
    vmt_capture timeout 30 mount -t nfs -o "$VMT_NFS_OPTS" "$src" "$mnt"
  fi
}

vmt_umount() { vmt_run timeout 20 umount "$1"; }

# vmt_netns_create NAME HOST_CIDR CLIENT_CIDR: a client namespace joined to the
# root namespace by a veth pair; HOST_CIDR on the root side.
vmt_netns_create() {
  local ns=$1 host=$2 client=$3
  local vh="vh-$ns" vc="vc-$ns"
  vmt_run ip netns add "$ns"
  vmt_run ip link add "$vh" type veth peer name "$vc"
  vmt_run ip link set "$vc" netns "$ns"
  vmt_run ip addr add "$host" dev "$vh"
  vmt_run ip link set "$vh" up
  vmt_run ip -n "$ns" addr add "$client" dev "$vc"
  vmt_run ip -n "$ns" link set "$vc" up
  vmt_run ip -n "$ns" link set lo up
  ip link set lo up
}

# vmt_in_netns NAME cmd...: network namespace only; the mount namespace stays
# the global one, so mounts made here are visible (and undone) everywhere.
vmt_in_netns() { local ns=$1; shift; nsenter "--net=/run/netns/$ns" "$@"; }

# vmt_tcp_reachable NETNS ADDR PORT
vmt_tcp_reachable() {
  vmt_in_netns "$1" timeout 5 bash -c "exec 3<>/dev/tcp/$2/$3"
}

# ---------------------------------------------------------------- real guests
# shellcheck source=guests.sh
. "$(dirname "${BASH_SOURCE[0]}")/guests.sh"
