#!/usr/bin/env bash
# Installs everything the build, the tests and the VM harness need on a fresh
# Debian 12 machine. Idempotent: a second run only checks.
set -euo pipefail

APT_PACKAGES=(
  # C libraries the Swift targets link against
  libtirpc-dev libblkid-dev libsystemd-dev pkg-config make
  # systemd: systemd-analyze verify, and PID 1 of the install/units VM boot
  systemd file
  # the real-kernel harness: Debian's kernel under QEMU through virtme-ng
  qemu-system-x86 linux-image-amd64 busybox-static kmod e2fsprogs util-linux iproute2 socat procps python3 cpio
  # an unprivileged attacker's NFS client for the security scenarios (nfs-cat, nfs-ls)
  libnfs-utils
  # real peers: Debian's nfs-utils (reference exportfs, rpc.mountd, rpc.nfsd,
  # showmount, mount.nfs) and rpcbind
  nfs-common nfs-kernel-server rpcbind
  # benchmarks
  time
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's nfs-kernel-server starts its services on install where it can; we
# only want its binaries as a reference. Nothing to stop in a sandbox without
# systemd, but be explicit where systemd runs.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now nfs-server nfs-mountd rpcbind.socket rpcbind >/dev/null 2>&1 || true
fi

if ! command -v vng >/dev/null 2>&1; then
  echo "install-deps: installing virtme-ng"
  pip install -q virtme-ng
fi
echo "install-deps: ok"
