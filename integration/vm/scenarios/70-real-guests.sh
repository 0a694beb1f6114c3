#!/usr/bin/env bash
# Real guests: two nested VMs (QEMU with vhost-vsock, CIDs 3 and 4, Debian's
# kernel, an initramfs with busybox and the static mount.vsock only) mount
# their exports from this host at the same time, through rpc.nfsd --vsock
# 2049's bridge and our mountd:
#   1. each guest mounts 2:/vm<CID> with mount.vsock although its loopback
#      is down, reads the host's token, writes a file the host reads back;
#   2. each sees neither the other's export (mount -t vsock 2:/vm<other>
#      through busybox mount(8) finding the helper) nor any path to it under
#      its NFSv4 root (its root lists only its own exports);
#   3. a secure export (the default) works from the guest's root: its
#      kernel's connection gets a privileged vsock port;
#   4. nfsd-control status lists both guests by CID and address;
#   5. guest 3 copies 16 MiB while the host kills the bridge (SIGKILL) and
#      starts it again: the copy completes and the checksums are equal.
# Two nested boots, a third if a guest's kernel panics and is booted again:
# vmt-timeout: 1500
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd BRIDGE=$BIN_DIR/nfs-vsock-bridge
COPY_MIB=${COPY_MIB:-16}
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
modprobe vhost_vsock
[ -e /dev/vhost-vsock ] || fail "no /dev/vhost-vsock"

vmt_step "exports: an NFSv4 root per guest, its data and a secure export under it"
for cid in 3 4; do
  r=$W/r$cid
  vmt_mk_v4root "$r"
  vmt_mk_ext4 "$r/vm$cid" 64M
  vmt_mk_ext4 "$r/sec$cid"
  echo "vm$cid $token" > "$r/vm$cid/token"
  echo wait > "$r/vm$cid/hold"
done
vmt_write_exports <<EOF2
$W/r3       vsock:3(ro,fsid=0,insecure)
$W/r3/vm3   vsock:3(rw,no_root_squash,insecure)
$W/r3/sec3  vsock:3(rw,no_root_squash)
$W/r4       vsock:4(ro,fsid=0,insecure)
$W/r4/vm4   vsock:4(rw,no_root_squash,insecure)
$W/r4/sec4  vsock:4(rw,no_root_squash)
EOF2
vmt_run "$EXPORTFS" -ra

vmt_step "the server: mountd, rpc.nfsd -N 3 --vsock 2049 (the bridge and the guests' nfsd)"
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
vmt_run "$NFSD" -N 3 -G 10 --vsock 2049 4
wait_for 10 "mountd to answer the bridge's nfsd" grep -q "answering the vsock bridge's nfsd too" "$W/mountd.log"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true
vmt_end_bridge_grace

vmt_step "the guests' script"
for cid in 3 4; do
  other=$(( cid == 3 ? 4 : 3 ))
  cat > "$W/guest$cid.sh" <<EOF2
#!/bin/sh
res() { echo "@@result \$1 \$2"; }
res lo-before "\$(cat /sys/class/net/lo/operstate)"
mkdir -p /mnt/own /mnt/other /mnt/root /mnt/sec
if mount.vsock -v 2:/vm$cid /mnt/own; then res mount ok; else res mount "failed \$?"; fi
res lo-after "\$(cat /sys/class/net/lo/operstate)"
res token "\$(cat /mnt/own/token)"
echo "written by guest $cid $token" > /mnt/own/from-guest && sync && res written ok
# The host checks nfsd-control status while both guests hold their mount,
# then writes "go" into hold (a guest whose boot was retried after a panic
# can start minutes after the other). Each open revalidates the file
# (close-to-open), so the change is seen within a second; 600 s at most.
n=0
while [ "\$(cat /mnt/own/hold)" = wait ] && [ \$n -lt 600 ]; do sleep 1; n=\$((n + 1)); done
res held "\$n s"
if mount -t vsock 2:/vm$other /mnt/other 2>/tmp/err; then res other "MOUNTED \$(ls /mnt/other | tr '\n' ' ')"; umount /mnt/other; else res other "refused: \$(grep mount.vsock /tmp/err | tail -n 1)"; fi
if mount -t vsock 2:/ /mnt/root; then res root "\$(ls /mnt/root | tr '\n' ' ')"; umount /mnt/root; else res root failed; fi
if mount -t vsock 2:/sec$cid /mnt/sec && echo secure > /mnt/sec/x && sync; then res secure "\$(cat /mnt/sec/x)"; umount /mnt/sec; else res secure failed; fi
if [ $cid = 3 ]; then
  dd if=/dev/urandom of=/tmp/big bs=1M count=$COPY_MIB 2>/dev/null
  res big-md5 "\$(md5sum /tmp/big | cut -d' ' -f1)"
  echo "@@copy-start"
  if cp /tmp/big /mnt/own/big && sync; then res copy ok; else res copy "failed \$?"; fi
fi
umount /mnt/own
res done ok
EOF2
done

vmt_step "boot guests 3 and 4 (nested QEMU, software emulation)"
t0=$(date +%s)
vmt_guest_start g3 3 "$W/guest3.sh"
vmt_guest_start g4 4 "$W/guest4.sh"
vmt_guest_started g3 3 "$W/guest3.sh" 600
vmt_guest_started g4 4 "$W/guest4.sh" 600
vmt_note "both guests' init ran $(( $(date +%s) - t0 )) s after start (guest 3's at $(tr -d '\r' < "$(vmt_guest_console g3)" | sed -n 's/^@@guest-start //p') s of its uptime)"

vmt_step "4. while both hold their mount: nfsd-control status lists guests 3 and 4"
vmt_guest_wait_for g3 180 '^@@result mount '
vmt_guest_wait_for g4 180 '^@@result mount '
vmt_guest_wait_for g3 60 '^@@result written '
vmt_guest_wait_for g4 60 '^@@result written '
vmt_capture "$NFSD" status
printf '%s\n' "$VMT_OUT" | grep -qE '^    3 +127\.128\.0\.3 +[1-9]' || fail "status lists no open connection for guest 3"
printf '%s\n' "$VMT_OUT" | grep -qE '^    4 +127\.128\.0\.4 +[1-9]' || fail "status lists no open connection for guest 4"
for cid in 3 4; do echo go > "$W/r$cid/vm$cid/hold"; done

vmt_step "5. kill the bridge during guest 3's copy, start it again"
vmt_guest_wait_for g3 240 '^@@copy-start'
wait_for 120 "guest 3's copy to reach the server" sh -c "[ -s '$W/r3/vm3/big' ]"
bridge_pid=$(vmt_bridge_pid)
vmt_note "bridge killed with $(stat -c %s "$W/r3/vm3/big") bytes on the server"
vmt_run kill -9 "$bridge_pid"
sleep 2
vmt_start_daemon bridge "$W/bridge.log" "$BRIDGE" --vsock 2049 -d
wait_for 10 "the new bridge" grep -q forwarding "$W/bridge.log"

vmt_step "the guests' results"
vmt_guest_wait g3 600
rc3=$VMT_GUEST_RC
vmt_guest_wait g4 300
rc4=$VMT_GUEST_RC
vmt_note "guests done $(( $(date +%s) - t0 )) s after start"
check_guest() { # CID
  local cid=$1 g=g$1 other=$(( $1 == 3 ? 4 : 3 ))
  assert_eq 0 "$([ "$cid" = 3 ] && echo "$rc3" || echo "$rc4")" "guest $cid's script"
  assert_eq down "$(vmt_guest_result "$g" lo-before)" "guest $cid booted with its loopback down"
  assert_ne down "$(vmt_guest_result "$g" lo-after)" "mount.vsock brought guest $cid's loopback up"
  assert_eq ok "$(vmt_guest_result "$g" mount)" "1. guest $cid mounted 2:/vm$cid with mount.vsock"
  assert_eq "vm$cid $token" "$(vmt_guest_result "$g" token)" "1. guest $cid reads its export"
  assert_eq "written by guest $cid $token" "$(cat "$W/r$cid/vm$cid/from-guest")" "1. the host reads what guest $cid wrote"
  assert_contains "$(vmt_guest_result "$g" other)" "refused: mount.vsock: the host has no export /vm$other for this guest" "2. guest $cid mounting guest $other's export (mount -t vsock, busybox finding the helper)"
  assert_eq "sec$cid vm$cid " "$(vmt_guest_result "$g" root)" "2. guest $cid's NFSv4 root lists only its own exports"
  assert_eq secure "$(vmt_guest_result "$g" secure)" "3. guest $cid writes to its secure export"
  assert_eq secure "$(cat "$W/r$cid/sec$cid/x")" "3. the host reads guest $cid's secure write"
  assert_eq ok "$(vmt_guest_result "$g" done)" "guest $cid unmounted"
}
vmt_part "guest 3" check_guest 3
vmt_part "guest 4" check_guest 4
copy() {
  assert_eq ok "$(vmt_guest_result g3 copy)" "5. guest 3's copy across the bridge restart"
  assert_eq "$(vmt_guest_result g3 big-md5)" "$(md5sum < "$W/r3/vm3/big" | cut -d' ' -f1)" "5. the server's copy has the guest's checksum"
  assert_eq $((COPY_MIB * 1024 * 1024)) "$(stat -c %s "$W/r3/vm3/big")" "5. the server's copy has the whole size"
  grep -q "vsock:3:[0-9]* connected as 127.128.0.3 (privileged port)" "$W/bridge.log" || fail "guest 3 did not come back through the new bridge from a privileged port"
}
vmt_part "5. the copy across the bridge restart" copy
grep -E "vsock:(3|4):" /var/log/nfs-vsock-bridge.log | head -n 6 | sed 's/^/  bridge | /'
vmt_parts_end
vmt_step "ok"
