#!/usr/bin/env bash
# (b) Debian's rpc.nfsd + rpc.mountd serve the export table OUR exportfs wrote:
#   - an NFSv4.1 mount over 127.0.0.1 reads and writes the exported ext4;
#   - a client in network namespace cli2 (10.99.0.2) that the exports name
#     can mount too (positive control: networking and the server work for it);
#   - after our `exportfs -ra` on exports that name 10.99.0.3 instead, the same
#     client is refused (access denied) while 127.0.0.1 still mounts;
#   - naming 10.99.0.2 again lets it back in: the rule, nothing else, decided.
#
# The NFSv4 root is an explicit fsid=0 export of a tmpfs: the VM's "/" is 9p
# and /tmp an overlay, neither exportable, so mountd's automatic pseudo-root
# ("/") cannot be built here. Clients mount <root-relative path>, e.g. /data.
set -euo pipefail
# shellcheck source=../lib.sh
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin

W=$VMT_WORK
ROOT=$W/v4root          # fsid=0 export (tmpfs)
DATA=$ROOT/data         # the ext4 export, mounted as <server>:/data
NS=cli2
HOST_IP=10.99.0.1 CLIENT_IP=10.99.0.2 OTHER_IP=10.99.0.3
token=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

vmt_step "file systems and client namespace"
vmt_mk_v4root "$ROOT"
vmt_mk_ext4 "$DATA"
echo "server-side $token" > "$DATA/from-server"
vmt_netns_create "$NS" "$HOST_IP/24" "$CLIENT_IP/24"

# exports naming CLIENT (phase "allow") or OTHER (phase "deny") beside 127.0.0.1
write_exports() { # ip-for-the-namespace-side
  vmt_write_exports <<EOF
# vmtest 20: NFSv4 root + an ext4 export
$ROOT  127.0.0.1(ro,fsid=0,no_subtree_check) $1(ro,fsid=0,no_subtree_check)
$DATA  127.0.0.1(rw,no_root_squash,no_subtree_check) $1(rw,no_root_squash,no_subtree_check)
EOF
}

vmt_step "our exportfs writes the table"
write_exports "$CLIENT_IP"
assert_success "our exportfs -ra" "$EXPORTFS" -ra
vmt_show_etab
for ip in 127.0.0.1 "$CLIENT_IP"; do
  grep -qE "^$DATA"$'\t'"$ip\(rw,.*no_root_squash" "$NFS_STATE_DIR/etab" \
    || fail "etab lacks an rw,no_root_squash line for $DATA $ip"
done

vmt_step "Debian's rpcbind, rpc.nfsd (NFSv4 only), rpc.mountd"
vmt_start_rpcbind
vmt_start_ref_nfsd -N 3 --no-udp 4
vmt_start_ref_mountd

vmt_step "local client (127.0.0.1) mounts NFSv4.1, reads and writes"
vmt_nfs_mount "127.0.0.1:/data" "$W/mnt-local"
[ "$VMT_RC" == 0 ] || fail "NFSv4.1 mount of 127.0.0.1:/data failed"
findmnt -rn -o SOURCE,FSTYPE,OPTIONS "$W/mnt-local" | sed 's/^/  /'
findmnt -rn -o OPTIONS "$W/mnt-local" | grep -q 'vers=4.1' || fail "mount is not NFSv4.1"
assert_eq "server-side $token" "$(timeout 20 cat "$W/mnt-local/from-server")" "file read through NFS"
echo "via-nfs $token" > "$W/mnt-local/from-client"
timeout 20 sync -f "$W/mnt-local/from-client"
vmt_umount "$W/mnt-local"
assert_eq "via-nfs $token" "$(cat "$DATA/from-client")" "file written through NFS, read on the server"

vmt_step "positive control: $NS ($CLIENT_IP) is named and mounts"
vmt_tcp_reachable "$NS" "$HOST_IP" 2049 || fail "$NS cannot reach $HOST_IP:2049 (network setup)"
vmt_nfs_mount "$HOST_IP:/data" "$W/mnt-ns" "$NS"
[ "$VMT_RC" == 0 ] || fail "$NS could not mount although the exports name $CLIENT_IP"
findmnt -rn -o OPTIONS "$W/mnt-ns" | grep -q "clientaddr=$CLIENT_IP" || fail "mount did not come from $CLIENT_IP"
echo "from-ns $token" > "$W/mnt-ns/from-ns"
timeout 20 sync -f "$W/mnt-ns/from-ns"
vmt_umount "$W/mnt-ns"
assert_eq "from-ns $token" "$(cat "$DATA/from-ns")" "file written from $NS"

vmt_step "exports now name $OTHER_IP instead of $CLIENT_IP: $NS is refused"
write_exports "$OTHER_IP"
assert_success "our exportfs -ra" "$EXPORTFS" -ra
vmt_show_etab
assert_file_lacks "$NFS_STATE_DIR/etab" "$CLIENT_IP" "etab still names $CLIENT_IP"
t0=$(date +%s)
vmt_nfs_mount "$HOST_IP:/data" "$W/mnt-ns" "$NS"
if [ "$VMT_RC" == 0 ]; then
  ls -la "$W/mnt-ns" || true
  fail "$NS mounted although no export names $CLIENT_IP"
fi
[ "$VMT_RC" != 124 ] || fail "the refused mount hung until the timeout instead of failing"
grep -qiE 'access denied|permission denied' <<<"$VMT_OUT" \
  || fail "refusal should be 'access denied', got: $VMT_OUT"
vmt_note "refused in $(( $(date +%s) - t0 ))s"
mountpoint -q "$W/mnt-ns" && fail "$W/mnt-ns is mounted after a refused mount"
grep -q "$CLIENT_IP" /proc/net/rpc/auth.unix.ip/content \
  && sed 's/^/  auth.unix.ip: /' /proc/net/rpc/auth.unix.ip/content

vmt_step "the server still serves the named client"
vmt_nfs_mount "127.0.0.1:/data" "$W/mnt-local"
[ "$VMT_RC" == 0 ] || fail "127.0.0.1 could not mount after the exports change"
assert_eq "from-ns $token" "$(timeout 20 cat "$W/mnt-local/from-ns")" "file via 127.0.0.1"
vmt_umount "$W/mnt-local"

vmt_step "naming $CLIENT_IP again lets $NS back in"
write_exports "$CLIENT_IP"
assert_success "our exportfs -ra" "$EXPORTFS" -ra
vmt_nfs_mount "$HOST_IP:/data" "$W/mnt-ns" "$NS"
[ "$VMT_RC" == 0 ] || fail "$NS could not mount after being named again"
assert_eq "via-nfs $token" "$(timeout 20 cat "$W/mnt-ns/from-client")" "file via $NS"
vmt_umount "$W/mnt-ns"
vmt_step "ok"
