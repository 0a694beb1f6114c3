#!/usr/bin/env bash
# The demo: our exportfs exports an ext4 directory to 127.0.0.1 and to the
# vsock guests, the kernel NFS server (Debian's rpc.nfsd and rpc.mountd until
# ours land) serves it, and an NFSv4.1 client mounts it, writes and reads.
# Every step is printed with its result and timing.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../../integration/vm/lib.sh}"
vmt_begin
W=$VMT_WORK

vmt_step "an ext4 filesystem to share"
vmt_mk_ext4 "$W/share"
echo "hello from the host" > "$W/share/hello.txt"

vmt_step "/etc/exports: an IP client and vsock guests side by side"
vmt_write_exports <<EOF2
$W/share   127.0.0.1(rw,no_root_squash)   vsock:3-99(rw)   vsock:*(ro)
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

vmt_step "mount 127.0.0.1:$W/share over NFSv4.1"
vmt_nfs_mount "127.0.0.1:$W/share" "$W/mnt"
grep " $W/mnt " /proc/mounts | sed 's/^/  /'
vmt_defer "umount $W/mnt"

vmt_step "read through the mount"
got=$(cat "$W/mnt/hello.txt")
[ "$got" = "hello from the host" ] || fail "read '$got'"
echo "  read: $got"

vmt_step "write through the mount, read on the host"
dd if=/dev/urandom of="$W/mnt/blob" bs=1M count=8 status=none
sync
cmp "$W/mnt/blob" "$W/share/blob" || fail "the file differs on the server"
echo "  8 MiB written through NFS, identical on the server: $(sha256sum < "$W/share/blob" | cut -c1-16)..."

vmt_step "the kernel's view (/proc/fs/nfsd/exports)"
sed 's/^/  /' /proc/fs/nfsd/exports

vmt_step "done"
