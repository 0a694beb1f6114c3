#!/usr/bin/env bash
# Runs inside the VM (started by integration/vm/run): prepares the kernel NFS
# server environment once, then runs each scenario in its own bash process with
# a timeout, logs it to $RESULTS_DIR/<name>.log, prints PASS/FAIL per scenario
# and ends with the line "N passed, N failed".
#
# Usage: guest-main.sh [--env-file FILE] [SCENARIO...]
# Environment:
#   BIN_DIR           directory holding our binaries (required unless EXPORTFS)
#   EXPORTFS          exportfs under test (default $BIN_DIR/exportfs)
#   SCENARIO_DIR      where the *.sh scenarios are (default: ./scenarios here)
#   SCENARIOS         names to run, space/comma separated (default: all);
#                     "10", "10-exportfs-kernel" and "10-exportfs-kernel.sh" all work
#   SCENARIO_TIMEOUT  seconds per scenario (default 180; a scenario's own
#                     "# vmt-timeout: N" line may raise it)
#   RESULTS_DIR       where logs go (default /tmp/vmtest-results)
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "${1:-}" == "--env-file" ]; then
  # shellcheck disable=SC1090
  . "$2"
  shift 2
fi

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export VMT_LIB=$HERE/lib.sh
export SCENARIO_DIR=${SCENARIO_DIR:-$HERE/scenarios}
export RESULTS_DIR=${RESULTS_DIR:-/tmp/vmtest-results}
export SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-180}
export BIN_DIR=${BIN_DIR:-}
export EXPORTFS=${EXPORTFS:-${BIN_DIR:+$BIN_DIR/exportfs}}
# shellcheck source=lib.sh
. "$VMT_LIB"

mkdir -p "$RESULTS_DIR"

# ------------------------------------------------------------- selection
all=()
for f in "$SCENARIO_DIR"/*.sh; do [ -f "$f" ] && all+=("$f"); done
wanted=("$@")
if [ ${#wanted[@]} -eq 0 ] && [ -n "${SCENARIOS:-}" ]; then
  read -r -a wanted <<<"${SCENARIOS//,/ }"
fi
selected=()   # paths, or "missing:<name>" for names that match nothing
if [ ${#wanted[@]} -eq 0 ]; then
  selected=("${all[@]}")
else
  for w in "${wanted[@]}"; do
    w=${w%.sh}; hit=
    for f in "${all[@]}"; do
      n=$(basename "$f" .sh)
      if [ "$n" == "$w" ] || [[ "$n" == "$w"-* ]]; then hit=$f; break; fi
    done
    selected+=("${hit:-missing:$w}")
  done
fi

# ------------------------------------------------------------- one-time setup
setup_log=$RESULTS_DIR/setup.log
setup() {
  set -e
  dmesg -n 1                                  # keep kernel chatter off the console
  modprobe nfsd
  modprobe vsock_loopback
  modprobe loop
  mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
  # A private, empty /var/lib/nfs (the overlay would show the host's files).
  mountpoint -q "$NFS_STATE_DIR" || mount -t tmpfs -o mode=0755 vmt-nfs-state "$NFS_STATE_DIR"
  vmt_reset_nfs_state_dir
  # /etc is a writable overlay under virtme-ng; start from neutral config.
  : > /etc/exports || { echo "/etc/exports is not writable"; return 1; }
  mkdir -p /etc/exports.d /etc/nfs.conf.d
  rm -f /etc/exports.d/* /etc/nfs.conf.d/*
  : > /etc/nfs.conf
  mkdir -p "$VMT_ROOT" "$VMT_STATE"
  # The user nfs-vsock-bridge runs as when rpc.nfsd starts it (make install
  # documents it; /etc is the VM's overlay).
  # (useradd cannot write /etc/shadow on virtme's overlay: add the lines.)
  if ! id nfs-vsock-bridge >/dev/null 2>&1; then
    local id=990
    while getent passwd "$id" >/dev/null || getent group "$id" >/dev/null; do id=$((id - 1)); done
    echo "nfs-vsock-bridge:x:$id:" >> /etc/group
    echo "nfs-vsock-bridge:x:$id:$id:nfs-vsock-bridge:/nonexistent:/usr/sbin/nologin" >> /etc/passwd
  fi
  [ -n "$EXPORTFS" ] || { echo "BIN_DIR (or EXPORTFS) is not set"; return 1; }
  [ -x "$EXPORTFS" ] || { echo "exportfs under test is missing: $EXPORTFS"; return 1; }
  for t in "$REF_EXPORTFS" "$REF_NFSD" "$REF_MOUNTD" rpcbind rpcinfo mount.nfs mkfs.ext4 nsenter ip; do
    command -v "$t" >/dev/null || { echo "missing tool in the VM: $t"; return 1; }
  done
  echo "kernel $(uname -r); exportfs under test: $EXPORTFS"
  ls -l "$EXPORTFS"
}

read -r up _ < /proc/uptime
echo "vm: up after ${up}s, kernel $(uname -r), ${#selected[@]} scenario(s), exportfs: ${EXPORTFS:-<unset>}"
# Not "( setup ) || ...": set -e would be ignored inside.
( setup ) > "$setup_log" 2>&1
if [ $? == 0 ]; then setup_ok=1; else setup_ok=0; fi
if [ "$setup_ok" == 0 ]; then
  echo "vm: SETUP FAILED (log: $setup_log):"
  tail -n 20 "$setup_log" | sed 's/^/  | /'
fi

# ------------------------------------------------------------- scenarios
passed=0; failed=0
summary=$RESULTS_DIR/summary.txt
: > "$summary"
for s in "${selected[@]}"; do
  if [[ "$s" == missing:* ]]; then
    name=${s#missing:}
    echo "FAIL $name (no such scenario in $SCENARIO_DIR)"
    echo "FAIL $name 0 no-such-scenario" >> "$summary"
    failed=$((failed + 1)); continue
  fi
  name=$(basename "$s" .sh)
  log=$RESULTS_DIR/$name.log
  if [ "$setup_ok" == 0 ]; then
    echo "FAIL $name (setup failed)"; echo "FAIL $name 0 setup-failed" >> "$summary"
    failed=$((failed + 1)); continue
  fi
  rm -f "$VMT_STATE/reset-done"
  t0=$(date +%s%N)
  # A scenario known to need longer (nested guests) says so in a line
  # "# vmt-timeout: SECONDS"; it only ever raises SCENARIO_TIMEOUT.
  limit=$(sed -n 's/^# vmt-timeout: \([0-9][0-9]*\)$/\1/p' "$s" | head -n 1)
  [ -n "$limit" ] && [ "$limit" -gt "$SCENARIO_TIMEOUT" ] || limit=$SCENARIO_TIMEOUT
  ( cd / && VMT_NAME=$name exec timeout -k 10 "$limit" bash "$s" ) > "$log" 2>&1 < /dev/null
  rc=$?
  t1=$(date +%s%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  if [ "$rc" == 124 ] || [ "$rc" == 137 ]; then
    echo "TIMEOUT: scenario killed after ${limit}s" >> "$log"
  fi
  # Safety net: whatever the scenario left behind must not leak into the
  # next. Skipped when the scenario's own EXIT trap already ran vmt_reset.
  if [ -e "$VMT_STATE/reset-done" ]; then
    rm -f "$VMT_STATE/reset-done"
  else
    { vmt_step "harness reset"; vmt_reset; vmt_step "reset done"; } >> "$log" 2>&1
  fi
  if [ "$rc" == 0 ]; then
    echo "PASS $name (${secs}s)"
    echo "PASS $name $secs" >> "$summary"
    passed=$((passed + 1))
  else
    echo "FAIL $name (${secs}s, exit $rc, log: $log)"
    grep -E '^(ASSERTION FAILED|COMMAND FAILED|PART FAILED|TIMEOUT)' "$log" | sed 's/^/  ! /'
    echo "  ... last lines of the log:"
    tail -n 30 "$log" | sed 's/^/  | /'
    echo "FAIL $name $secs exit=$rc" >> "$summary"
    failed=$((failed + 1))
  fi
done

dmesg > "$RESULTS_DIR/dmesg.log" 2>&1
read -r up _ < /proc/uptime
echo "vm: done at ${up}s uptime"
echo "$passed passed, $failed failed" | tee -a "$summary"
[ "$failed" == 0 ] && [ "$passed" -gt 0 ]
