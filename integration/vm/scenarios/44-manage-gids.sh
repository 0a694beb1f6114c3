#!/usr/bin/env bash
# mountd --manage-gids (-g): the server takes a user's groups from its own
# group database (auth.unix.gid upcalls) instead of the list the client
# sends, with our exportfs, nfsd-control and mountd and Debian's mount.nfs:
#   1. without -g, uid 5000 sending no supplementary group cannot read a
#      file of group 6000 (mode 0640) nor write into a group-6000 directory;
#   2. with -g, the server's /etc/group makes uid 5000 a member of 6000: the
#      same calls succeed, and auth.unix.gid/content shows what mountd said;
#   3. a uid the server does not know is answered at once with no groups
#      (as nfs-utils does), not left to time out.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd
ROOT=$W/root
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

vmt_step "users on the server: gidtest (5000, primary 5000) is a member of gidextra (6000)"
cp /etc/passwd "$W/passwd.saved"; cp /etc/group "$W/group.saved"
vmt_defer "cp '$W/passwd.saved' /etc/passwd; cp '$W/group.saved' /etc/group"
echo "gidtest:x:5000:5000:manage-gids test:/nonexistent:/usr/sbin/nologin" >> /etc/passwd
printf 'gidprimary:x:5000:\ngidextra:x:6000:gidtest\n' >> /etc/group
assert_eq "gidtest : gidprimary gidextra" "$(id -Gn gidtest | sed 's/^/gidtest : /')" "the server's view of gidtest's groups"

vmt_step "file systems and exports"
vmt_mk_v4root "$ROOT"
vmt_mk_ext4 "$ROOT/data"
echo "group secret $token" > "$ROOT/data/secret"
chown 0:6000 "$ROOT/data/secret"; chmod 0640 "$ROOT/data/secret"
mkdir "$ROOT/data/gdir"; chown 0:6000 "$ROOT/data/gdir"; chmod 0770 "$ROOT/data/gdir"
vmt_write_exports <<EOF
$ROOT       127.0.0.1(ro,fsid=0)
$ROOT/data  127.0.0.1(rw,no_root_squash)
EOF
vmt_run "$EXPORTFS" -ra
vmt_run "$NFSD" -N 3 8
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true

# as_user UID CMD...: runs CMD as UID, group UID, no supplementary groups
as_user() { local u=$1; shift; timeout 20 setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }

vmt_step "1. mountd without --manage-gids: the client's (empty) group list counts"
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3 -d all
wait_for 10 "our mountd" vmt_holds_channels "$(vmt_pid mountd)"
if ls -l "/proc/$(vmt_pid mountd)/fd" | grep -q auth.unix.gid; then fail "mountd without -g holds auth.unix.gid/channel"; fi
vmt_nfs_mount 127.0.0.1:/data "$W/m"
[ "$VMT_RC" == 0 ] || fail "mount failed"
if as_user 5000 cat "$W/m/secret" 2>"$W/err1"; then fail "uid 5000 read a group-6000 file without --manage-gids"; fi
assert_contains_ci "$(cat "$W/err1")" "permission denied" "the refusal"
if as_user 5000 touch "$W/m/gdir/by-5000" 2>/dev/null; then fail "uid 5000 wrote into a group-6000 directory without --manage-gids"; fi
vmt_umount "$W/m"
kill "$(vmt_pid mountd)"; wait "$(vmt_pid mountd)" 2>/dev/null || true
vmt_run "$EXPORTFS" -f

vmt_step "2. mountd --manage-gids: the server's group database counts"
vmt_start_daemon mountd "$W/mountd-g.log" "$MOUNTD" -F -N 3 --manage-gids -d all
# Leave no trap for the next scenario, even if this one fails: for 30 s after
# the last reader closed auth.unix.gid/channel, the kernel expects the daemon
# back and holds every AUTH_SYS request for a group-list answer (nfsd drops
# it, the client times out) instead of going on without one. A mountd
# started without -g in that window (nfs-utils' too) does not open the
# channel, so stop mountd -g here and wait the window out.
wait_out_gid_window() {
  local pid
  pid=$(vmt_pid mountd)
  kill "$pid" 2>/dev/null
  for _ in $(seq 100); do vmt_pid_gone "$pid" && break; sleep 0.1; done   # not wait_for: no fail() in cleanup
  vmt_note "waiting 31 s: the kernel's auth.unix.gid listener window after mountd -g closed it"
  sleep 31
}
vmt_defer wait_out_gid_window
wait_for 10 "our mountd -g" vmt_holds_channels "$(vmt_pid mountd)"
wait_for 10 "mountd -g to open auth.unix.gid/channel" sh -c "ls -l /proc/$(vmt_pid mountd)/fd | grep -q auth.unix.gid"
vmt_nfs_mount 127.0.0.1:/data "$W/m"
[ "$VMT_RC" == 0 ] || fail "mount failed"
assert_eq "group secret $token" "$(as_user 5000 cat "$W/m/secret")" "uid 5000 reads the group-6000 file"
as_user 5000 sh -c "echo 'by 5000 $token' > '$W/m/gdir/by-5000'" || fail "uid 5000 could not write into the group-6000 directory"
timeout 20 sync -f "$W/m/gdir/by-5000"
assert_eq "5000:5000" "$(stat -c %u:%g "$ROOT/data/gdir/by-5000")" "owner of the file uid 5000 created"
printf -- '--- auth.unix.gid/content\n'; sed 's/^/  | /' /proc/net/rpc/auth.unix.gid/content
# content lines: "<uid> <count>: <gid> <gid>..."
line=$(awk '$1 == 5000' /proc/net/rpc/auth.unix.gid/content)
[ -n "$line" ] || fail "no auth.unix.gid entry for uid 5000"
set -- $line
assert_eq "5000 2:" "$1 $2" "uid and number of groups mountd gave"
assert_eq "5000 6000" "$(printf '%s\n' "${@:3}" | sort -n | paste -sd' ')" "the groups mountd gave uid 5000"

vmt_step "3. a uid the server does not know: answered at once, with no groups"
t0=$EPOCHREALTIME
if as_user 7777 cat "$W/m/secret" 2>"$W/err3"; then fail "unknown uid 7777 read the group-6000 file"; fi
took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
printf '  uid 7777: %s after %s s\n' "$(tr '\n' ' ' < "$W/err3")" "$took"
assert_contains_ci "$(cat "$W/err3")" "permission denied" "uid 7777 is refused, not left waiting"
# The kernel took the reply (a refused write leaves no entry and the user
# waiting). Kernels from 6.12 list an entry without groups as "# 7777 0:"
# (not usable as a group list: the user keeps only the groups the client sent).
line=$(awk '$1 == 7777 || ($1 == "#" && $2 == 7777)' /proc/net/rpc/auth.unix.gid/content)
printf '  auth.unix.gid for 7777: %s\n' "${line:-(none)}"
[ -n "$line" ] || fail "no auth.unix.gid entry for the unknown uid 7777"
assert_eq "0:" "$(awk '{ print $NF }' <<<"$line")" "groups mountd gave the unknown uid"
kill -0 "$(vmt_pid mountd)" || fail "mountd died"
assert_eq "group secret $token" "$(as_user 5000 cat "$W/m/secret")" "uid 5000 still reads"
vmt_umount "$W/m"
grep -qi 'gid' "$W/mountd-g.log" && printf '  mountd -g logged:\n%s\n' "$(grep -i 'gid' "$W/mountd-g.log" | head -n 5 | sed 's/^/  | /')"
echo "PASS: --manage-gids"
