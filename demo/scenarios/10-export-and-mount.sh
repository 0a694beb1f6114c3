#!/usr/bin/env bash
# The demo, with this project's tools only, on Debian's stock kernel (no
# AF_VSOCK transport in its nfsd): export a directory to vsock guests,
# start the server with `rpc.nfsd --vsock 2049` (which brings up the bridge),
# answer upcalls with our mountd, and mount it "from a guest" with
# `mount -t vsock` over the vsock loopback transport (the local CID is 1,
# standing in for a guest: named explicitly, as vsock:* means guests only,
# CIDs 3 and up). The guests' nfsd runs in the bridge's own network
# namespace. Every step is printed with its result and time.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../../integration/vm/lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd HELPER=$BIN_DIR/mount.vsock
modprobe vsock_loopback

# The VM's own "/" is 9p and /tmp an overlay, neither exportable, so the
# NFSv4 root is an explicit fsid=0 tmpfs with the ext4 share mounted in it.
vmt_step "an ext4 filesystem to share, under an NFSv4 root"
vmt_mk_tmpfs "$W/root"
vmt_mk_ext4 "$W/root/share"
echo "hello from the host" > "$W/root/share/hello.txt"
SHARE=$W/root/share

vmt_step "/etc/exports: vsock guests (and an IP client) side by side"
vmt_write_exports <<EOF2
$W/root    vsock:*(ro,fsid=0,insecure)  vsock:1(ro,fsid=0,insecure)  127.0.0.1(ro,fsid=0)
$SHARE     vsock:1(rw,no_root_squash)   vsock:3-99(rw)   127.0.0.1(ro)
EOF2
vmt_step "exportfs -rav"
vmt_run "$EXPORTFS" -rav
vmt_step "exportfs -v"
vmt_run "$EXPORTFS" -v

vmt_step "rpc.nfsd -N 3 --vsock 2049 -H 127.0.0.1 8"
vmt_run "$NFSD" -N 3 --vsock 2049 -H 127.0.0.1 8
vmt_defer "[ ! -f /run/nfs-vsock-bridge.pid ] || kill \$(cut -d' ' -f1 /run/nfs-vsock-bridge.pid)"
vmt_run "$NFSD" status

vmt_step "rpc.mountd -F -N 3"
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
wait_for 10 "mountd to answer the guests' nfsd" grep -q "answering the vsock bridge's nfsd too" "$W/mountd.log"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true
vmt_end_bridge_grace

vmt_step "the guest side: mount -t vsock 1:/share (vsock CID 1, port 2049)"
mkdir -p "$W/mnt"
# As on a guest: mount(8) finds /sbin/mount.vsock (here a /usr/sbin of
# symlinks, the VM's own being the host's, read-only).
vmt_install_sbin_helper mount.vsock "$HELPER"
vmt_capture mount -v -t vsock 1:/share "$W/mnt"
[ "$VMT_RC" = 0 ] || fail "the vsock mount failed"
grep " $W/mnt " /proc/mounts | sed 's/^/  /'

vmt_step "read through the mount"
got=$(cat "$W/mnt/hello.txt")
[ "$got" = "hello from the host" ] || fail "read '$got'"
echo "  read: $got"

vmt_step "write 8 MiB through the mount, read on the host"
dd if=/dev/urandom of="$W/mnt/blob" bs=1M count=8 status=none
sync -f "$W/mnt/blob"
cmp "$W/mnt/blob" "$SHARE/blob" || fail "the file differs on the server"
echo "  identical on the server: $(sha256sum < "$SHARE/blob" | cut -c1-16)..."

vmt_step "who the guests' nfsd saw (in the bridge's namespace): the guest's CID, mapped to its loopback address"
vmt_in_bridge_ns grep "127.128" /proc/net/rpc/auth.unix.ip/content | sed 's/^/  auth.unix.ip: /'
sed 's/^/  /' "$VMT_BRIDGE_NFSD/exports"
vmt_step "the host's own nfsd never saw the guest"
if grep "127.128" /proc/net/rpc/auth.unix.ip/content; then fail "the host's nfsd knows a guest address"; fi
echo "  (no 127.128.x.x entry)"

vmt_step "umount (the relay exits with the mount)"
umount "$W/mnt"
vmt_step "rpc.nfsd 0"
vmt_run "$NFSD" 0
vmt_step "done"
