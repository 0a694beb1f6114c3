#!/usr/bin/env bash
# The NFSv4 pseudo-root our mountd builds when no export has fsid=0, with our
# exportfs, nfsd-control and mountd and Debian's mount.nfs as the clients:
#   1. client A sees exactly the directories that lead to its own export and
#      nothing that leads only to client B's (a readdir of the pseudo-root
#      and of the directory the two exports share), reads and writes its
#      export, and cannot look up or mount B's;
#   2. client B likewise sees exactly its own two paths;
#   3. client C, whose address no export grants, is refused: no mount of the
#      pseudo-root, none of A's export;
#   4. exportfs -r granting B's export to A as well: A's pseudo-root shows
#      the new path without restarting mountd.
# "/" in this VM is the host's 9p share, which nfsd cannot export, and the
# pseudo-root is built from "/". The kernel resolves every path mountd (and
# exportfs) writes to a cache channel in the writer's own root, so both run
# chrooted into a tmpfs that carries the system's directories as bind
# mounts, in a private mount namespace that goes away with mountd: there
# "/" is that tmpfs, exportable, and full of directories no client may see.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control
PR=$W/newroot
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

vmt_step "client namespaces A, B, C (one veth pair and subnet each)"
vmt_netns_create pra 10.99.41.1/24 10.99.41.2/24
vmt_netns_create prb 10.99.42.1/24 10.99.42.2/24
vmt_netns_create prc 10.99.43.1/24 10.99.43.2/24

vmt_write_exports <<EOF
# no fsid=0 export: mountd builds the NFSv4 pseudo-root per client
/pr/alpha            10.99.41.2(rw,no_root_squash,fsid=101)
/pr/beta             10.99.42.2(rw,no_root_squash,fsid=102)
/srv2/only-b/deep    10.99.42.2(ro,fsid=103)
EOF

vmt_step "a private root for exportfs and mountd: a tmpfs with the system bound in"
mkdir -p "$PR"
cat > "$W/enter-root.sh" <<'EOF'
# run by unshare -m in a private mount namespace: builds the root, exports,
# then becomes mountd chrooted there
set -eu
PR=$1 BIN=$2 TOKEN=$3
shift 3
mount -t tmpfs -o mode=0755,size=192m pr-root "$PR"
for e in /*; do
  name=${e#/}
  case $name in tmp|lost+found) continue ;; esac
  if [ -L "$e" ]; then cp -P "$e" "$PR/$name"
  elif [ -d "$e" ]; then mkdir "$PR/$name"; mount --rbind "$e" "$PR/$name"
  fi
done
mkdir -m 1777 "$PR/tmp"
mkdir -p "$PR/prbin" "$PR/pr/alpha" "$PR/pr/beta" "$PR/pr/unexported" "$PR/srv2/only-b/deep" "$PR/srv2/other"
cp "$BIN/exportfs" "$BIN/mountd" "$PR/prbin/"
for d in pr/alpha pr/beta srv2/only-b/deep; do
  mount -t tmpfs -o mode=0777,size=16m "pr-$(basename "$d")" "$PR/$d"
  echo "/$d $TOKEN" > "$PR/$d/token"
done
chroot "$PR" /prbin/exportfs -ra
exec chroot "$PR" /prbin/mountd "$@"
EOF
vmt_start_daemon mountd "$W/mountd.log" unshare -m --propagation private \
  sh "$W/enter-root.sh" "$PR" "$BIN_DIR" "$token" -F -N 3 -d all
wait_for 180 "our mountd (chrooted) to open the cache channels" vmt_holds_channels "$(vmt_pid mountd)"
MPID=$(vmt_pid mountd)
SRV=/proc/$MPID/root    # the private root, as seen from here
assert_eq "/pr/alpha $token" "$(cat "$SRV/pr/alpha/token")" "the private root holds the exports"
printf -- '--- etab (in the private root)\n'; sed 's/^/  | /' "$SRV/var/lib/nfs/etab"
printf '  the private "/" holds: %s\n' "$(ls -A "$SRV" | tr '\n' ' ')"

vmt_step "our nfsd-control"
vmt_run "$NFSD" -N 3 8
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true

# mount_as NS SERVER-IP PATH MOUNTPOINT: from NS, with a host name of its own
mount_as() { vmt_nfs_mount "$2:$3" "$4" "$1" "pr-client-$1"; }
listing() { timeout 20 ls -A "$1" | tr '\n' ' ' | sed 's/ $//'; }

vmt_step "1. client A: the pseudo-root shows only the way to its own export"
mount_as pra 10.99.41.1 / "$W/a"
[ "$VMT_RC" == 0 ] || fail "A could not mount the pseudo-root"
printf '  A sees / = [%s], /pr = [%s]\n' "$(listing "$W/a")" "$(listing "$W/a/pr")"
assert_eq "pr" "$(listing "$W/a")" "A's pseudo-root (the private / holds $(ls -A "$SRV" | wc -l) entries)"
assert_eq "alpha" "$(listing "$W/a/pr")" "A's /pr (beta and unexported are directories there too)"
assert_eq "/pr/alpha $token" "$(timeout 20 cat "$W/a/pr/alpha/token")" "A reads its export"
echo "from A $token" > "$W/a/pr/alpha/from-a"
timeout 20 sync -f "$W/a/pr/alpha/from-a"
assert_eq "from A $token" "$(cat "$SRV/pr/alpha/from-a")" "A's write reached the server"
if timeout 20 stat "$W/a/pr/beta" >/dev/null 2>&1; then fail "A can look up /pr/beta (B's export)"; fi
if timeout 20 stat "$W/a/srv2" >/dev/null 2>&1; then fail "A can look up /srv2 (leads only to B's export)"; fi
if (echo x > "$W/a/new-at-root") 2>/dev/null; then fail "A created a file in the pseudo-root"; fi
mount_as pra 10.99.41.1 /pr/beta "$W/a-beta"
[ "$VMT_RC" != 124 ] || fail "A's mount of /pr/beta hung"
if [ "$VMT_RC" == 0 ]; then
  listing "$W/a-beta" || true
  fail "A mounted /pr/beta, B's export"
fi
printf '  A mounting /pr/beta: refused (%s)\n' "$(tr '\n' ' ' <<<"$VMT_OUT")"
vmt_umount "$W/a"

vmt_step "2. client B: exactly its own two paths"
mount_as prb 10.99.42.1 / "$W/b"
[ "$VMT_RC" == 0 ] || fail "B could not mount the pseudo-root"
printf '  B sees / = [%s], /pr = [%s], /srv2 = [%s]\n' "$(listing "$W/b")" "$(listing "$W/b/pr")" "$(listing "$W/b/srv2")"
assert_eq "pr srv2" "$(listing "$W/b" | tr ' ' '\n' | sort | paste -sd' ')" "B's pseudo-root"
assert_eq "beta" "$(listing "$W/b/pr")" "B's /pr"
assert_eq "only-b" "$(listing "$W/b/srv2")" "B's /srv2 (other is a directory there too)"
assert_eq "/srv2/only-b/deep $token" "$(timeout 20 cat "$W/b/srv2/only-b/deep/token")" "B reads its deep export"
assert_eq "/pr/beta $token" "$(timeout 20 cat "$W/b/pr/beta/token")" "B reads /pr/beta"
if timeout 20 stat "$W/b/pr/alpha" >/dev/null 2>&1; then fail "B can look up /pr/alpha (A's export)"; fi
vmt_umount "$W/b"

vmt_step "3. client C, granted nothing: refused"
for path in / /pr/alpha; do
  mount_as prc 10.99.43.1 "$path" "$W/c"
  [ "$VMT_RC" != 124 ] || fail "C's mount of $path hung"
  if [ "$VMT_RC" == 0 ]; then
    printf '  C mounted %s; it holds: %s\n' "$path" "$(listing "$W/c" || true)"
    fail "C (granted nothing) mounted $path"
  fi
  printf '  C mounting %s: refused (%s)\n' "$path" "$(tr '\n' ' ' <<<"$VMT_OUT")"
done

vmt_step "4. exportfs -r grants /pr/beta to A too: A's pseudo-root shows it, mountd not restarted"
vmt_write_exports <<EOF
/pr/alpha            10.99.41.2(rw,no_root_squash,fsid=101)
/pr/beta             10.99.42.2(rw,no_root_squash,fsid=102) 10.99.41.2(ro,fsid=102)
/srv2/only-b/deep    10.99.42.2(ro,fsid=103)
EOF
vmt_run nsenter -t "$MPID" -m -r -w /prbin/exportfs -r
mount_as pra 10.99.41.1 / "$W/a"
[ "$VMT_RC" == 0 ] || fail "A could not mount the pseudo-root after exportfs -r"
assert_eq "alpha beta" "$(listing "$W/a/pr" | tr ' ' '\n' | sort | paste -sd' ')" "A's /pr after the grant"
assert_eq "/pr/beta $token" "$(timeout 20 cat "$W/a/pr/beta/token")" "A reads /pr/beta now"
assert_eq "pr" "$(listing "$W/a")" "A's pseudo-root still shows no /srv2"
assert_eq "$MPID" "$(vmt_pid mountd)" "the same mountd"
kill -0 "$MPID" || fail "mountd is gone"
vmt_umount "$W/a"
echo "PASS: pseudo-root per client"
