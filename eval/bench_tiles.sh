#!/usr/bin/env bash
# make bench-tiles: attention's fp32 tiles (the 64 x 64 x head-size products
# inside attention's OpenMP tasks) through selfsup's own AVX-512 kernel
# (src/nn/tile_f32.c) against OpenBLAS's sgemm, side by side in one run:
# bench_train's training steps with --precision fp32 (the faster f32 GEMM
# backend by the probe) and --tiles own vs --tiles openblas, everything else
# the same, alternating, RUNS runs of STEPS timed steps each; medians and
# their ratio. Configs S (T 128) and M (T 256) of make bench-train, and M at
# T 1024 (batch 2), where attention's share of a step is larger; the clm
# decoder and the mlm encoder. The CPU, OpenBLAS's core (on a CPU its table
# does not know, OpenBLAS runs its SSE3 "Prescott" kernels) and
# OPENBLAS_CORETYPE are printed with the table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}; STEPS=${STEPS:-10}; THREADS=${THREADS:-2}
B=${B:-build}
OUT=eval/work/bench_tiles.jsonl
mkdir -p eval/work
: >"$OUT"
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); $(nproc) cores; threads $THREADS;" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; $RUNS alternating runs x $STEPS timed steps; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$RUNS"); do
  for obj in clm mlm; do
    for cfg in "S" "M" "M --seq 1024 --batch 2"; do
      for tiles in own openblas; do
        # shellcheck disable=SC2086
        $B/bench_train $cfg --objective $obj --steps "$STEPS" --warmup 2 --threads "$THREADS" --precision fp32 \
          --tiles $tiles | tee -a "$OUT"
      done
    done
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print()
print("GEMM backend %s, OpenBLAS core %s" % (rows[0]["gemm"], rows[0]["openblas_core"]))
print()
print("| objective | config | T | tokens/s, own fp32 tiles | tokens/s, OpenBLAS tiles | own / OpenBLAS |")
print("|---|---|---|---|---|---|")
keys = []
for r in rows:
    k = (r["objective"], r["config"], r["T"])
    if k not in keys: keys.append(k)
for obj, cfg, T in keys:
    med = {t: statistics.median(r["tokens_per_s"] for r in rows
                                if (r["objective"], r["config"], r["T"], r["tiles"]) == (obj, cfg, T, t))
           for t in ("own", "openblas")}
    print("| %s | %s | %d | %.0f | %.0f | %.2fx |" % (obj, cfg, T, med["own"], med["openblas"], med["own"] / med["openblas"]))
PY
