#!/usr/bin/env bash
# The demo: our exportfs exports an ext4 directory to 127.0.0.1 and to the
# vsock guests, the kernel NFS server (Debian's rpc.nfsd and rpc.mountd until
# ours land) serves it, and an NFSv4.1 client mounts it, writes and reads.
# Every step is printed with its result and timing.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../../integration/vm/lib.sh}"
vmt_begin
W=$VMT_WORK
SHARE=$W/root/share

# The VM's own "/" is 9p and /tmp an overlay, neither exportable, so the
# NFSv4 root is an explicit fsid=0 tmpfs with the ext4 share mounted in it;
# clients mount <server>:/share.
vmt_step "an ext4 filesystem to share, under an NFSv4 root"
vmt_mk_tmpfs "$W/root"
vmt_mk_ext4 "$W/root/share"
echo "hello from the host" > "$W/root/share/hello.txt"

vmt_step "/etc/exports: an IP client and vsock guests side by side"
vmt_write_exports <<EOF2
$W/root         127.0.0.1(ro,fsid=0)  vsock:*(ro,fsid=0)
$W/root/share   127.0.0.1(rw,no_root_squash)   vsock:3-99(rw)   vsock:*(ro)
EOF2

vmt_step "our exportfs -rav (writes /var/lib/nfs/etab, flushes the kernel caches)"
vmt_run "$EXPORTFS" -rav
vmt_step "our exportfs -v"
vmt_run "$EXPORTFS" -v
vmt_step "our exportfs --json"
vmt_run "$EXPORTFS" --json

vmt_step "the kernel NFS server: rpc.nfsd -N 3 (NFSv4 only) and rpc.mountd"
vmt_start_ref_nfsd
vmt_start_ref_mountd

vmt_step "mount 127.0.0.1:/share over NFSv4.1"
vmt_nfs_mount "127.0.0.1:/share" "$W/mnt"
[ "$VMT_RC" = 0 ] || fail "the NFSv4.1 mount failed"
grep " $W/mnt " /proc/mounts | sed 's/^/  /'
vmt_defer "umount $W/mnt"

vmt_step "read through the mount"
got=$(cat "$W/mnt/hello.txt")
[ "$got" = "hello from the host" ] || fail "read '$got'"
echo "  read: $got"

vmt_step "write through the mount, read on the host"
dd if=/dev/urandom of="$W/mnt/blob" bs=1M count=8 status=none
sync
cmp "$W/mnt/blob" "$SHARE/blob" || fail "the file differs on the server"
echo "  8 MiB written through NFS, identical on the server: $(sha256sum < "$SHARE/blob" | cut -c1-16)..."

vmt_step "the kernel's view (/proc/fs/nfsd/exports)"
sed 's/^/  /' /proc/fs/nfsd/exports

vmt_step "done"
