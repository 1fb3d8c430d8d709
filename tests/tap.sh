# TAP output for the CLI test scripts: source it, then `tap_plan N` and
# `check NAME COMMAND...` for each case (`bail REASON` fails the remaining
# cases and exits). tests/run.sh counts the "ok"/"not ok" lines.
N=0
k=0
tap_plan() { N=$1; echo "1..$N"; }
ok() { k=$((k + 1)); echo "ok $k - $1"; }
notok() { k=$((k + 1)); echo "not ok $k - $1"; shift; for l in "$@"; do echo "# $l"; done; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }
bail() { for ((i = k + 1; i <= N; i++)); do echo "not ok $i - $1"; done; exit 1; }

# For the scripts that drive build/selfsup on a corpus of the mirror: check
# both (failing every case with instructions otherwise), and make TMP, a
# scratch directory removed on exit. Usage: tap_needs CORPUS FILE NAME
tap_needs() {
  SS=${SELFSUP:-build/selfsup}
  MIRROR=${SELFSUP_DATA_MIRROR:-}
  [ -x "$SS" ] || bail "$SS not built (run make)"
  [ -n "$MIRROR" ] && [ -f "$MIRROR/$1/$2" ] ||
    bail "SELFSUP_DATA_MIRROR must point at the data mirror with $1/ (e.g. SELFSUP_DATA_MIRROR=../shared/data)"
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-$3.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
}
