#!/usr/bin/env bash
# Our three tools only (exportfs, nfsd-control, mountd) with Debian's
# mount.nfs as the client:
#   1. NFSv4.1 mount reads and writes;
#   2. an ro export refuses writes; root_squash maps root to anonuid;
#   3. a client in another network namespace is refused what the exports do
#      not grant it (and a vsock:* export is never visible to it);
#   4. exportfs -r adding and removing a client takes effect without
#      restarting mountd;
#   5. killing and restarting mountd while a client has the export mounted
#      loses no data and the client carries on;
#   6. a mountd whose MOUNT service cannot start (its port taken) says so
#      and exits 1, and disturbs nothing.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd
NS=cli4 HOST_IP=10.99.4.1 CLIENT_IP=10.99.4.2 OTHER_IP=10.99.4.3
ROOT=$W/root
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')

vmt_step "file systems, client namespace"
vmt_mk_v4root "$ROOT"
for d in data ro squash guests secret; do vmt_mk_ext4 "$ROOT/$d"; done
chmod 777 "$ROOT/squash"
echo "read-only content" > "$ROOT/ro/file"
for d in secret guests ro; do echo "$d $token" > "$ROOT/$d/token"; done
vmt_netns_create "$NS" "$HOST_IP/24" "$CLIENT_IP/24"

write_exports() { # the address that may use /data besides 127.0.0.1
  vmt_write_exports <<EOF2
$ROOT          127.0.0.1(ro,fsid=0) $CLIENT_IP(ro,fsid=0)
$ROOT/data     127.0.0.1(rw,no_root_squash) $1(rw,no_root_squash)
$ROOT/ro       127.0.0.1(ro)
$ROOT/squash   127.0.0.1(rw,root_squash,anonuid=4321,anongid=4321)
$ROOT/guests   vsock:*(rw)
$ROOT/secret   $OTHER_IP(rw)
EOF2
}
write_exports "$CLIENT_IP"
vmt_run "$EXPORTFS" -ra

vmt_step "our nfsd-control and mountd"
vmt_run "$NFSD" -N 3 8
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -N 3 -d all
wait_for 10 "our mountd to open the cache channels" vmt_holds_channels "$(vmt_pid mountd)"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true

vmt_step "1. NFSv4.1 mount reads and writes"
vmt_nfs_mount "127.0.0.1:/data" "$W/m-data"
[ "$VMT_RC" = 0 ] || fail "mount of /data failed"
echo "via-nfs $token" > "$W/m-data/f"
timeout 20 sync -f "$W/m-data/f"
assert_eq "via-nfs $token" "$(cat "$ROOT/data/f")" "file written through our server"

vmt_step "2a. an ro export refuses writes"
vmt_nfs_mount "127.0.0.1:/ro" "$W/m-ro"
[ "$VMT_RC" = 0 ] || fail "mount of /ro failed"
assert_eq "read-only content" "$(cat "$W/m-ro/file")" "read from the ro export"
if ( echo x > "$W/m-ro/new" ) 2>"$W/ro.err"; then fail "wrote to an ro export"; fi
assert_contains_ci "$(cat "$W/ro.err")" "read-only" "the ro refusal"

vmt_step "2b. root_squash maps root to anonuid 4321"
vmt_nfs_mount "127.0.0.1:/squash" "$W/m-sq"
[ "$VMT_RC" = 0 ] || fail "mount of /squash failed"
touch "$W/m-sq/by-root"
assert_eq "4321:4321" "$(stat -c %u:%g "$ROOT/squash/by-root")" "owner of a file root created"

vmt_step "3. the namespace client: granted /data, refused /secret, never sees vsock:*"
vmt_tcp_reachable "$NS" "$HOST_IP" 2049 || fail "$NS cannot reach the server"
vmt_nfs_mount "$HOST_IP:/data" "$W/m-ns" "$NS"
[ "$VMT_RC" = 0 ] || fail "$NS could not mount /data"
assert_eq "via-nfs $token" "$(timeout 20 cat "$W/m-ns/f")" "file seen by $NS"
vmt_umount "$W/m-ns"
# The NFSv4 root here is a real (fsid=0) export, so a refused export below it
# shows as the root's own empty directory: the contents must stay invisible.
for path in /secret /guests /ro; do
  vmt_nfs_mount "$HOST_IP:$path" "$W/m-ns" "$NS"
  [ "$VMT_RC" != 124 ] || fail "refusal of $path hung"
  if [ "$VMT_RC" = 0 ]; then
    if timeout 20 cat "$W/m-ns/token" 2>/dev/null; then fail "$NS read the contents of $path"; fi
    vmt_umount "$W/m-ns"
  fi
done
grep -q "denied access to $ROOT/guests" "$W/mountd.log" || grep -q "denied access to $ROOT/secret" "$W/mountd.log" \
  || fail "mountd logged no denial"

vmt_step "4. exportfs -r without restarting mountd"
write_exports "$OTHER_IP"
vmt_run "$EXPORTFS" -ra
vmt_nfs_mount "$HOST_IP:/data" "$W/m-ns" "$NS"
if [ "$VMT_RC" = 0 ]; then
  if timeout 20 cat "$W/m-ns/f" 2>/dev/null; then fail "$NS still reads /data after it was removed"; fi
  vmt_umount "$W/m-ns"
fi
write_exports "$CLIENT_IP"
vmt_run "$EXPORTFS" -ra
vmt_nfs_mount "$HOST_IP:/data" "$W/m-ns" "$NS"
[ "$VMT_RC" = 0 ] || fail "$NS cannot mount /data after it was added back"
vmt_umount "$W/m-ns"
grep -q "loaded .* exports" "$W/mountd.log" || fail "mountd did not log a reload"

vmt_step "5. kill and restart mountd while /data is mounted"
( for i in $(seq 1 40); do echo "line $i" >> "$W/m-data/log"; sleep 0.1; done ) &
writer=$!
sleep 0.5
kill "$(vmt_pid mountd)"
sleep 0.5
vmt_start_daemon mountd "$W/mountd2.log" "$MOUNTD" -F -N 3 -d all
wait_for 10 "the restarted mountd" vmt_holds_channels "$(vmt_pid mountd)"
"$EXPORTFS" -f
wait "$writer"
timeout 20 sync -f "$W/m-data/log"
assert_eq 40 "$(wc -l < "$ROOT/data/log")" "lines that reached the server across the restart"
echo "after restart $token" > "$W/m-data/g"
timeout 20 sync -f "$W/m-data/g"
assert_eq "after restart $token" "$(cat "$ROOT/data/g")" "write after the restart"

vmt_step "6. a MOUNT service that cannot start (its port is taken): mountd says so and exits 1"
# The MOUNT service starts beside the upcall loop; its failure must still
# end mountd with an error, not leave it half serving.
python3 -c 'import socket, time
s = socket.create_server(("", 4002), family=socket.AF_INET6, dualstack_ipv6=True)
time.sleep(120)' &
holder=$!
vmt_defer "kill $holder 2>/dev/null || true"
wait_for 10 "the port holder" sh -c 'ss -tlnH "sport = :4002" | grep -q .'
rc=0
out=$(timeout 60 "$MOUNTD" -F -p 4002 --no-udp 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/  | /'
assert_eq 1 "$rc" "mountd's exit status when MOUNT cannot start"
assert_contains "$out" "cannot start the MOUNT service" "mountd names what failed"
assert_contains "$out" "another program has the port" "mountd says what to do"
kill "$holder"
kill -0 "$(vmt_pid mountd)" || fail "the running mountd is gone"
echo "after the failed start $token" > "$W/m-data/h"
timeout 20 sync -f "$W/m-data/h"
assert_eq "after the failed start $token" "$(cat "$ROOT/data/h")" "write after the failed start"
vmt_step "ok"
