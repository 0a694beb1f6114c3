#!/usr/bin/env bash
# An exportfs killed between its etab rename and its cache flush (issue 16):
# the kernel's caches still grant what the new etab took away, for as long
# as their entries last. Our tools only (rpc.nfsd, mountd, exportfs), an
# NFSv4.1 client over loopback with attribute and lookup caching off:
#   1. the client reads the export;
#   2. with mountd stopped (SIGSTOP), etab is replaced by one without the
#      export, exactly as exportfs renames it, and nothing flushes: the
#      client still reads (the window);
#   3. mountd resumes: within its next reload it sees the export revoked,
#      flushes the caches and says so; the client loses access.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd

vmt_step "exports, the server, mountd"
R=$W/root
vmt_mk_v4root "$R"
vmt_mk_ext4 "$R/data"
echo "still granted" > "$R/data/f"
vmt_write_exports <<EOF
$R       127.0.0.1(ro,fsid=0,insecure)
$R/data  127.0.0.1(rw,no_root_squash,insecure)
EOF
vmt_run "$EXPORTFS" -ra
vmt_run "$NFSD" -N 3 -H 127.0.0.1 8
vmt_defer "$NFSD 0 >/dev/null 2>&1"
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3 -d all
mountd_pid=$(vmt_pid mountd)
wait_for 10 "mountd" vmt_holds_channels "$mountd_pid"
echo Y > /proc/fs/nfsd/v4_end_grace

vmt_step "1. the client reads the export"
VMT_NFS_OPTS="vers=4.1,retry=0,soft,timeo=30,retrans=1,actimeo=0,lookupcache=none" vmt_nfs_mount "127.0.0.1:/data" "$W/m"
assert_eq 0 "$VMT_RC" "the mount"
assert_eq "still granted" "$(timeout 10 cat "$W/m/f")" "read before"

vmt_step "2. etab without the export, renamed into place as exportfs does, no flush (mountd stopped)"
vmt_run kill -STOP "$mountd_pid"
vmt_defer "kill -CONT $mountd_pid 2>/dev/null || true"
grep -v "^$R/data	" /var/lib/nfs/etab > /var/lib/nfs/etab.new
assert_ne "$(cat /var/lib/nfs/etab)" "$(cat /var/lib/nfs/etab.new)" "the new etab lacks the export"
mv /var/lib/nfs/etab.new /var/lib/nfs/etab
sleep 3
echo 3 > /proc/sys/vm/drop_caches
assert_eq "still granted" "$(timeout 10 cat "$W/m/f")" "the window: the kernel's caches still grant the revoked export"

vmt_step "3. mountd resumes: it flushes what the new etab revoked"
vmt_run kill -CONT "$mountd_pid"
wait_for 10 "mountd to flush" grep -q "etab no longer grants 127.0.0.1:$R/data: flushed the kernel's export caches" "$W/mountd.log"
denied() { echo 3 > /proc/sys/vm/drop_caches; ! timeout 10 cat "$W/m/f" >/dev/null 2>&1; }
wait_for 15 "the client to lose access" denied
vmt_note "after the flush: $(timeout 10 cat "$W/m/f" 2>&1 | head -n 1)"
timeout 20 umount -f "$W/m" 2>/dev/null || umount -l "$W/m"
vmt_step "ok"
