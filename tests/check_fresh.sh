#!/usr/bin/env bash
# make check-fresh: the README's two commands, `make demo` and `make check`,
# run once each as a new user's first try on a fresh Debian 12 machine.
#
# 1. A minimal Debian 12 root (debootstrap --variant=minbase, plus what a user
#    starts from: build-essential, git, python3, ca-certificates) is built once
#    and cached as a tarball in $FRESH_CACHE (default .cache/fresh, git-ignored).
# 2. Every run unpacks a pristine copy of it, so nothing installed by an
#    earlier run is there: the Makefile's dependency step must install it all.
# 3. This working tree goes in as a user's clone: `git clone` of this
#    repository plus the uncommitted changes of the working tree (tracked and
#    untracked files that git does not ignore), never build products.
# 4. The data mirror ($SELFSUP_DATA_MIRROR, default ../shared/data) is bound
#    read-only at /data and SELFSUP_DATA_MIRROR=/data is set, as CI does.
# 5. `make demo`, then `make check`, each once, as root in a chroot (the host's
#    /proc, /dev and network); logs in $FRESH_CACHE/logs/. Passes when both
#    exit 0 and make check's last line says "0 failed".
# Needs root (debootstrap, mount, chroot) and Debian's package servers.
# FRESH_KEEP=1 keeps the unpacked root for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
CACHE=${FRESH_CACHE:-.cache/fresh}
SUITE=bookworm
DEBIAN_URL=${DEBIAN_URL:-http://deb.debian.org/debian}
DATA=${SELFSUP_DATA_MIRROR:-../shared/data}
say() { printf 'check-fresh: %s\n' "$*"; }
die() { printf 'check-fresh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, mount and chroot); run it as root or with sudo"
[ -d "$DATA" ] || die "the data mirror $DATA does not exist: set SELFSUP_DATA_MIRROR to a directory of the data sets (laid out NAME/FILE, see corpora/README.md)"
DATA=$(cd "$DATA" && pwd)
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# ---- 1. the cached pristine root -------------------------------------------------
BASE=$CACHE/debian12-minbase.tar
if [ ! -s "$BASE" ]; then
  say "building a minimal Debian 12 root with debootstrap (once; cached in $BASE)"
  rm -rf "$CACHE/base.tmp"
  debootstrap --variant=minbase --include=build-essential,git,python3,ca-certificates \
    "$SUITE" "$CACHE/base.tmp" "$DEBIAN_URL" >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $CACHE/debootstrap.log"
  tar -C "$CACHE/base.tmp" -cf "$BASE.part" . && mv "$BASE.part" "$BASE"
  rm -rf "$CACHE/base.tmp"
fi

# ---- 2. a pristine copy, with /proc, /dev and the data mirror --------------------
ROOT=$CACHE/root
# Never delete the root while anything is still mounted inside it (the host's
# /dev is bound there): remove it only when /proc/mounts lists nothing below it.
unmount_all() {
  local m
  for m in $(awk -v r="$ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  ! awk -v r="$ROOT/" 'index($2, r) == 1 {found = 1} END {exit !found}' /proc/mounts
}
remove_root() {
  if unmount_all; then rm -rf "$ROOT"; else say "not removing $ROOT: something is still mounted inside it"; return 1; fi
}
cleanup() { if [ "${FRESH_KEEP:-0}" = 1 ]; then unmount_all || true; else remove_root || true; fi; }
trap cleanup EXIT
remove_root || die "cannot clear $ROOT"
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$BASE"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The network's trust anchors: certificate authorities this host added
# locally (e.g. a TLS-intercepting egress proxy's) are part of the network a
# user of this machine is on, not of the project, so the root trusts them too
# (without them npm's registry fails with SELF_SIGNED_CERT_IN_CHAIN).
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" /usr/sbin/update-ca-certificates >/dev/null 2>&1 || say "update-ca-certificates failed in the root"
fi
mount -t proc proc "$ROOT/proc"
mount --rbind /dev "$ROOT/dev" && mount --make-rslave "$ROOT/dev"
mkdir -p "$ROOT/data"
mount --bind "$DATA" "$ROOT/data"
mount -o remount,bind,ro "$ROOT/data" || true

# ---- 3. the project as a user's clone of this working tree -----------------------
say "cloning $SRC (with its uncommitted changes) into the fresh root at /root/selfsup"
git clone -q "$SRC" "$ROOT/root/selfsup"
git ls-files -z --deleted | (cd "$ROOT/root/selfsup" && xargs -0 -r rm -f --)
git ls-files -z --modified --others --exclude-standard | tar --null -T - -cf - | tar -C "$ROOT/root/selfsup" -xf -

# ---- 4. the README's two commands, once each --------------------------------------
LOGS=$CACHE/logs
mkdir -p "$LOGS"
# A new user's environment: a login shell's PATH, no variables of this machine
# but the OpenBLAS ones it sets for its CPU (see README: never change them).
ENVV=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
      SELFSUP_DATA_MIRROR=/data)
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do [ -n "${!v:-}" ] && ENVV+=("$v=${!v}"); done
run() { # NAME COMMAND: run in the root, log, report time and status
  local name=$1 t0 rc; shift
  say "$name: running '$*' in the fresh root (log: $LOGS/$name.log)"
  t0=$(date +%s)
  set +e
  chroot "$ROOT" /usr/bin/env -i "${ENVV[@]}" /bin/sh -c "cd /root/selfsup && $*" </dev/null >"$LOGS/$name.log" 2>&1
  rc=$?
  set -e
  say "$name: exit status $rc after $(( $(date +%s) - t0 )) s; last lines:"
  tail -n 4 "$LOGS/$name.log" | sed 's/^/    /'
  return $rc
}
status=0
run demo make demo || status=1
run check make check || status=1
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGS/check.log" | tail -n 1)
if ! [[ $summary =~ ^[0-9]+\ passed,\ 0\ failed ]]; then
  say "make check did not report 'N passed, 0 failed' (its summary: ${summary:-none})"
  status=1
fi
[ $status -eq 0 ] && say "passed: make demo and make check work on a fresh Debian 12 root, first try" ||
  say "FAILED (logs in $LOGS/)"
exit $status
