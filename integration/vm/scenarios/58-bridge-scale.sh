#!/usr/bin/env bash
# 1,000 guests at once through one bridge (issue 14): the short form of
# bench/bridge-scale, with assertions. rpc.nfsd --vsock 2049 with every
# limit at its default starts the bridge, whose nfs.conf names 1,050
# hybrid-vsock sockets (one per VM, CIDs 3-1052); then
#   - 1,000 idle guests, each an NFSv4.1 client with one connection and
#     session (EXCHANGE_ID, CREATE_SESSION, then SEQUENCE + PUTROOTFH +
#     GETATTR every 10 s) hold their connections for 90 s: none is closed
#     by nfsd or the bridge, every call is answered, the kernel logs no
#     "too many open connections"; the bridge's per-guest RPC counts in
#     its status file add up to exactly the calls the guests made, each
#     answered, no error, every stream followed;
#   - the bridge's peak RSS meanwhile stays within 64 MiB, and its threads
#     are one per connection plus three: its 1,050 listeners share one
#     accept thread;
#   - meanwhile this kernel's NFS client (mount.vsock 1:/data, vsock
#     loopback) writes and reads 16 MiB and 50 small files;
#   - then 50 guests flood the bridge with connections for 20 s while that
#     client mounts afresh and copies 16 MiB in and out, checksums equal.
# The throughput ratios are printed, not asserted (emulation on a shared
# host); bench/bridge-scale measures them over 10 minutes.
set -euo pipefail
export BS_GUESTS=${BS_GUESTS:-1000} BS_SECONDS=${BS_SECONDS:-90} BS_INTERVAL=10 BS_ROUNDS=1 \
  BS_MIB=16 BS_FILES=50 BS_FLOODERS=50 BS_FLOOD_SECONDS=20 BS_ASSERT=1
exec bash "$(dirname "$0")/../../../bench/scale/60-bridge-scale.sh"
