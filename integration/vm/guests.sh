# shellcheck shell=bash
# Real guests inside the test VM: nested QEMU (software emulation again)
# with vhost-vsock, each guest its own kernel and CID, booted from a minimal
# initramfs that holds only busybox, the static mount.vsock and Debian's
# modules for virtio, vsock and the NFS client: no nfs-utils, no network
# configuration, as the smallest guest a user may have. Sourced by lib.sh.
#
#   vmt_guest_start NAME CID SCRIPT [qemu args...]
#       builds NAME's initramfs (SCRIPT becomes /guest.sh; $VMT_GUEST_FILES,
#       "src:dest" pairs, are copied in too) and boots it in the background;
#       the guest's serial console goes to vmt_guest_console NAME (a file
#       with the run's results). Also read then: VMT_GUEST_MEMORY (MiB),
#       VMT_GUEST_CPUS and VMT_GUEST_MODULES (append to it for more
#       devices: modules.dep brings their dependencies; built-in ones are
#       skipped).
#   vmt_guest_wait NAME SECONDS
#       waits for the guest's script to end, prints its console (script
#       output only, "| " prefixed), sets VMT_GUEST_RC to its exit status.
#   vmt_guest_result NAME KEY
#       the last "@@result KEY VALUE" line the guest printed.
#   vmt_guest_wait_for NAME SECONDS PATTERN
#       waits until the guest's console has a line matching PATTERN.
#
# The guest's init mounts proc, sys, dev, loads the modules, sets the host
# name to NAME (NFSv4 clients of one server must have distinct owners: two
# guests named "(none)" would take over each other's state), runs
# /guest.sh with its output on the console and powers off. Its loopback
# is left down: mount.vsock must bring it up itself.
#
# Measured here (TCG inside TCG, two guests booting side by side, 6.1):
# /init runs about 125 s into the guest's boot, 230 s while the host also
# compiles (Debian's cloud kernel, tried too: 312 s). "-cpu max"
# (VMT_GUEST_CPU): Debian's 6.12 uses
# cmpxchg16b from the first allocations and double-faults on QEMU's default
# CPU model (qemu64 has no CX16); 6.1 boots on either. The guest boots its
# uncompressed kernel and initramfs (vmt_guest_image) with the crypto
# self-tests off (cryptomgr.notests: a fifth of its time to /init under one level of TCG).

VMT_GUEST_MEMORY=${VMT_GUEST_MEMORY:-448}
VMT_GUEST_CPUS=${VMT_GUEST_CPUS:-1}
VMT_GUEST_CPU=${VMT_GUEST_CPU:-max}

# The guests' kernel: VMT_GUEST_KVER, else Debian 12's own 6.1 (the
# generic flavour linux-image-amd64 installs), else the test VM's kernel.
# Not the newest by default: under TCG inside TCG, Debian's 6.12.117 with
# "-cpu max" double-faulted before its init in about one boot of two on
# loaded machines (CI and here, 2026-12-01), cleared only by booting it
# again; 6.1 has not, in any nested boot so far (scenario 70, guest-bench).
# Its modules come from /lib/modules/KVER of the test VM's root, which is
# the host's.
vmt_guest_kver() {
  local k
  if [ -n "${VMT_GUEST_KVER:-}" ]; then echo "$VMT_GUEST_KVER"; return; fi
  for k in $(ls -v /boot/vmlinuz-6.1.*-amd64 2>/dev/null | grep -v -e '-cloud-amd64$' -e '-rt-amd64$' | tac); do
    k=${k##*/vmlinuz-}
    [ -f "/lib/modules/$k/modules.dep" ] && { echo "$k"; return; }
  done
  uname -r
}

# vmt_guest_image KVER: what QEMU's -kernel boots. The uncompressed kernel
# (an ELF entered through its PVH note, extracted once per test VM boot by
# guest-vmlinux.py) when it can be had, else the bzImage: the guest then
# runs no decompressor, which under TCG inside TCG is a large part of its
# boot (one level of TCG here: 2.8 s against 6.2 s to /init).
vmt_guest_image() {
  local kver=$1 cache=${TMPDIR:-/tmp}/vmtest-guest-kernels
  local out=$cache/vmlinux-$kver
  if [ ! -e "$out" ] && [ ! -e "$out.none" ]; then
    mkdir -p "$cache"
    python3 "$(dirname "${BASH_SOURCE[0]}")/guest-vmlinux.py" "/boot/vmlinuz-$kver" "$out" >&2 || : > "$out.none"
  fi
  if [ -s "$out" ]; then echo "$out"; else echo "/boot/vmlinuz-$kver"; fi
}

# A guest's console: kept with the run's results (the scenario's work
# directory is emptied at its end).
vmt_guest_console() { echo "${RESULTS_DIR:-$VMT_WORK}/${VMT_NAME:-scenario}.guest-$1.console"; }
VMT_GUEST_HELPER=${VMT_GUEST_HELPER:-${GUEST_BIN_DIR:-$(dirname "${BASH_SOURCE[0]}")/../../.build/guest-static/release}/mount.vsock}
# Loaded in this order after their dependencies (modules.dep decides those).
VMT_GUEST_MODULES=(virtio_pci vmw_vsock_virtio_transport nfsv4)

# vmt_guest_module_files: the .ko paths (relative to /lib/modules/KVER) of
# the wanted modules and everything they depend on, dependencies first.
vmt_guest_module_files() {
  local kver=$1 m path
  shift
  local -A seen=()
  local order=()
  visit() {
    local rel=$1 dep
    [ -z "${seen[$rel]:-}" ] || return 0
    seen[$rel]=1
    for dep in $(awk -v m="$rel:" '$1 == m { $1 = ""; print }' "/lib/modules/$kver/modules.dep"); do visit "$dep"; done
    order+=("$rel")
  }
  for m in "$@"; do
    path=$(modinfo -k "$kver" -n "$m" 2>/dev/null) || { echo "vmt_guest_module_files: no module $m" >&2; return 1; }
    [[ "$path" == /lib/modules/* ]] || continue   # built in
    visit "${path#/lib/modules/$kver/}"
  done
  printf '%s\n' "${order[@]}"
}

# vmt_guest_initramfs NAME SCRIPT OUT
vmt_guest_initramfs() {
  local name=$1 script=$2 out=$3 kver dir f pair
  kver=$(vmt_guest_kver)
  dir=$VMT_WORK/guest-$name.root
  rm -rf "$dir"
  mkdir -p "$dir"/{bin,sbin,proc,sys,dev,tmp,mnt,lib/modules,etc}
  cp /bin/busybox "$dir/bin/busybox"
  [ -x "$VMT_GUEST_HELPER" ] || fail "no static mount.vsock at $VMT_GUEST_HELPER (make guest)"
  strip -o "$dir/sbin/mount.vsock" "$VMT_GUEST_HELPER"
  vmt_guest_module_files "$kver" "${VMT_GUEST_MODULES[@]}" > "$dir/modules.order"
  while read -r f; do
    mkdir -p "$dir/lib/modules/$(dirname "$f")"
    cp "/lib/modules/$kver/$f" "$dir/lib/modules/$f"
  done < "$dir/modules.order"
  cp "$script" "$dir/guest.sh"
  for pair in ${VMT_GUEST_FILES:-}; do cp "${pair%%:*}" "$dir/${pair#*:}"; done
  cat > "$dir/init" <<EOF2
#!/bin/busybox sh
/bin/busybox --install -s /bin
# Exported: mount(8) finds its helpers (mount.vsock) through it.
export PATH=/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o size=160m tmp /tmp
for m in \$(cat /modules.order); do insmod /lib/modules/\$m || echo "@@init: insmod \$m failed"; done
hostname $name
read -r up _ < /proc/uptime
# A line of its own: the console's reset sequences precede the first output.
echo
echo "@@guest-start \$up"
sh /guest.sh
echo "@@guest-exit \$?"
sync
poweroff -f
EOF2
  chmod 755 "$dir/init" "$dir/guest.sh"
  # Not compressed: inflating it would be the guest kernel's work.
  (cd "$dir" && find . | cpio -o -H newc --quiet) > "$out"
}

vmt_guest_start() { # NAME CID SCRIPT [qemu args...]
  local name=$1 cid=$2 script=$3 initrd=$VMT_WORK/guest-$1.cpio image
  shift 3
  [ -e /dev/vhost-vsock ] || modprobe vhost_vsock || fail "no vhost_vsock in the test VM"
  vmt_guest_initramfs "$name" "$script" "$initrd"
  image=$(vmt_guest_image "$(vmt_guest_kver)")
  vmt_note "guest $name: CID $cid, kernel $image, initramfs $(du -k "$initrd" | cut -f1) KiB, ${VMT_GUEST_MEMORY} MiB, $VMT_GUEST_CPUS CPU(s)"
  vmt_start_daemon "guest-$name" "$VMT_WORK/guest-$name.qemu.log" \
    qemu-system-x86_64 -cpu "$VMT_GUEST_CPU" -m "$VMT_GUEST_MEMORY" -smp "$VMT_GUEST_CPUS" -nographic -no-reboot -nodefaults \
      -serial "file:$(vmt_guest_console "$name")" \
      -kernel "$image" -initrd "$initrd" \
      -append "console=ttyS0 loglevel=1 panic=-1 edd=off mitigations=off cryptomgr.notests" \
      -device "vhost-vsock-pci,guest-cid=$cid" "$@"
}

# vmt_guest_started NAME CID SCRIPT SECONDS [qemu args...]: waits up to
# SECONDS for the guest's init (@@guest-start). A guest whose kernel
# panicked before it is booted again, at most twice, and the log says so:
# under TCG inside TCG, Debian's 6.12 has double-faulted in its first
# allocations (cmpxchg16b in __kmalloc) in one of two guests booted side by
# side, the other booting normally (CI, 2026-12-01); the kept console shows it.
vmt_guest_started() {
  local name=$1 cid=$2 script=$3 seconds=$4 attempt console pid deadline
  shift 4
  console=$(vmt_guest_console "$name")
  for attempt in 1 2 3; do
    pid=$(vmt_pid "guest-$name")
    deadline=$(( $(date +%s) + seconds ))
    until grep -q '@@guest-start' "$console" 2>/dev/null || vmt_pid_gone "$pid"; do
      [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${seconds}s waiting for guest $name to print '@@guest-start'"
      sleep 1
    done
    grep -q '@@guest-start' "$console" 2>/dev/null && return 0
    grep -q 'Kernel panic' "$console" 2>/dev/null || fail "guest $name's QEMU exited before its init ran: $(tr -d '\r' < "$console" | tail -n 5)"
    [ "$attempt" -lt 3 ] || fail "guest $name's kernel panicked before its init three times"
    cp "$console" "$console.panic$attempt"
    vmt_note "guest $name's kernel panicked before its init ran ($(tr -d '\r' < "$console" | grep -m 1 -o 'PANIC: [a-z ]*\|Kernel panic - [a-z ]*')); console kept as ${console##*/}.panic$attempt; booting it again"
    vmt_guest_start "$name" "$cid" "$script" "$@"
  done
}

vmt_guest_wait_for() { # NAME SECONDS PATTERN
  wait_for "$2" "guest $1 to print '$3'" grep -qE -- "$3" "$(vmt_guest_console "$1")"
}

vmt_guest_wait() { # NAME SECONDS
  local name=$1 console=$(vmt_guest_console "$1") pid
  pid=$(vmt_pid "guest-$name")
  local deadline=$(( $(date +%s) + $2 ))
  until grep -q '^@@guest-exit' "$console" 2>/dev/null; do
    if vmt_pid_gone "$pid"; then break; fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tr -d '\r' < "$console" | sed 's/^/  | /' | tail -n 40
      fail "guest $name did not finish within $2 s"
    fi
    sleep 1
  done
  printf -- '--- guest %s\n' "$name"
  tr -d '\r' < "$console" | sed 's/^/  | /'
  VMT_GUEST_RC=$(tr -d '\r' < "$console" | sed -n 's/^@@guest-exit \([0-9]*\)$/\1/p' | tail -n 1)
  [ -n "$VMT_GUEST_RC" ] || fail "guest $name ended without running its script to the end"
  wait_for 60 "guest $name's QEMU to exit" vmt_pid_gone "$pid"
}

vmt_guest_result() { # NAME KEY
  tr -d '\r' < "$(vmt_guest_console "$1")" | sed -n "s/^@@result $2 //p" | tail -n 1
}
