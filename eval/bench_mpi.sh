#!/usr/bin/env bash
# make bench-mpi: data-parallel training on one machine. Training tokens/s
# of 2 ranks x 1 thread (build/selfsup-mpi under mpirun) against 1 rank x 2
# threads (build/selfsup) and 1 x 1, at the same global batch, configs S and
# M (README's performance table: S = 4 layers, d 256, T 128, B 16; M = 6
# layers, d 384, T 256, B 8; vocabulary 8192), clm; alternating runs,
# medians. tokens/s is the median over a run's log windows of 5 steps after
# the first (warm-up) window; for 2 ranks also the share of the step rank 0
# spends in the reductions across ranks (metrics.jsonl comm_s: the gradient
# sum and the statistics, waiting for the other rank included). 2x1 runs
# with everything summed after the backward (selfsup's default) and as
# 2x1-overlap with --comm-overlap (the gradient buckets during it).
# Environment: RUNS (3), STEPS (40; at least 10), CONFIGS ("S M"; T: a tiny model to check the
# script), B (build). Results to
# eval/work/bench_mpi.jsonl and a table on stdout (copy into eval/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}; STEPS=${STEPS:-40}; CONFIGS=${CONFIGS:-S M}
B=${B:-build}
W=eval/work/bench_mpi
OUT=eval/work/bench_mpi.jsonl
mkdir -p "$W"
: >"$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[ -x "$B/selfsup-mpi" ] || { echo "bench-mpi: $B/selfsup-mpi is not built (make mpi)" >&2; exit 1; }

source eval/mpi_common.sh
mpi_bench_data "$W"
cfg_args() { mpi_cfg_args "$1" || { echo "bench-mpi: unknown config $1" >&2; exit 1; }; }

# One run: MODE is 1x1, 1x2 (ranks x threads), 2x1 or 2x1-overlap; one JSON line.
run() {
  local cfg=$1 mode=$2 out="$W/run-$1-$2" ranks=${2%x*} threads=${2#*x} ov=()
  [ "${threads%-overlap}" != "$threads" ] && threads=${threads%-overlap} && ov=(--comm-overlap)
  # shellcheck disable=SC2046
  local args=(pretrain --objective clm --data "$W/shards" $(cfg_args "$cfg") --steps "$STEPS" --log-every 5
              --eval-every 0 --save-every 0 --threads "$threads" --seed 1 "${ov[@]}" --out "$out" --overwrite)
  if [ "$ranks" = 1 ]; then "$B/selfsup" "${args[@]}" >"$out.log" 2>&1
  else mpirun -np "$ranks" --bind-to core "$B/selfsup-mpi" "${args[@]}" >"$out.log" 2>&1; fi
  /usr/bin/python3 - "$out" "$cfg" "$mode" <<'PY'
import json, statistics, sys
run, cfg, mode = sys.argv[1:]
rows = [json.loads(l) for l in open(run + "/metrics.jsonl") if '"tokens_per_s"' in l][1:]  # first window: warm-up
tps = statistics.median(r["tokens_per_s"] for r in rows)
share = None
if rows and "comm_s" in rows[0]:
    # a window's seconds = its tokens / its tokens per second; its tokens = 5 steps of the batch
    st = json.load(open(run + "/trainer_state.json"))
    per_step = st["tokens_seen"] / st["step"]
    share = statistics.median(r["comm_s"] / (5 * per_step / r["tokens_per_s"]) for r in rows)
gemm = json.load(open(run + "/trainer_state.json")).get("gemm")
print(json.dumps({"config": cfg, "mode": mode, "tokens_per_s": tps, "comm_share": share, "gemm": gemm,
                  "windows": len(rows)}))
PY
}

echo "# machine: $(nproc) cores; $RUNS alternating runs x $STEPS steps; configs $CONFIGS"
for r in $(seq "$RUNS"); do
  for cfg in $CONFIGS; do
    for mode in 1x2 2x1 2x1-overlap 1x1; do run "$cfg" "$mode" | tee -a "$OUT"; done
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
def med(cfg, mode, key):
    v = [r[key] for r in rows if r["config"] == cfg and r["mode"] == mode and r[key] is not None]
    return statistics.median(v) if v else float("nan")
print()
print("| config | 1 rank x 2 threads | 2 ranks x 1 thread | 1 rank x 1 thread | 2x1 / 1x2 | 2x1 / 1x1 (scaling) "
      "| 2x1: step share in reductions | 2x1 with the buckets during the backward "
      "(--comm-overlap): tokens/s, share of the step in reductions after it |")
print("|---|---|---|---|---|---|---|---|")
for cfg in dict.fromkeys(r["config"] for r in rows):
    a, b, c, d = (med(cfg, m, "tokens_per_s") for m in ("1x2", "2x1", "1x1", "2x1-overlap"))
    print(f"| {cfg} | {a:,.0f} tok/s | {b:,.0f} tok/s | {c:,.0f} tok/s | {b / a:.2f}x | {b / c:.2f}x "
          f"| {100 * med(cfg, '2x1', 'comm_share'):.1f}% | {d:,.0f} tok/s, {100 * med(cfg, '2x1-overlap', 'comm_share'):.1f}% |")
PY
