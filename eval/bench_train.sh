#!/usr/bin/env bash
# make bench-train: training throughput of selfsup vs the PyTorch reference
# (tests/torch_ref.py via eval/torch_train_bench.py), side by side in one run,
# same configs, same thread count, fp32, alternating runs; medians.
# PyTorch runs "at its best": Debian's torch with the OpenMP build of OpenBLAS.
# Also: selfsup's MFU against the sgemm peak measured in the same process, its
# peak RSS against the analytic need, and a T=2048 run (linear attention memory).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}; STEPS=${STEPS:-20}; THREADS=${THREADS:-2}
B=${B:-build}
OUT=eval/work/bench_train.jsonl
mkdir -p eval/work
: >"$OUT"
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
echo "# machine: $(nproc) cores; threads $THREADS; $RUNS alternating runs x $STEPS timed steps"
$B/selfsup --help >/dev/null
OBJECTIVES=${OBJECTIVES:-clm mlm rtd}
for r in $(seq "$RUNS"); do
  for obj in $OBJECTIVES; do
    for cfg in S M; do
      $B/bench_train $cfg --objective $obj --steps "$STEPS" --threads "$THREADS" | tee -a "$OUT"
      /usr/bin/python3 eval/torch_train_bench.py --objective $obj --configs $cfg --steps "$STEPS" \
        --threads "$THREADS" --interop 1 | tee -a "$OUT"
    done
  done
done
echo "# long context: config M shape at T=2048, batch 1 (selfsup only)"
$B/bench_train M --objective clm --seq 2048 --batch 1 --steps 3 --warmup 1 --threads "$THREADS" | tee -a "$OUT"
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(impl, obj, cfg, key, T=None):
    v = [r[key] for r in rows if r["impl"] == impl and r.get("objective", "clm") == obj and r["config"] == cfg
         and (T is None or r.get("T") == T)]
    return statistics.median(v) if v else float("nan")
print()
print("| objective | config | selfsup tokens/s | PyTorch tokens/s | ratio | selfsup MFU | selfsup peak RSS / analytic need |")
print("|---|---|---|---|---|---|---|")
for obj in ("clm", "mlm", "rtd"):
    for cfg, T in (("S", 128), ("M", 256)):
        s, t = med("selfsup", obj, cfg, "tokens_per_s", T), med("torch", obj, cfg, "tokens_per_s")
        if s != s:
            continue
        print(f"| {obj} | {cfg} | {s:,.0f} | {t:,.0f} | {s/t:.2f}x | {100*med('selfsup', obj, cfg, 'mfu', T):.1f}% "
              f"(peak {med('selfsup', obj, cfg, 'sgemm_peak_gflops', T):.0f} GFLOP/s) | "
              f"{med('selfsup', obj, cfg, 'peak_rss_mb', T):.0f} MB / {med('selfsup', obj, cfg, 'analytic_need_mb', T):.0f} MB = "
              f"{med('selfsup', obj, cfg, 'rss_over_need', T):.2f} |")
long = [r for r in rows if r["impl"] == "selfsup" and r.get("T") == 2048]
if long:
    r = long[-1]
    print(f"| clm | M at T=2048, B=1 | {r['tokens_per_s']:,.0f} | - | - | {100*r['mfu']:.1f}% | "
          f"{r['peak_rss_mb']:.0f} MB / {r['analytic_need_mb']:.0f} MB = {r['rss_over_need']:.2f} |")
for cfg, T in (("S", 128), ("M", 256)):
    m, r = med("selfsup", "mlm", cfg, "step_ms_median", T), med("selfsup", "rtd", cfg, "step_ms_median", T)
    if m == m and r == r:
        print(f"rtd step cost relative to mlm, config {cfg}: {r/m:.2f}x ({r:.0f} ms vs {m:.0f} ms per step)")
PY
