#!/usr/bin/env bash
# The GEMM probe kept across commands (src/cli/gemm_cache.c), printing TAP:
# the first command measures and writes the cache file, the next reads it;
# the file's measurements decide --precision auto (peaks edited by hand make
# OpenBLAS or oneDNN the faster f32 backend, and the choice follows);
# a damaged, oversized or foreign file is measured again and replaced;
# SELFSUP_GEMM_PROBE=fresh measures again, =off writes nothing, a bad value
# exits 2 naming it; an unwritable cache directory is not an error; a probe
# that had too little of the cores' time is not kept (unless fresh). The
# busy rule is set by SELFSUP_GEMM_PROBE_MIN_SHARE: 0 here (every probe
# kept, so the cases hold on a loaded machine too), 1.5 (none can be) for
# the busy case.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 12
SS=${SELFSUP:-build/selfsup}
[ -x "$SS" ] || bail "$SS not built (run make)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-gemm-cache.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# a tiny decoder on made-up text: the commands below only need a model
for i in $(seq 1 400); do echo "the cat $i sat on the mat and the dog $((i * 7 % 13)) ran to the park"; done >"$TMP/text.txt"
C="$TMP/cache"
export SELFSUP_CACHE_DIR="$C"
export SELFSUP_GEMM_PROBE_MIN_SHARE=0
unset SELFSUP_GEMM_PROBE
"$SS" tokenizer train --vocab-size 300 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary line "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" pretrain --objective clm --data "$TMP/shards" --out "$TMP/run" --layers 1 --d-model 32 --heads 2 --seq 32 \
    --max-seq 32 --batch 4 --steps 2 --eval-every 0 --threads 2 >"$TMP/pre.out" 2>"$TMP/pre.err" ||
  bail "could not train a tiny decoder: $(tail -2 "$TMP/pre.err")"
cache_file() { ls "$C"/gemm-probe-*.json 2>/dev/null | head -1; }
F=$(cache_file)
check "the first command measures and keeps the probe (key, time, peaks per backend)" \
  bash -c "grep -q 'GEMM probe: measured now, kept in $C/gemm-probe-' '$TMP/pre.err' && [ -n '$F' ] &&
           /usr/bin/python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))
assert \"threads 2\" in j[\"key\"] and j[\"measured\"] and j[\"peaks\"][\"openblas-f32\"] > 0' '$F'"

G=("$SS" generate --model "$TMP/run" --prompt "the cat" --max-new-tokens 3 --temperature 0 --stats --threads 2)
"${G[@]}" >"$TMP/g1" 2>"$TMP/g1.err"
check "the next command reads it (naming the file and when it was measured)" \
  grep -q "GEMM probe: measured [0-9T:-]*Z, read from $F " "$TMP/g1.err"

# The file decides: OpenBLAS made 10x oneDNN f32, bf16 unmeasured -> openblas-f32
set_peaks() {
  /usr/bin/python3 -c 'import json, sys; p = sys.argv[1]; j = json.load(open(p))
j["peaks"].update({"openblas-f32": float(sys.argv[2]), "onednn-f32": float(sys.argv[3]), "onednn-bf16": float(sys.argv[4])})
json.dump(j, open(p, "w"))' "$F" "$@"
}
set_peaks 1000 100 0
"${G[@]}" >"$TMP/g2" 2>"$TMP/g2.err"
check "peaks edited in the file decide --precision auto: OpenBLAS 10x faster is taken" \
  bash -c "grep -q 'precision: fp32 matrix products through openblas-f32' '$TMP/g2.err' && grep -q 'openblas-f32 1000' '$TMP/g2.err'"
set_peaks 100 1000 0
"${G[@]}" >"$TMP/g3" 2>"$TMP/g3.err"
if grep -q "onednn-f32 1000" "$TMP/g3.err"; then
  check "... and oneDNN f32 10x faster is taken" grep -q 'precision: fp32 matrix products through onednn-f32' "$TMP/g3.err"
else # oneDNN f32 unavailable here (no AVX2): its cached peak counts as 0
  check "... and oneDNN f32, unavailable on this CPU, is not taken whatever the file says" \
    grep -q 'precision: fp32 matrix products through openblas-f32' "$TMP/g3.err"
fi

printf 'not json {' >"$F"
"${G[@]}" >"$TMP/g4" 2>"$TMP/g4.err"
check "a damaged file is not used: measured again and replaced by a valid one" \
  bash -c "grep -q 'GEMM probe: $F not used (not JSON): measuring again' '$TMP/g4.err' &&
           /usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))[\"peaks\"]' '$F'"

/usr/bin/python3 -c 'import json, sys; p = sys.argv[1]; j = json.load(open(p)); j["key"] = "cpu another one"; json.dump(j, open(p, "w"))' "$F"
"${G[@]}" >/dev/null 2>"$TMP/g5.err"
/usr/bin/python3 -c 'import json, sys; p = sys.argv[1]; j = json.load(open(p)); j["measured"] = "\u001b[2Jyesterday"; json.dump(j, open(p, "w"))' "$F"
"${G[@]}" >/dev/null 2>"$TMP/g5b.err"
head -c 70000 /dev/zero | tr '\0' ' ' >>"$F"
"${G[@]}" >/dev/null 2>"$TMP/g6.err"
check "a file from another setup, with a time that is not one, or of 70 KB, is measured again" \
  bash -c "grep -q 'not used (made on another machine or setup (its key: cpu another one))' '$TMP/g5.err' &&
           grep -q 'not used (\"measured\": expected a UTC time' '$TMP/g5b.err' && ! grep -q yesterday '$TMP/g5b.err' &&
           grep -q 'not used (not a regular file of at most 65536 bytes)' '$TMP/g6.err' && [ \$(wc -c <'$F') -lt 4096 ]"

SELFSUP_GEMM_PROBE=fresh "${G[@]}" >/dev/null 2>"$TMP/g7.err"
check "SELFSUP_GEMM_PROBE=fresh measures again and keeps the new measurement" \
  grep -q "GEMM probe: measured now, kept in $F" "$TMP/g7.err"
SELFSUP_CACHE_DIR="$TMP/off" SELFSUP_GEMM_PROBE=off "${G[@]}" >"$TMP/g8" 2>"$TMP/g8.err"
check "SELFSUP_GEMM_PROBE=off neither reads nor writes a cache" \
  bash -c "[ ! -e '$TMP/off' ] && ! grep -q 'GEMM probe:' '$TMP/g8.err' && grep -q 'GEMM peaks' '$TMP/g8.err' && [ -s '$TMP/g8' ]"
SELFSUP_GEMM_PROBE=sometimes "${G[@]}" >/dev/null 2>"$TMP/g9.err"
rc=$?
check "SELFSUP_GEMM_PROBE=sometimes: exit 2 naming the variable and its values" \
  bash -c "[ $rc -eq 2 ] && grep -q 'SELFSUP_GEMM_PROBE=sometimes: expected cache (the default), fresh or off' '$TMP/g9.err'"
: >"$TMP/afile"
SELFSUP_CACHE_DIR="$TMP/afile/cache" "${G[@]}" >"$TMP/g10" 2>"$TMP/g10.err"
rc=$?
check "a cache directory that cannot be made: the command works, measured now, says it was not kept" \
  bash -c "[ $rc -eq 0 ] && grep -q 'GEMM probe: measured now, not kept' '$TMP/g10.err' && [ -s '$TMP/g10' ]"

SELFSUP_CACHE_DIR="$TMP/busy" SELFSUP_GEMM_PROBE_MIN_SHARE=1.5 "${G[@]}" >"$TMP/g11" 2>"$TMP/g11.err"
SELFSUP_CACHE_DIR="$TMP/busy" SELFSUP_GEMM_PROBE_MIN_SHARE=1.5 SELFSUP_GEMM_PROBE=fresh "${G[@]}" >/dev/null 2>"$TMP/g12.err"
check "a probe with too little of the cores' time is not kept (saying so); fresh keeps it anyway" \
  bash -c "grep -q 'GEMM probe: measured now, not kept: the machine is busy (the probe had [0-9]*% of 2 threads' '$TMP/g11.err' &&
           [ -s '$TMP/g11' ] && grep -q 'GEMM probe: measured now, kept in $TMP/busy/gemm-probe-' '$TMP/g12.err'"
SELFSUP_GEMM_PROBE_MIN_SHARE=most "${G[@]}" >/dev/null 2>"$TMP/g13.err"
rc=$?
check "SELFSUP_GEMM_PROBE_MIN_SHARE=most: exit 2 naming the variable" \
  bash -c "[ $rc -eq 2 ] && grep -q 'SELFSUP_GEMM_PROBE_MIN_SHARE=most: expected a number from 0 to 2' '$TMP/g13.err'"
