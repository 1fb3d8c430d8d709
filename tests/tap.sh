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

# For the scripts that drive build/selfsup on a corpus: check both (failing
# every case with instructions otherwise), and make TMP, a scratch directory
# removed on exit. The corpus is read from $MIRROR/CORPUS/: the data mirror
# $SELFSUP_DATA_MIRROR when set (CI), else corpora/cache, filled by
# `selfsup data get CORPUS` from the corpus's public origin.
# Usage: tap_needs CORPUS FILE NAME
tap_needs() {
  SS=${SELFSUP:-build/selfsup}
  MIRROR=${SELFSUP_DATA_MIRROR:-}
  [ -x "$SS" ] || bail "$SS not built (run make)"
  if [ -n "$MIRROR" ]; then
    [ -f "$MIRROR/$1/$2" ] ||
      bail "SELFSUP_DATA_MIRROR=$MIRROR (a directory laid out as NAME/FILE holding copies of the data sets) has no $1/$2: point it at a complete mirror (e.g. ../shared/data) or unset it to fetch $1 from its public origin"
  else
    local log
    log=$("$SS" data get "$1" --dest corpora/cache 2>&1 >/dev/null) ||
      bail "this test needs the '$1' corpus: SELFSUP_DATA_MIRROR is unset and '$SS data get $1' failed ($(printf '%s' "$log" | tail -1)). Run on a machine with internet, or set SELFSUP_DATA_MIRROR to a data mirror (a directory laid out as NAME/FILE holding copies of the data sets, e.g. ../shared/data)"
    MIRROR=$(pwd)/corpora/cache
  fi
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-$3.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
}
