# shellcheck shell=bash
# Sandbox for running an exportfs binary against one exports file.
#
# sandbox_run EXPORTFS EXPORTS_FILE FRAGMENT_DIR OUTDIR [exportfs args...]
#
# Runs `EXPORTFS <args>` (default: -ra) inside a private mount namespace
# (unshare -m --propagation private), so nothing on the host changes:
#   - /etc is an overlay (tmpfs upper) over the real /etc; in it we write
#       /etc/exports       := EXPORTS_FILE (byte copy)
#       /etc/exports.d/    := empty, or a copy of FRAGMENT_DIR if it exists
#       /etc/hosts         += lib/hosts (fixed test host names)
#       /etc/nsswitch.conf    hosts: files only, so no run waits for DNS and
#                             unresolvable names fail the same way everywhere
#   - /var/lib/nfs is a fresh tmpfs holding an empty etab and rmtab (the
#     state of a fresh Debian install);
#   - /srv is a fresh tmpfs with the directories the exports file names
#     (see sandbox_mkdirs) plus a fixed skeleton (symlink, nested mount);
#   - /proc/fs/nfsd and /proc/net/rpc, if present, are hidden under empty
#     tmpfs mounts, so even on a host running nfsd neither binary can talk to
#     the kernel: we only compare parsing and the etab they write.
# Writes to OUTDIR: rc, stdout, stderr, etab (copy of /var/lib/nfs/etab, or
# absent if none), varlib.ls (names left in /var/lib/nfs).

SANDBOX_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The script run inside the namespace. Arguments arrive via environment.
# shellcheck disable=SC2016
SANDBOX_INNER='
set -euo pipefail
scratch=$SB_OUT/.ns
mkdir -p "$scratch"
mount -t tmpfs -o mode=0755 sandbox "$scratch"
mkdir "$scratch/up" "$scratch/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$scratch/up,workdir=$scratch/work" /etc
rm -rf /etc/exports.d
mkdir /etc/exports.d
if [[ -n "$SB_FRAG" && -d "$SB_FRAG" ]]; then
    cp -a "$SB_FRAG"/. /etc/exports.d/
fi
rm -f /etc/exports
cp "$SB_FILE" /etc/exports
cat "$SB_LIB/hosts" >> /etc/hosts
if [[ -f /etc/nsswitch.conf ]]; then
    sed -i -e "s/^hosts:.*/hosts: files/" /etc/nsswitch.conf
else
    echo "hosts: files" > /etc/nsswitch.conf
fi
[[ -d /var/lib/nfs ]] || { echo "sandbox: /var/lib/nfs missing (install nfs-kernel-server)" >&2; exit 99; }
mount -t tmpfs -o mode=0755 sandbox /var/lib/nfs
: > /var/lib/nfs/etab
: > /var/lib/nfs/rmtab
[[ -d /srv ]] || { echo "sandbox: /srv missing" >&2; exit 99; }
mount -t tmpfs -o mode=0755 sandbox /srv
# fixed skeleton
mkdir -p /srv/target /srv/mnt
ln -s /srv/target /srv/link
mount -t tmpfs -o mode=0755 sandbox /srv/mnt
mkdir -p /srv/mnt/sub
# directories named by the exports file(s)
while IFS= read -r -d "" d; do
    case "$d" in
        /srv/missing*|/nonexistent*) ;;
        /srv/*) mkdir -p -- "$d" ;;
    esac
done < "$SB_OUT/.dirs"
if [[ -d /proc/fs/nfsd ]]; then mount -t tmpfs -o ro sandbox /proc/fs/nfsd; fi
if [[ -d /proc/net/rpc ]]; then mount -t tmpfs -o ro sandbox /proc/net/rpc; fi
cd /
set +e
# shellcheck disable=SC2086
"$SB_BIN" $SB_ARGS > "$SB_OUT/stdout" 2> "$SB_OUT/stderr"
echo $? > "$SB_OUT/rc"
set -e
if [[ -e /var/lib/nfs/etab ]]; then cp /var/lib/nfs/etab "$SB_OUT/etab"; fi
(cd /var/lib/nfs && ls -A) > "$SB_OUT/varlib.ls"
'

# Print, NUL-separated, the export paths named in the given exports files:
# the first token of every logical line (after joining "\" continuations),
# with double quotes removed and \ooo octal escapes decoded. Good enough to
# create the directories; it is not a parser under test.
sandbox_paths() {
    local f line tok
    for f in "$@"; do
        [[ -f "$f" ]] || continue
        sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' -- "$f" | while IFS= read -r line || [[ -n "$line" ]]; do
            line="${line#"${line%%[![:space:]]*}"}"
            [[ -z "$line" || "$line" == \#* ]] && continue
            if [[ "$line" == \"* ]]; then
                tok="${line#\"}"; tok="${tok%%\"*}"
            else
                tok="${line%%[[:space:]]*}"
            fi
            # \ooo -> byte (printf %b wants \0ooo)
            tok=$(printf '%s' "$tok" | sed -e 's/\\\([0-7][0-7][0-7]\)/\\0\1/g')
            printf '%b\0' "$tok"
        done
    done
}

sandbox_run() {
    local bin=$1 file=$2 frag=$3 out=$4
    shift 4
    local args="${*:--ra}"
    rm -rf "$out"
    mkdir -p "$out"
    local frags=()
    if [[ -n "$frag" && -d "$frag" ]]; then
        frags=("$frag"/*)
    fi
    sandbox_paths "$file" "${frags[@]}" > "$out/.dirs"
    SB_BIN=$bin SB_FILE=$file SB_FRAG=$frag SB_OUT=$out SB_ARGS=$args SB_LIB=$SANDBOX_LIB_DIR \
        unshare -m --propagation private bash -c "$SANDBOX_INNER" || {
            local rc=$?
            echo "sandbox: namespace setup failed (rc=$rc)" >&2
            return 2
        }
    rm -rf "$out/.ns" "$out/.dirs"
    [[ -f "$out/rc" ]] || { echo "sandbox: exportfs did not run" >&2; return 2; }
}
