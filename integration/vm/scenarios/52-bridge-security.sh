#!/usr/bin/env bash
# The bridge path's identity, attacked as an unprivileged host user would,
# with real clients (socat, libnfs' nfs-cat; the kernel's NFS client where
# only it speaks NFSv4.1), against our tools only (rpc.nfsd --vsock 2049,
# mountd, the bridge rpc.nfsd starts, exportfs):
#   1. as nobody, relaying to the host's nfsd from the guest address of CID
#      5 (socat bind=127.128.0.5) and asking for a root-only file of a
#      vsock:5(no_root_squash,insecure) export: nothing; the host's
#      auth.unix.ip has no domain for the address. Controls: the same tools
#      as nobody read an IP export; from inside the bridge's namespace
#      (root only: nobody cannot enter it) the address is guest 5;
#   2. as nobody in its own user and network namespace (a container),
#      relaying to vsock CID 1 (every namespace reaches the loopback
#      transport): a vsock:*(no_root_squash,insecure) export gives nothing
#      (CID 1 is no guest); the same path reaches an explicit vsock:1
#      export (control), and exportfs --check warns about vsock:1;
#   3. MOUNT (NFSv3) from a guest-block address is refused and primes no IP
#      identity; a path that is not exported gets EACCES whether it exists
#      or not;
#   4. the guests' nfsd serves NFSv4.1 and 4.2 only (no NFSv4.0 callbacks),
#      IP clients keep NFSv4.0; the guest block comes from nfs.conf through
#      the namespace's record, the same for the bridge and mountd;
#   5. the guest's relay (mount.vsock in a namespace whose lo is down: it
#      brings it up) listens on a privileged port; a guest user connecting
#      from a low port (ip_unprivileged_port_start lowered) gets an
#      unprivileged vsock port; once the relay is killed a guest user
#      cannot listen on its port; mount.vsock refuses NFSv4.0;
#   6. a hybrid-vsock socket (Firecracker style) is 0600 and its VMM's:
#      nobody cannot connect, root is refused by SO_PEERCRED, the VMM's
#      guest mounts as CID 7; two sockets with one CID, or CID 2, refused;
#   7. files root writes: a symlink at etab's old temporary name is left
#      alone; control bytes in the bridge's status file are escaped by
#      nfsd-control status; a pid file naming another process (wrong start
#      time, or no start time) gets that process no signal.
set -euo pipefail
. "${VMT_LIB:-$(dirname "$0")/../lib.sh}"
vmt_begin
W=$VMT_WORK
NFSD=$BIN_DIR/nfsd-control MOUNTD=$BIN_DIR/mountd HELPER=$BIN_DIR/mount.vsock
token=$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
for t in socat nfs-cat; do command -v "$t" >/dev/null || fail "$t missing (scripts/install-deps.sh installs it)"; done
modprobe vsock_loopback
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
as_nobody() { "${NOBODY[@]}" "$@"; }

vmt_step "exports: a secret per identity, each on its own filesystem"
R=$W/root
vmt_mk_v4root "$R"
for e in vm5 vm7 any lo world; do vmt_mk_ext4 "$R/$e"; done
echo "vm7 $token" > "$R/vm7/token"
for e in vm5 any lo; do echo "$e secret $token" > "$R/$e/secret"; chmod 600 "$R/$e/secret"; done
echo "world $token" > "$R/world/token"; chmod 644 "$R/world/token"
mkdir -p "$W/outside"
vmt_write_exports <<EOF2
$R        vsock:*(ro,fsid=0,insecure) vsock:1(ro,fsid=0,insecure) vsock:5(ro,fsid=0,insecure) *(ro,fsid=0,insecure)
$R/vm5    vsock:5(rw,no_root_squash,insecure)
$R/vm7    vsock:7(rw,insecure)
$R/any    vsock:*(rw,no_root_squash,insecure)
$R/lo     vsock:1(rw,no_root_squash,insecure)
$R/world  *(ro,insecure)
EOF2
vmt_run "$EXPORTFS" -ra

vmt_step "the server: rpcbind (MOUNT v3), rpc.nfsd --vsock 2049 (it starts the bridge), mountd"
printf '[vsock]\nloopback-block = 127.64.0.0/10\n' > /etc/nfs.conf
vmt_defer ": > /etc/nfs.conf"
vmt_start_rpcbind
vmt_start_daemon mountd "$W/mountd.log" "$MOUNTD" -F -d all
wait_for 10 "mountd" vmt_holds_channels "$(vmt_pid mountd)"
vmt_capture "$NFSD" -G 10 --vsock 2049 8
[ "$VMT_RC" = 0 ] || fail "rpc.nfsd --vsock 2049 failed"
echo Y > /proc/fs/nfsd/v4_end_grace 2>/dev/null || true
vmt_end_bridge_grace
wait_for 10 "mountd to answer the bridge's nfsd" grep -q "answering the vsock bridge's nfsd too" "$W/mountd.log"
bridge_pid=$(vmt_bridge_pid)
wait_for 10 "the bridge to forward" grep -q "forwarding vsock" /var/log/nfs-vsock-bridge.log

check_block() {
  assert_eq 127.64.0.0/10 "$(cat /run/nfs-vsock/guest-block)" "the namespace records nfs.conf's block"
  assert_contains "$(cat /var/log/nfs-vsock-bridge.log)" "from 127.64.0.0/10" "the bridge took the recorded block"
  assert_contains "$(cat "$W/mountd.log")" "guests from 127.64.0.0/10" "mountd took the recorded block"
}
vmt_part "the guest block: one source for the bridge and mountd" check_block
vmt_note "from here on CID c is 127.64.0.c"

attack1() {
  vmt_note "control: nobody's socat and nfs-cat read an IP export (the tools work as nobody)"
  vmt_start_daemon socat-ip "$W/socat-ip.log" as_nobody socat TCP-LISTEN:3048,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:2049,bind=127.0.0.1
  wait_for 10 "socat on 3048" sh -c 'ss -ltn | grep -q 127.0.0.1:3048'
  vmt_capture as_nobody timeout 60 nfs-cat "nfs://127.0.0.1/world/token?version=4&nfsport=3048"
  assert_contains "$VMT_OUT" "world $token" "nobody reads the IP export through its own relay"

  vmt_note "attack: nobody relays to the host's nfsd from guest 5's address and asks as uid 0"
  vmt_start_daemon socat-g5 "$W/socat-g5.log" as_nobody socat TCP-LISTEN:3049,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:2049,bind=127.64.0.5
  wait_for 10 "socat on 3049" sh -c 'ss -ltn | grep -q 127.0.0.1:3049'
  vmt_capture as_nobody timeout 60 nfs-cat "nfs://127.0.0.1/vm5/secret?version=4&nfsport=3049&uid=0"
  assert_ne 0 "$VMT_RC" "nfs-cat as guest 5's address"
  assert_not_contains "$VMT_OUT" "$token" "nobody read guest 5's root-only file"
  grep -q "127.64.0.5 is in the vsock guest block 127.64.0.0/10 but reached the host's nfsd" "$W/mountd.log" \
    || fail "mountd did not refuse the guest address at the host's nfsd"
  local content
  content=$(vmt_cache_content auth.unix.ip)
  printf '%s\n' "$content" | sed 's/^/  host auth.unix.ip | /'
  assert_not_contains "$content" "vsock:5" "the host's nfsd has no guest identity"
  ! grep -E "^nfsd 127\.64\.0\.5 [^-]" <<<"$content" || fail "the host's nfsd gave 127.64.0.5 a domain"

  vmt_note "nobody cannot get into the bridge's namespace, with or without a user namespace of its own"
  vmt_capture as_nobody nsenter "--net=$VMT_BRIDGE_NS" true
  assert_ne 0 "$VMT_RC" "nobody entered the bridge's namespace"
  vmt_capture as_nobody unshare -r nsenter "--net=$VMT_BRIDGE_NS" true
  assert_ne 0 "$VMT_RC" "root of a user namespace entered the bridge's namespace"

  vmt_note "control: the same relay inside the bridge's namespace (root; where the bridge is) is guest 5"
  vmt_start_daemon socat-ns "$W/socat-ns.log" vmt_in_bridge_ns socat TCP-LISTEN:3049,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:2049,bind=127.64.0.5
  wait_for 10 "socat on 3049 in the namespace" sh -c 'nsenter --net=/run/netns/nfs-vsock ss -ltn | grep -q 127.0.0.1:3049'
  mkdir -p "$W/m-ns"
  vmt_capture vmt_in_bridge_ns timeout 60 mount -t nfs4 -o vers=4.1,port=3049,soft,timeo=50,retrans=2 127.0.0.1:/vm5 "$W/m-ns"
  [ "$VMT_RC" = 0 ] || fail "the control mount in the bridge's namespace failed"
  assert_eq "vm5 secret $token" "$(timeout 20 cat "$W/m-ns/secret")" "guest 5's address in the bridge's namespace"
  vmt_umount "$W/m-ns"
  grep -qE "^nfsd 127\.64\.0\.5 (.*,)?vsock:5(,|$)" <<<"$(vmt_cache_content auth.unix.ip bridge)" \
    || fail "the bridge's nfsd does not know 127.64.0.5 as vsock:5: $(vmt_cache_content auth.unix.ip bridge)"
}
vmt_part "1. nobody claims guest 5's address at the host's nfsd" attack1

attack2() {
  vmt_note "attack: nobody in unshare -rn relays to vsock CID 1 and asks for the vsock:* export as uid 0"
  local script=$W/container.sh C=$W/container
  mkdir -p -m 1777 "$C"
  cat > "$script" <<EOF2
ip link set lo up
socat TCP-LISTEN:3050,bind=127.0.0.1,fork,reuseaddr VSOCK-CONNECT:1:2049 &
echo \$! > $C/socat.pid
sleep 1
timeout 60 nfs-cat "nfs://127.0.0.1/any/secret?version=4&nfsport=3050&uid=0"
echo "nfs-cat exit \$?"
exec sleep 600
EOF2
  chmod 755 "$script"
  : > "$W/container.log"; chmod 666 "$W/container.log"
  vmt_start_daemon container "$W/container.log" as_nobody unshare -rn bash "$script"
  wait_for 90 "the container's nfs-cat" grep -q "nfs-cat exit" "$W/container.log"
  sed 's/^/  | /' "$W/container.log"
  assert_not_contains "$(cat "$W/container.log")" "$token" "the container read the vsock:* export"
  assert_not_contains "$(cat "$W/container.log")" "nfs-cat exit 0" "nfs-cat in the container"

  vmt_note "the kernel's NFSv4.1 client through the container's relay (its network namespace): vsock:* no, vsock:1 yes"
  local socat_pid
  socat_pid=$(cat "$C/socat.pid")
  mkdir -p "$W/m-c"
  vmt_capture nsenter "--net=/proc/$socat_pid/ns/net" timeout 60 mount -t nfs4 -o vers=4.1,port=3050,soft,timeo=50,retrans=2 127.0.0.1:/any "$W/m-c"
  if [ "$VMT_RC" = 0 ]; then
    if timeout 20 cat "$W/m-c/secret" 2>/dev/null; then fail "CID 1 read the vsock:* export"; fi
    vmt_umount "$W/m-c"
  fi
  vmt_capture nsenter "--net=/proc/$socat_pid/ns/net" timeout 60 mount -t nfs4 -o vers=4.1,port=3050,soft,timeo=50,retrans=2 127.0.0.1:/lo "$W/m-c"
  [ "$VMT_RC" = 0 ] || fail "the explicit vsock:1 export was refused through the container's relay"
  assert_eq "lo secret $token" "$(timeout 20 cat "$W/m-c/secret")" "CID 1 reads the vsock:1 export (control)"
  vmt_umount "$W/m-c"
  local content
  content=$(vmt_cache_content auth.unix.ip bridge)
  printf '%s\n' "$content" | sed 's/^/  bridge auth.unix.ip | /'
  grep -qE "^nfsd 127\.64\.0\.1 vsock:1$" <<<"$content" || fail "CID 1's domain is not exactly vsock:1 (vsock:* must not match it)"
  vmt_capture "$EXPORTFS" --check
  assert_contains "$VMT_OUT" "every process and container on this host can connect as CID 1" "exportfs --check warns about vsock:1"
  kill "$(vmt_pid container)" 2>/dev/null || true
}
vmt_part "2. a container's process over vsock loopback (CID 1) is no guest" attack2

mount_protocol() {
  mnt() { python3 "$(dirname "$VMT_LIB")/mnt-call.py" "$@"; }
  vmt_run "$REF_EXPORTFS" -f
  assert_eq 13 "$(mnt 127.64.0.5 "$R/world")" "MNT of a *(ro,insecure) export from a guest-block address: EACCES"
  grep -q "refused MOUNT call from 127.64.0.5" "$W/mountd.log" || fail "mountd did not log the refused MOUNT call"
  local content
  content=$(vmt_cache_content auth.unix.ip)
  printf '%s\n' "$content" | sed 's/^/  host auth.unix.ip | /'
  ! grep -qE "^nfsd 127\.64\.0\.5 " <<<"$content" || fail "the MNT call primed auth.unix.ip for 127.64.0.5"
  assert_eq 0 "$(mnt 127.0.0.1 "$R/world")" "MNT of the same export from 127.0.0.1 (control)"
  grep -qE "^nfsd 127\.0\.0\.1 \*$" <<<"$(vmt_cache_content auth.unix.ip)" || fail "the control MNT primed no IP identity"
  assert_eq 13 "$(mnt 127.0.0.1 "$R/no-such-dir")" "MNT of a missing path: EACCES, not NOENT"
  assert_eq 13 "$(mnt 127.0.0.1 "$W/outside")" "MNT of an existing path that is not exported: EACCES"
}
vmt_part "3. MOUNT never gives a guest address an IP identity; EACCES for what is not exported" mount_protocol

versions() {
  assert_eq "-3 +4 -4.0 +4.1 +4.2" "$(cat "$VMT_BRIDGE_NFSD/versions")" "the guests' nfsd: NFSv4.1 and 4.2 only"
  # The kernel never lists +4.0: +4 implies it unless -4.0 is there.
  assert_not_contains "$(cat /proc/fs/nfsd/versions)" "-4.0" "IP clients keep NFSv4.0"
  assert_contains "$(cat /proc/fs/nfsd/versions)" "+3" "IP clients keep NFSv3"
  vmt_capture "$NFSD" status
  vmt_run ip netns list
  assert_contains "$(ip netns list)" "nfs-vsock" "ip netns lists the bridge's namespace"
}
vmt_part "4. NFSv4.0 off for guests only" versions

relay() {
  local log=/var/log/nfs-vsock-bridge.log relay_pid relay_port before
  vmt_run ip netns add g1   # its loopback starts down, as in a freshly booted guest
  in_g1() { nsenter --net=/run/netns/g1 "$@"; }
  mkdir -p "$W/m-r"
  vmt_capture in_g1 "$HELPER" -v 1:/lo "$W/m-r" -o soft,timeo=50,retrans=2
  [ "$VMT_RC" = 0 ] || fail "mount.vsock failed"
  assert_contains "$VMT_OUT" "the loopback interface lo was down: brought it up" "mount.vsock brings lo up"
  read -r relay_port relay_pid <<<"$(sed -n 's/.*relay 127\.0\.0\.1:\([0-9]*\) -> vsock .*(pid \([0-9]*\)).*/\1 \2/p' <<<"$VMT_OUT" | head -n 1)"
  [ -n "$relay_pid" ] || fail "mount.vsock -v named no relay"
  [ "$relay_port" -lt 1024 ] || fail "the relay listens on unprivileged port $relay_port"
  assert_eq "lo secret $token" "$(timeout 20 cat "$W/m-r/secret")" "read through the relay"

  vmt_note "a guest user connecting from a port below 1024 (ip_unprivileged_port_start lowered) gets an unprivileged vsock port"
  vmt_run in_g1 sysctl -qw net.ipv4.ip_unprivileged_port_start=600
  before=$(grep -c "(unprivileged port)" "$log" || true)
  vmt_capture in_g1 "${NOBODY[@]}" timeout 10 sh -c "sleep 3 | socat - TCP:127.0.0.1:$relay_port,sourceport=700"
  wait_for 10 "the bridge to see the guest user's connection" sh -c "[ \$(grep -c '(unprivileged port)' $log) -gt $before ]"
  vmt_run in_g1 sysctl -qw net.ipv4.ip_unprivileged_port_start=1024

  vmt_note "the relay killed: a guest user cannot listen where it listened"
  vmt_run kill -9 "$relay_pid"
  wait_for 10 "the relay to die" vmt_pid_gone "$relay_pid"
  vmt_capture in_g1 "${NOBODY[@]}" python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', $relay_port)); s.listen(); print('listening')"
  assert_ne 0 "$VMT_RC" "nobody listened on the relay's port $relay_port"
  assert_contains "$VMT_OUT" "Permission denied" "nobody's bind on the relay's port"
  umount -f "$W/m-r" 2>/dev/null || umount -l "$W/m-r"

  vmt_note "NFSv4.0 refused by mount.vsock, with the reason"
  vmt_capture in_g1 "$HELPER" 1:/lo "$W/m-r" -o vers=4.0
  assert_eq 1 "$VMT_RC" "mount.vsock -o vers=4.0"
  assert_contains "$VMT_OUT" "NFSv4.0 is refused: the host serves only NFSv4.1 and 4.2 to vsock guests" "mount.vsock -o vers=4.0"
}
vmt_part "5. the guest's relay: a privileged port, root's sockets only, lo up, no NFSv4.0" relay

hybrid() {
  local sock=$W/vm7.vsock_2049 log=$W/bridge-hybrid.log BRIDGE=$BIN_DIR/nfs-vsock-bridge
  vmt_note "a second bridge (root: it joins the namespace and drops root) serves one Firecracker-style socket, VMM uid 1234"
  vmt_start_daemon bridge-hybrid "$log" "$BRIDGE" --unix "$sock=7:1234" --status-file none -d
  wait_for 10 "the hybrid bridge" grep -q forwarding "$log"
  assert_eq "600 1234" "$(stat -c '%a %u' "$sock")" "the hybrid socket's mode and owner"
  vmt_capture "${NOBODY[@]}" timeout 5 socat -u /dev/null "UNIX-CONNECT:$sock"
  assert_ne 0 "$VMT_RC" "nobody connected to the hybrid socket"
  assert_contains "$VMT_OUT" "Permission denied" "nobody on the hybrid socket"
  vmt_capture timeout 5 sh -c "sleep 1 | socat - UNIX-CONNECT:$sock"
  wait_for 10 "the bridge to refuse root" grep -q "uid 0 is not the VM's VMM (uid 1234)" "$log"
  vmt_note "the VMM (uid 1234) relays for its guest: the guest mounts its export"
  vmt_run ip netns add g7
  vmt_run ip -n g7 link set lo up
  vmt_start_daemon vmm7 "$W/vmm7.log" nsenter --net=/run/netns/g7 setpriv --reuid=1234 --regid=1234 --clear-groups -- \
    socat TCP-LISTEN:40007,bind=127.0.0.1,reuseaddr,fork "UNIX-CONNECT:$sock"
  wait_for 10 "the VMM's relay" sh -c 'nsenter --net=/run/netns/g7 ss -ltn | grep -q 127.0.0.1:40007'
  mkdir -p "$W/m7"
  vmt_capture nsenter --net=/run/netns/g7 timeout 60 mount -t nfs4 -o vers=4.1,port=40007,soft,timeo=50,retrans=2 127.0.0.1:/vm7 "$W/m7"
  [ "$VMT_RC" = 0 ] || fail "the hybrid guest could not mount its export"
  assert_eq "vm7 $token" "$(timeout 20 cat "$W/m7/token")" "the hybrid guest reads its export"
  vmt_umount "$W/m7"
  grep -q "vsock:7 via $sock connected as 127.64.0.7" "$log" || fail "the hybrid guest did not arrive as CID 7"
  vmt_note "two sockets with one CID (two Firecracker VMs left at CID 3), or a CID below 3: refused at start"
  vmt_capture "$BRIDGE" --unix "$W/fc1.vsock_2049=3" --unix "$W/fc2.vsock_2049=3" --status-file none
  assert_ne 0 "$VMT_RC" "two hybrid sockets with CID 3"
  assert_contains "$VMT_OUT" "both have CID 3" "two hybrid sockets with CID 3"
  vmt_capture "$BRIDGE" --unix "$W/h2.vsock_2049=2" --status-file none
  assert_ne 0 "$VMT_RC" "a hybrid socket with CID 2"
  assert_contains "$VMT_OUT" "a VM's CID is 3 or more" "a hybrid socket with CID 2"
}
vmt_part "6. hybrid vsock: a 0600 socket of the VMM's user, SO_PEERCRED, no shared or reserved CIDs" hybrid

files() {
  vmt_note "a symlink planted at etab's old temporary name is neither followed nor reused"
  echo victim > "$W/victim"
  ln -sfn "$W/victim" "$NFS_STATE_DIR/etab.tmp"
  echo "$R/world  127.0.0.1(ro,insecure)" >> /etc/exports
  vmt_run "$EXPORTFS" -ra
  assert_contains "$(cat "$NFS_STATE_DIR/etab")" "$R/world	127.0.0.1(ro," "exportfs wrote the new etab"
  assert_eq victim "$(cat "$W/victim")" "the symlink's target"
  [ -L "$NFS_STATE_DIR/etab.tmp" ] || fail "the planted symlink was replaced"
  rm -f "$NFS_STATE_DIR/etab.tmp"

  local other start real_pid
  sleep 600 &
  other=$!
  vmt_defer "kill $other 2>/dev/null"
  start=$(awk '{ print $22 }' "/proc/$other/stat")
  vmt_note "control bytes in the bridge's status file are not passed to the terminal"
  local status=/run/nfs-vsock-bridge/status
  read -r real_pid _ < /run/nfs-vsock-bridge.pid
  kill -STOP "$real_pid"   # or it would publish its own status over ours
  cp "$status" "$W/status.saved"
  sed -e "s/^pid .*/pid $other $start/" -e "s/^target .*/target 127.0.0.1:2049\x1b[2J\x1b]0;owned\x07/" "$W/status.saved" > "$status"
  vmt_capture "$NFSD" status
  assert_not_contains "$VMT_OUT" $'\x1b' "nfsd-control status prints no ESC from the status file"
  assert_contains "$VMT_OUT" '\033[2J' "nfsd-control status shows the control bytes escaped"
  cp "$W/status.saved" "$status"
  kill -CONT "$real_pid"

  vmt_note "a pid file naming another process (a reused pid): rpc.nfsd 0 signals nothing"
  echo "$other $((start + 1))" > /run/nfs-vsock-bridge.pid
  vmt_run "$NFSD" 0
  kill -0 "$other" || fail "rpc.nfsd 0 signalled a process that is not the bridge"
  echo "$other" > /run/nfs-vsock-bridge.pid
  vmt_capture "$NFSD" status
  assert_contains "$VMT_OUT" "without its start time" "status on a pid-only pid file"
  kill -0 "$other" || fail "status signalled the pid-only pid file's process"
  kill "$real_pid" 2>/dev/null || true
  rm -f /run/nfs-vsock-bridge.pid
}
vmt_part "7. files root writes: fresh temporary names, a verified pid file, escaped status" files

vmt_parts_end
vmt_step "ok"
