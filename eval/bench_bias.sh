#!/usr/bin/env bash
# make bench-bias: training steps of a model with and without the body's
# biases (pretrain --no-bias, Cramming's lever), side by side in one run:
# bench_train --bias 1 vs --bias 0, everything else the same (the GEMM
# backend by the probe, selfsup's own tiles), alternating, RUNS runs of
# STEPS timed steps each; medians and their ratio. Configs S (T 128) and M
# (T 256) of make bench-train, the clm decoder and the mlm encoder. The CPU
# and OPENBLAS_CORETYPE are printed with the table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}; STEPS=${STEPS:-10}; THREADS=${THREADS:-2}; PRECISION=${PRECISION:-auto}
B=${B:-build}
OUT=eval/work/bench_bias.jsonl
mkdir -p eval/work
: >"$OUT"
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); $(nproc) cores; threads $THREADS;" \
  "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}; precision $PRECISION; $RUNS alternating runs x $STEPS timed steps;" \
  "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$RUNS"); do
  for obj in clm mlm; do
    for cfg in S M; do
      for bias in 1 0; do
        $B/bench_train $cfg --objective $obj --steps "$STEPS" --warmup 2 --threads "$THREADS" \
          --precision "$PRECISION" --bias $bias | tee -a "$OUT"
      done
    done
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print()
print("GEMM backend %s (precision %s)" % (rows[0]["gemm"], rows[0]["precision"]))
print()
print("| objective | config | T | parameters with / without | tokens/s with biases | tokens/s without | without / with |")
print("|---|---|---|---|---|---|---|")
keys = []
for r in rows:
    k = (r["objective"], r["config"], r["T"])
    if k not in keys: keys.append(k)
for obj, cfg, T in keys:
    sel = lambda b: [r for r in rows if (r["objective"], r["config"], r["T"], r["bias"]) == (obj, cfg, T, b)]
    med = {b: statistics.median(r["tokens_per_s"] for r in sel(b)) for b in (True, False)}
    print("| %s | %s | %d | %d / %d | %.0f | %.0f | %.3fx |" % (obj, cfg, T, sel(True)[0]["params"], sel(False)[0]["params"],
          med[True], med[False], med[False] / med[True]))
PY
