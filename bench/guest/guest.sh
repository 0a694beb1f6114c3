#!/bin/sh
# Runs inside the nested guest (busybox sh) of bench/guest-bench, as
# /guest.sh of integration/vm/guests.sh's initramfs, with /gb.conf (the
# settings and one "row NAME KIND OPTIONS" line per row), /bin/gbench and
# /tree.tar beside it. Prints "@@gb ..." result lines (gbench) and
# "@@mount ..." lines (each row's mount as /proc/mounts shows it) on the
# console; the outer VM reads them from there.
#
# Every mount is timed too (step mount-GROUP; round 0: the first mount).
# Per round, for each workload group (seq: write, read, random reads of
# one file; meta: 1 then 4 workers; tree: untar, find, rm -rf), every row
# mounts, runs the group and unmounts in the round's order: the rows are
# measured one at a time (two NFSv4.1 mounts of one server would be merged
# into one client by trunking detection), and within minutes of each other.
# Odd rounds take the rows in a rotating order, even rounds in the reverse
# of the round before, so each pair of rows swaps places from one round to
# the next. Caches are dropped (guest, then the outer VM through the agent)
# before every timed step.
set -u
. /gb.conf
M=/mnt/t
mkdir -p $M
export GB_AGENT_PORT

ROWS=$(awk '$1 == "row" { print $2 }' /gb.conf)
kind() { awk -v r="$1" '$1 == "row" && $2 == r { print $3 }' /gb.conf; }
opts() { awk -v r="$1" '$1 == "row" && $2 == r { print $4 }' /gb.conf; }

drop() {
  sync
  echo 3 > /proc/sys/vm/drop_caches
  gbench host drop > /dev/null || echo "@@warn r=$round drop in the outer VM failed"
}

net_up() {
  ip link set eth0 up && ip addr add "$NET_GUEST/24" dev eth0
}

CRELAY_PORT=2050
crelay_up=
do_mount() { # ROW NAME: the mount, timed as step NAME
  local o
  o=$(opts "$1")
  case $(kind "$1") in
    vsock) gbench run "$2" mount.vsock "2:$EXPORT" $M -o "$o" ;;
    net) gbench run "$2" mount -t nfs4 -o "$o,addr=$NET_HOST,clientaddr=$NET_GUEST" "$NET_HOST:$EXPORT" $M ;;
    crelay)
      # The same bridge path through gbench's minimal relay instead of
      # mount.vsock's: it runs for the rest of the boot.
      if [ -z "$crelay_up" ]; then
        ip link set lo up
        gbench relay $CRELAY_PORT 2 2049 &
        crelay_up=1
        sleep 1
      fi
      gbench run "$2" mount -t nfs4 -o "$o,port=$CRELAY_PORT,addr=127.0.0.1,clientaddr=127.0.0.1" "127.0.0.1:$EXPORT" $M ;;
    virtiofs) gbench run "$2" mount -t virtiofs -o "$o" "$VIRTIOFS_TAG" $M ;;
    9p) gbench run "$2" mount -t 9p -o "$o" "$P9_TAG" $M ;;
    *) echo "@@warn unknown row kind $1"; return 1 ;;
  esac
}

do_umount() {
  umount $M || { sleep 2; umount $M; } || umount -l $M
}

# order ROUND: the rows in that round's order
order() {
  local r=$1 list n k i rev=
  list=$ROWS
  n=$(echo $list | wc -w)
  if [ $((r % 2)) = 0 ]; then
    for x in $(order $((r - 1))); do rev="$x $rev"; done
    echo "$rev"
    return
  fi
  k=$(( (r - 1) / 2 % n ))
  i=0
  for x in $list; do [ $i -ge $k ] && printf '%s ' "$x"; i=$((i + 1)); done
  i=0
  for x in $list; do [ $i -lt $k ] && printf '%s ' "$x"; i=$((i + 1)); done
}

group() { # GROUP ROW ROUND
  local g=$1 row=$2 r=$3
  export GB_TAG="r=$r t=$row"
  case $g in
    seq)
      drop; gbench seqwrite $M/gb-seq "$MIB" "$BS_KIB"
      drop; gbench seqread $M/gb-seq "$BS_KIB"
      drop; gbench randread $M/gb-seq "$RAND_COUNT" "$r"
      rm -f $M/gb-seq ;;
    meta)
      drop; gbench meta $M/gb-meta "$FILES" 1
      drop; gbench meta $M/gb-meta "$FILES" 4 ;;
    tree)
      rm -rf $M/gb-tree; mkdir $M/gb-tree
      drop; gbench run untar tar -xf /tree.tar -C $M/gb-tree
      drop; gbench run find find $M/gb-tree
      drop; gbench run rm rm -rf $M/gb-tree ;;
  esac
}

echo "@@info kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPU(s), $(awk '/MemTotal/ { print $2 }' /proc/meminfo) kB, clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
gbench host ping > /dev/null || { echo "@@fail the outer VM's agent does not answer"; exit 1; }
net_up || { echo "@@fail eth0 could not be configured"; exit 1; }

# Untimed: every row mounts, writes and reads a little first.
for row in $ROWS; do
  t0=$(date +%s)
  export GB_TAG="r=0 t=$row"
  if ! do_mount "$row" mount; then echo "@@fail $row: mount failed"; exit 1; fi
  echo "@@mount t=$row $(grep " $M " /proc/mounts)"
  dd if=/dev/zero of=$M/gb-warm bs=1M count=4 2>/dev/null && sync && cat $M/gb-warm > /dev/null && rm -f $M/gb-warm \
    || { echo "@@fail $row: warm-up I/O failed"; exit 1; }
  do_umount
  echo "@@info warm-up $row $(( $(date +%s) - t0 )) s"
done

for round in $(seq 1 "$ROUNDS"); do
  o=$(order "$round")
  echo "@@round $round $o"
  for g in $GROUPS; do
    for row in $o; do
      export GB_TAG="r=$round t=$row"
      if ! do_mount "$row" "mount-$g"; then echo "@@warn r=$round $row: mount failed"; continue; fi
      group "$g" "$row" "$round" || echo "@@warn r=$round $row: $g failed"
      do_umount
    done
  done
done
echo "@@done"
