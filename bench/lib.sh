# Shared by the bench/*-bench launchers (sourced, not run): the help text,
# usage errors, the binary check and, for the VM benchmarks, the one VM
# launch: a wrapper scenario that carries every setting into the VM, one
# integration/vm/run boot, the report and the summary.
#
# A launcher sets BENCH_NAME (e.g. mountd-bench) before sourcing this file.
# BENCH_DRY_RUN=1 in the environment stops bench_run_vm before the VM
# starts: it prints the wrapper scenario and the environment the run would
# get, and the launcher exits 0 (for checking that every option reaches the
# VM without booting one).

BENCH_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_REPO=$(cd "$BENCH_HERE/.." && pwd)

# The launcher's header comment, from line 2 to `set -euo`, as its --help.
bench_help() {
  sed -n '2,/^set -euo/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -euo/d'
}

bench_usage_error() { echo "$BENCH_NAME: $*" >&2; exit 2; }

# bench_need_binaries DIR HINT NAME... : each DIR/NAME must be executable.
bench_need_binaries() {
  local dir=$1 hint=$2 b
  shift 2
  for b in "$@"; do
    [[ -x $dir/$b ]] || bench_usage_error "$dir/$b is missing (build first: $hint)"
  done
}

# bench_prepare: a fresh work directory under bench/results/ (gitignored);
# sets BENCH_STAMP and BENCH_WORK.
bench_prepare() {
  BENCH_STAMP=$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "$BENCH_HERE/results"
  BENCH_WORK=$BENCH_HERE/results/$BENCH_NAME-$BENCH_STAMP-$$
  mkdir -p "$BENCH_WORK/scenario"
}

# bench_write_scenario FILE SCRIPT NAME=VALUE... : the VM sees the host's
# files (read-only) but not this environment, so a wrapper scenario
# $BENCH_WORK/scenario/FILE exports every setting, each quoted, and runs
# SCRIPT.
bench_write_scenario() {
  local file=$1 script=$2 kv
  shift 2
  {
    echo '#!/usr/bin/env bash'
    for kv in "$@"; do
      printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
    printf 'exec bash %q\n' "$script"
  } > "$BENCH_WORK/scenario/$file"
}

# bench_run_vm NAME=VALUE... : one integration/vm/run boot on the wrapper
# scenario with SCENARIO_DIR, BIN_DIR and the given variables in its
# environment, its output kept in $BENCH_WORK/run.out; sets BENCH_RUN_RC and
# BENCH_RUN_DIR (the run's results directory, empty if it named none).
bench_run_vm() {
  local vars=("SCENARIO_DIR=$BENCH_WORK/scenario" "BIN_DIR=$BIN_DIR" "$@")
  if [[ ${BENCH_DRY_RUN:-} == 1 ]]; then
    echo "$BENCH_NAME: dry run; the VM would run with:"
    printf '  %q\n' "${vars[@]}"
    local f
    for f in "$BENCH_WORK"/scenario/*; do
      echo "---- ${f#"$BENCH_REPO"/}"
      cat "$f"
    done
    exit 0
  fi
  set +e
  env "${vars[@]}" "$BENCH_REPO/integration/vm/run" 2>&1 | tee "$BENCH_WORK/run.out"
  BENCH_RUN_RC=${PIPESTATUS[0]}
  set -e
  BENCH_RUN_DIR=$(sed -n 's/^run: kernel .*, results \(.*\)$/\1/p' "$BENCH_WORK/run.out" | head -n 1)
}

# bench_report SUBDIR DESCRIBE : writes bench/results/$BENCH_NAME-$BENCH_STAMP.txt
# (a header line, then the VM's SUBDIR/summary.txt) and sets BENCH_REPORT;
# DESCRIBE=1 names the commit in the header. LOAD0 is the load average
# taken before the run.
bench_report() {
  local subdir=$1 describe=$2 version=
  if [[ $describe == 1 ]]; then
    version="; $(cd "$BENCH_REPO" && git describe --always --dirty 2>/dev/null || echo '?')"
  fi
  BENCH_REPORT=$BENCH_HERE/results/$BENCH_NAME-$BENCH_STAMP.txt
  {
    echo "$BENCH_NAME $BENCH_STAMP (VM run: ${BENCH_RUN_DIR:-none}, exit $BENCH_RUN_RC; host $(nproc) CPUs, load average before $LOAD0, after $(cut -d' ' -f1-3 /proc/loadavg)$version)"
    if [[ -n $BENCH_RUN_DIR && -s $BENCH_RUN_DIR/$subdir/summary.txt ]]; then
      cat "$BENCH_RUN_DIR/$subdir/summary.txt"
    fi
  } > "$BENCH_REPORT"
}

# bench_keep_logs SUBDIR FILE... : copies the VM's SUBDIR and the named
# files of its results directory (globs allowed) to $BENCH_WORK/vm.
bench_keep_logs() {
  local subdir=$1 files=() pattern
  shift
  if [[ -n $BENCH_RUN_DIR && -d $BENCH_RUN_DIR/$subdir ]]; then
    cp -r "$BENCH_RUN_DIR/$subdir" "$BENCH_WORK/vm"
    # shellcheck disable=SC2206 # the patterns are globs on purpose
    for pattern in "$@"; do files+=("$BENCH_RUN_DIR"/$pattern); done
    cp "${files[@]}" "$BENCH_WORK/vm/" 2>/dev/null || true
  fi
}

# bench_finish LOG RESULT_REGEX SHOW_PARTIAL : the summary. Without a line
# matching RESULT_REGEX in the report there is no result: the VM log's
# failure lines (and with SHOW_PARTIAL=1 what the report has), exit 3.
# Otherwise the report, and exit 1 if the VM run failed.
bench_finish() {
  local log=$1 regex=$2 partial=$3
  if ! grep -q "$regex" "$BENCH_REPORT"; then
    echo "$BENCH_NAME: no result (see ${BENCH_RUN_DIR:-the output above}/$log)" | tee -a "$BENCH_REPORT"
    if [[ -n $BENCH_RUN_DIR && -f $BENCH_RUN_DIR/$log ]]; then
      grep -E '^(ASSERTION FAILED|COMMAND FAILED|TIMEOUT)' "$BENCH_RUN_DIR/$log" || true
    fi
    [[ $partial != 1 ]] || sed -n '2,$p' "$BENCH_REPORT"
    exit 3
  fi
  cat "$BENCH_REPORT"
  echo "written: ${BENCH_REPORT#"$BENCH_REPO"/} (VM logs: ${BENCH_WORK#"$BENCH_REPO"/}/vm)"
  [[ $BENCH_RUN_RC == 0 ]] || exit 1
}
