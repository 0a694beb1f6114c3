#!/usr/bin/env bash
# Installs or uninstalls nfs-vsock (called by `make install` / `make uninstall`).
#
#   scripts/install.sh install     copy the built programs, man pages, systemd
#                                  units and examples under $DESTDIR
#   scripts/install.sh uninstall   remove exactly what install added
#   scripts/install.sh list        print what install would add
#
# Variables (make passes them; defaults in brackets):
#   DESTDIR [empty]  PREFIX [/usr/local]  SBINDIR [$PREFIX/sbin]
#   MANDIR [$PREFIX/share/man]  UNITDIR [$PREFIX/lib/systemd/system]
#   GENERATORDIR [$PREFIX/lib/systemd/system-generators]
#   MOUNTHELPERDIR [/sbin: where mount(8) looks for mount.vsock]
#   DOCDIR [$PREFIX/share/doc/nfs-vsock]  SYSCONFDIR [/etc]
#   BUILD_DIR [.build/release]  GUEST_BUILD_DIR [.build/guest-static/release]
#
# Every path install creates is recorded in $PREFIX/share/nfs-vsock/manifest;
# uninstall reads it. /etc/exports and /etc/nfs.conf are installed only where
# absent (from etc/ of this tree, all commented out) and removed by uninstall
# only if still unchanged. Nothing is built here: run `make` first.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
MANDIR=${MANDIR:-$PREFIX/share/man}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
GENERATORDIR=${GENERATORDIR:-$PREFIX/lib/systemd/system-generators}
MOUNTHELPERDIR=${MOUNTHELPERDIR:-/sbin}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/nfs-vsock}
SYSCONFDIR=${SYSCONFDIR:-/etc}
DATADIR=$PREFIX/share/nfs-vsock
MANIFEST=$DATADIR/manifest
BUILD_DIR=${BUILD_DIR:-$REPO/.build/release}
GUEST_BUILD_DIR=${GUEST_BUILD_DIR:-$REPO/.build/guest-static/release}

die() { echo "install: $*" >&2; exit 1; }
# Writes standard input to $1 (mode $2) through a fresh mktemp(1) name
# beside it (O_EXCL: never a file or symlink planted at a fixed name), then
# renames; on failure the temporary file goes.
replace_file() {
  local tmp
  tmp=$(mktemp "$1.tmp.XXXXXXXX") || die "mktemp beside $1 failed"
  if cat > "$tmp" && chmod "$2" "$tmp" && mv -fT "$tmp" "$1"; then return 0; fi
  rm -f "$tmp"
  die "cannot write $1"
}
for v in PREFIX SBINDIR MANDIR UNITDIR GENERATORDIR MOUNTHELPERDIR DOCDIR SYSCONFDIR; do
  case ${!v} in /*) ;; *) die "$v must be an absolute path, got '${!v}'" ;; esac
done

# ---------------------------------------------------------------- the plan
# One line per item: KIND TARGET SOURCE [MODE]; KIND is file, link
# (SOURCE = link text), unit (SOURCE is a unit template: @SBINDIR@ replaced)
# or conf (installed only where absent).
plan() {
  local p
  for p in exportfs mountd nfsd-control nfs-vsock-bridge; do
    echo "file $SBINDIR/$p $BUILD_DIR/$p 755"
  done
  echo "link $SBINDIR/rpc.mountd mountd"
  echo "link $SBINDIR/rpc.nfsd nfsd-control"
  echo "file $MOUNTHELPERDIR/mount.vsock $GUEST_BUILD_DIR/mount.vsock 755"
  # The same static helper, to copy into guests.
  echo "file $DATADIR/guest/mount.vsock $GUEST_BUILD_DIR/mount.vsock 755"
  echo "link $GENERATORDIR/nfs-vsock-generator $SBINDIR/nfsd-control"
  for p in "$REPO"/man/*.[58]; do
    echo "file $MANDIR/man${p##*.}/${p##*/} $p 644"
  done
  for p in "$REPO"/systemd/*; do
    local name=${p##*/}
    echo "unit $UNITDIR/${name%.in} $p 644"
  done
  echo "file $DOCDIR/README.md $REPO/README.md 644"
  echo "file $DOCDIR/examples/exports $REPO/etc/exports 644"
  echo "file $DOCDIR/examples/nfs.conf $REPO/etc/nfs.conf 644"
  echo "file $DOCDIR/examples/qemu-hook $REPO/etc/libvirt/qemu-hook 755"
  echo "conf $SYSCONFDIR/exports $REPO/etc/exports 644"
  echo "conf $SYSCONFDIR/nfs.conf $REPO/etc/nfs.conf 644"
  echo "conf $SYSCONFDIR/logrotate.d/nfs-vsock-bridge $REPO/etc/logrotate.d/nfs-vsock-bridge 644"
}

checksum() { sha256sum "$1" | cut -d' ' -f1; }

# Manifest lines, written once install is complete.
manifest=()

# mkdir -p that records each directory it creates.
make_parents() {
  local dir=$1 missing=() d
  while [ "$dir" != / ] && [ ! -d "$DESTDIR$dir" ]; do missing=("$dir" "${missing[@]}"); dir=$(dirname "$dir"); done
  for d in "${missing[@]}"; do
    mkdir -m 755 "$DESTDIR$d"
    manifest+=("dir $d")
  done
}

do_install() {
  local kind target source mode
  [ -z "$DESTDIR" ] || mkdir -p "$DESTDIR"
  # Check every source first: a half install helps nobody.
  while read -r kind target source mode; do
    case $kind in
      file|unit|conf) [ -f "$source" ] || die "$source is missing (run make first)" ;;
    esac
  done < <(plan)
  if ldd "$BUILD_DIR/mountd" 2>/dev/null | grep -q libswiftCore; then
    echo "install: warning: $BUILD_DIR was built without --static-swift-stdlib; the installed programs need the Swift runtime (run make)" >&2
  fi
  if [ -f "$DESTDIR$MANIFEST" ]; then
    echo "install: replacing an earlier install ($DESTDIR$MANIFEST)"
    do_uninstall quiet
  fi
  while read -r kind target source mode; do
    make_parents "$(dirname "$target")"
    case $kind in
      file)
        install -m "$mode" "$source" "$DESTDIR$target"
        manifest+=("file $target") ;;
      link)
        ln -sfn "$source" "$DESTDIR$target"
        manifest+=("link $target") ;;
      unit)
        sed -e "s|@SBINDIR@|$SBINDIR|g" "$source" | replace_file "$DESTDIR$target" "$mode"
        manifest+=("file $target") ;;
      conf)
        if [ -e "$DESTDIR$target" ]; then
          echo "install: keeping the existing $DESTDIR$target (example: $DOCDIR/examples/${target##*/})"
        else
          install -m "$mode" "$source" "$DESTDIR$target"
          manifest+=("conf $target $(checksum "$DESTDIR$target")")
        fi ;;
    esac
    echo "  $kind $DESTDIR$target"
  done < <(plan)
  make_parents "$DATADIR"
  manifest+=("file $MANIFEST")
  printf '%s\n' "${manifest[@]}" | replace_file "$DESTDIR$MANIFEST" 644
  echo "install: done; $(grep -c . "$DESTDIR$MANIFEST") entries in $DESTDIR$MANIFEST"
  if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    echo "install: now: systemctl daemon-reload; systemctl enable --now nfs-server"
  fi
}

do_uninstall() {
  local quiet=${1:-}
  [ -f "$DESTDIR$MANIFEST" ] || die "nothing to uninstall: no $DESTDIR$MANIFEST"
  local kind target sum
  # Reverse order: files before the directories that hold them.
  tac "$DESTDIR$MANIFEST" | while read -r kind target sum; do
    case $kind in
      file|link)
        rm -f "$DESTDIR$target"
        [ -n "$quiet" ] || echo "  removed $DESTDIR$target" ;;
      conf)
        if [ -f "$DESTDIR$target" ] && [ "$(checksum "$DESTDIR$target")" == "$sum" ]; then
          rm -f "$DESTDIR$target"
          [ -n "$quiet" ] || echo "  removed $DESTDIR$target"
        elif [ -e "$DESTDIR$target" ]; then
          echo "uninstall: keeping $DESTDIR$target: changed since install"
        fi ;;
      dir)
        rmdir "$DESTDIR$target" 2>/dev/null && { [ -n "$quiet" ] || echo "  removed $DESTDIR$target/"; } \
          || echo "uninstall: keeping $DESTDIR$target/: not empty"
        ;;
    esac
  done
  [ -n "$quiet" ] || echo "uninstall: done"
}

case ${1:-} in
  install) do_install ;;
  uninstall) do_uninstall ;;
  list) plan | while read -r kind target source mode; do echo "$kind $DESTDIR$target"; done ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -euo/d' ;;
  *) echo "usage: scripts/install.sh install|uninstall|list" >&2; exit 2 ;;
esac
