#!/usr/bin/env bash
# Runs inside the VM when it boots systemd as PID 1 (integration/vm/run with
# VM_INIT=systemd), started by nfs-vsock-vmtest.service. virtme-ng-init does
# not run then, so this does its part: the read-write results share and
# writable overlays over the host's read-only root (as virtme-ng does for
# /etc, /usr, /var, ...), then guest-main.sh with the run's settings. Its
# output also goes to $RESULTS_DIR/guest-console.log, which the host reads
# (the serial console is systemd's too).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
env_file= share=
for a in $(cat /proc/cmdline); do
  case $a in
    nfsvsock.env=*) env_file=${a#nfsvsock.env=} ;;
    virtme_initmount0=*) share=/${a#virtme_initmount0=} ;;
  esac
done
[ -n "$env_file" ] && [ -n "$share" ] || { echo "systemd-runner: no nfsvsock.env= or virtme_initmount0= on the kernel command line"; exit 1; }
mkdir -p /run/vmt-overlay
mount -t tmpfs -o mode=0755 vmt-overlay /run/vmt-overlay
# Overlays first (an overlay hides mounts below its directory, and the repo
# or the results directory may well live under /tmp or /root), then the share.
for d in /etc /usr /var /root /home /srv /opt /tmp; do
  [ -d "$d" ] && ! [ -L "$d" ] || continue
  u=/run/vmt-overlay${d//\//_}
  mkdir -p "$u/upper" "$u/work"
  mount -t overlay -o "lowerdir=$d,upperdir=$u/upper,workdir=$u/work" vmt-overlay "$d" \
    || echo "systemd-runner: no overlay on $d"
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 virtme.initmount0 "$share" \
  || { echo "systemd-runner: cannot mount the results share on $share"; exit 1; }
echo "systemd-runner: PID 1 is $(cat /proc/1/comm); system state $(systemctl is-system-running 2>&1)" \
  | tee "$share/guest-console.log"
"$HERE/guest-main.sh" --env-file "$env_file" 2>&1 | tee -a "$share/guest-console.log"
rc=${PIPESTATUS[0]}
sync
exit "$rc"
