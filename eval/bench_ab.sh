#!/usr/bin/env bash
# Two settings of one bench_train flag side by side in one run (make
# bench-tiles, make bench-bias): training steps with FLAG A and FLAG B,
# everything else the same, alternating, RUNS runs of STEPS timed steps
# each, for each config (bench_train's arguments before the flag: "S", "M",
# "M --seq 1024 --batch 2", ...) and objective (OBJECTIVES, default clm
# mlm); the medians of tokens/s and their ratio A / B. PRECISION (auto)
# and THREADS (2) are passed on; the CPU, OpenBLAS's core and
# OPENBLAS_CORETYPE are printed with the table.
# usage: eval/bench_ab.sh NAME FLAG A B CONFIG...   (rows in eval/work/bench_NAME.jsonl)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 5 ] || { echo "usage: $0 NAME FLAG A B CONFIG..." >&2; exit 2; }
NAME=$1 FLAG=$2 A=$3 BV=$4; shift 4
RUNS=${RUNS:-5}; STEPS=${STEPS:-10}; THREADS=${THREADS:-2}; PRECISION=${PRECISION:-auto}
OBJECTIVES=${OBJECTIVES:-clm mlm}; B=${B:-build}
OUT=eval/work/bench_$NAME.jsonl
mkdir -p eval/work
: >"$OUT"
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); $(nproc) cores; threads $THREADS;" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; precision $PRECISION; $FLAG $A vs $BV;" \
  "$RUNS alternating runs x $STEPS timed steps; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$RUNS"); do
  for obj in $OBJECTIVES; do
    for cfg in "$@"; do
      for v in "$A" "$BV"; do
        # shellcheck disable=SC2086
        $B/bench_train $cfg --objective "$obj" --steps "$STEPS" --warmup 2 --threads "$THREADS" \
          --precision "$PRECISION" "$FLAG" "$v" | sed "s/^{/{\"side\":\"$v\",\"config_args\":\"$cfg\",/" | tee -a "$OUT"
      done
    done
  done
done
/usr/bin/python3 - "$OUT" "$FLAG" "$A" "$BV" <<'PY'
import json, statistics, sys
path, flag, a, b = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.startswith("{")]
print()
print("GEMM backend %s (precision %s), OpenBLAS core %s" % (rows[0]["gemm"], rows[0]["precision"], rows[0]["openblas_core"]))
print()
print("| objective | config | T | parameters (%s %s / %s) | tokens/s, %s %s | tokens/s, %s %s | %s / %s |" % (flag, a, b, flag, a, flag, b, a, b))
print("|---|---|---|---|---|---|---|")
keys = []
for r in rows:
    k = (r["objective"], r["config_args"], r["T"])
    if k not in keys: keys.append(k)
for obj, cfg, T in keys:
    side = {v: [r for r in rows if (r["objective"], r["config_args"], r["T"], r["side"]) == (obj, cfg, T, v)] for v in (a, b)}
    med = {v: statistics.median(r["tokens_per_s"] for r in side[v]) for v in (a, b)}
    print("| %s | %s | %d | %d / %d | %.0f | %.0f | %.3fx |" % (obj, cfg, T, side[a][0]["params"], side[b][0]["params"],
          med[a], med[b], med[a] / med[b]))
PY
