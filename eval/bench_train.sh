#!/usr/bin/env bash
# make bench-train: training throughput of selfsup vs the PyTorch reference
# (tests/torch_ref.py via eval/torch_train_bench.py), side by side in one run,
# same configs, same thread count, alternating runs; medians.
# selfsup runs three ways: its fp32 OpenBLAS path (--gemm openblas-f32, the
# reference), --precision fp32 (the faster f32 GEMM backend by the probe) and
# --precision bf16 (oneDNN bf16 products, fp32 accumulation). PyTorch runs
# fp32 and with bf16 autocast; "PyTorch at its best" is the faster of the two.
# Debian's torch with the OpenMP build of OpenBLAS.
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
      for mode in "--gemm openblas-f32" "--precision fp32" "--precision bf16"; do
        # shellcheck disable=SC2086
        $B/bench_train $cfg --objective $obj --steps "$STEPS" --threads "$THREADS" $mode | tee -a "$OUT"
      done
      for tp in "" --bf16; do
        # shellcheck disable=SC2086
        /usr/bin/python3 eval/torch_train_bench.py --objective $obj --configs $cfg --steps "$STEPS" \
          --threads "$THREADS" --interop 1 $tp | tee -a "$OUT"
      done
    done
  done
done
echo "# long context: config M shape at T=2048, batch 1 (selfsup only)"
$B/bench_train M --objective clm --seq 2048 --batch 1 --steps 3 --warmup 1 --threads "$THREADS" --precision auto | tee -a "$OUT"
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def pick(impl, obj, cfg, T=None, **kw):
    return [r for r in rows if r["impl"] == impl and r.get("objective", "clm") == obj and r["config"] == cfg
            and (T is None or r.get("T") == T) and all(r.get(k) == v for k, v in kw.items())]
def med(rs, key):
    v = [r[key] for r in rs]
    return statistics.median(v) if v else float("nan")
print()
print("| objective | config | selfsup fp32 OpenBLAS | selfsup fp32 (backend) | selfsup bf16 | PyTorch fp32 | PyTorch bf16 autocast "
      "| bf16 / OpenBLAS fp32 | best selfsup / best PyTorch | selfsup MFU (peak) | peak RSS / analytic need |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for obj in ("clm", "mlm", "rtd"):
    for cfg, T in (("S", 128), ("M", 256)):
        ob = pick("selfsup", obj, cfg, T, gemm="openblas-f32", gemm_forced=True)
        f32 = pick("selfsup", obj, cfg, T, precision="fp32", gemm_forced=False)
        b16 = pick("selfsup", obj, cfg, T, precision="bf16", gemm_forced=False)
        tf, tb = pick("torch", obj, cfg, precision="fp32"), pick("torch", obj, cfg, precision="bf16-autocast")
        if not ob:
            continue
        s_ob, s_f, s_b = med(ob, "tokens_per_s"), med(f32, "tokens_per_s"), med(b16, "tokens_per_s")
        t_f, t_b = med(tf, "tokens_per_s"), med(tb, "tokens_per_s")
        best_s = max(x for x in (s_ob, s_f, s_b) if x == x)
        best_t = max(x for x in (t_f, t_b) if x == x)
        fb = f32[0]["gemm"] if f32 else "?"
        bestrows = max((ob, f32, b16), key=lambda rs: med(rs, "tokens_per_s") if rs else -1)
        print(f"| {obj} | {cfg} | {s_ob:,.0f} | {s_f:,.0f} ({fb}) | {s_b:,.0f} | {t_f:,.0f} | {t_b:,.0f} | "
              f"{s_b/s_ob:.2f}x | {best_s/best_t:.2f}x | {100*med(bestrows, 'mfu'):.1f}% of {med(bestrows, 'sgemm_peak_gflops'):.0f} "
              f"({bestrows[0]['gemm']}); {100*med(bestrows, 'mfu_f32'):.1f}% of f32 {med(bestrows, 'f32_peak_gflops'):.0f} | "
              f"{med(bestrows, 'peak_rss_mb'):.0f} MB / {med(bestrows, 'analytic_need_mb'):.0f} MB |")
long = [r for r in rows if r["impl"] == "selfsup" and r.get("T") == 2048]
if long:
    r = long[-1]
    print(f"long context: clm M at T=2048, B=1 ({r['precision']}, {r['gemm']}): {r['tokens_per_s']:,.0f} tokens/s, "
          f"MFU {100*r['mfu']:.1f}%, {r['peak_rss_mb']:.0f} MB / {r['analytic_need_mb']:.0f} MB = {r['rss_over_need']:.2f}")
for cfg, T in (("S", 128), ("M", 256)):
    m = med(pick("selfsup", "mlm", cfg, T, gemm_forced=True), "step_ms_median")
    r = med(pick("selfsup", "rtd", cfg, T, gemm_forced=True), "step_ms_median")
    if m == m and r == r:
        print(f"rtd step cost relative to mlm, config {cfg} (OpenBLAS fp32): {r/m:.2f}x ({r:.0f} ms vs {m:.0f} ms per step)")
PY
