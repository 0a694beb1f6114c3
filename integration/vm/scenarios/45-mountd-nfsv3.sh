#!/usr/bin/env bash
# NFSv3 through our MOUNT service (our exportfs, nfsd-control and mountd;
# Debian's rpcbind, mount.nfs and showmount as peers):
#   1. mountd registers MOUNT v3 with rpcbind;
#   2. showmount -e lists exactly our exports, with their clients;
#   3. an NFSv3 mount reads and writes; showmount -a lists it (rmtab);
#   4. a path not exported to the client is refused ("access denied");
#   5. a secure export refuses a MOUNT call from an unprivileged port
#      (mount -o noresvport is not enough: the MNT call port is checked);
#   6. umount removes the rmtab entry; stopping mountd unregisters MOUNT.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

vmt_step "exports"
vmt_mk_ext4 "$W/v3"
vmt_mk_ext4 "$W/other"
vmt_mk_ext4 "$W/guests"
vmt_write_exports <<EOF2
$W/v3      127.0.0.1(rw,no_root_squash,insecure)
$W/other   10.99.45.9(rw)
$W/guests  vsock:*(ro)
EOF2
vmt_run "$EXPORTFS" -ra

vmt_step "1. rpcbind, our nfsd (v3 and v4) and our mountd with MOUNT"
vmt_start_rpcbind
vmt_run "$NFSD" 8
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -d all
wait_for 10 "our mountd to open the cache channels" vmt_holds_channels "$(vmt_pid mountd)"
wait_for 10 "MOUNT v3 in rpcbind" sh -c 'rpcinfo -p 127.0.0.1 | grep -q " 3 .*tcp.*mountd\|100005 *3 *tcp"'
rpcinfo -p 127.0.0.1 | sed 's/^/  /'

vmt_step "2. showmount -e lists exactly our exports"
vmt_capture timeout 20 showmount -e 127.0.0.1
[ "$VMT_RC" = 0 ] || fail "showmount -e failed"
listed=$(sed 1d <<<"$VMT_OUT" | awk '{print $1 " " $2}' | sort)
expected=$(printf '%s\n' "$W/guests vsock:*" "$W/other 10.99.45.9" "$W/v3 127.0.0.1" | sort)
assert_eq "$expected" "$listed" "showmount -e"

vmt_step "3. NFSv3 mount reads and writes"
VMT_NFS_OPTS=vers=3,nolock,proto=tcp,retry=0,soft,timeo=50,retrans=2 vmt_nfs_mount "127.0.0.1:$W/v3" "$W/m3"
[ "$VMT_RC" = 0 ] || fail "NFSv3 mount failed"
findmnt -rn -o OPTIONS "$W/m3" | grep -q "vers=3" || fail "not an NFSv3 mount"
echo "v3 $token" > "$W/m3/file"
timeout 20 sync -f "$W/m3/file"
assert_eq "v3 $token" "$(cat "$W/v3/file")" "written over NFSv3"
vmt_capture timeout 20 showmount -a 127.0.0.1
assert_contains "$VMT_OUT" "127.0.0.1:$W/v3" "showmount -a lists the mount"

vmt_step "4. a path not exported to 127.0.0.1 is refused"
VMT_NFS_OPTS=vers=3,nolock,proto=tcp,retry=0,soft,timeo=50,retrans=2 vmt_nfs_mount "127.0.0.1:$W/other" "$W/m-other"
[ "$VMT_RC" != 0 ] || fail "mounted $W/other"
assert_contains_ci "$VMT_OUT" "access denied" "refusal of $W/other"

vmt_step "5. secure: a MOUNT call from an unprivileged port is refused"
vmt_write_exports <<EOF2
$W/v3      127.0.0.1(rw,no_root_squash,secure)
EOF2
vmt_run "$EXPORTFS" -ra
status=$(python3 "$(dirname "$VMT_LIB")/mnt-call.py" 127.0.0.1 "$W/v3")
vmt_note "MNT from an unprivileged port -> mountstat3 $status"
assert_eq 13 "$status" "MNT from an unprivileged port to a secure export"
grep -q "illegal port" "$W/mountd.log" || fail "mountd did not log the illegal port"

vmt_step "6. umount removes the rmtab entry; stopping mountd unregisters"
vmt_umount "$W/m3"
vmt_capture timeout 20 showmount -a 127.0.0.1
assert_not_contains "$VMT_OUT" "127.0.0.1:$W/v3" "showmount -a after umount"
kill "$(vmt_pid mountd)"
wait_for 10 "MOUNT to leave rpcbind" sh -c '! rpcinfo -p 127.0.0.1 | grep -q 100005'
vmt_step "ok"
