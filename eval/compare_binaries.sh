#!/usr/bin/env bash
# Before/after speed of two selfsup builds on the same work, side by side in
# one run (alternating, medians): batch-1 greedy generation (tokens/s, warm,
# with the KV cache) on a config-S decoder, and training throughput
# (bench_train, each objective, config S and M).
#   eval/compare_binaries.sh OLD_BUILD_DIR NEW_BUILD_DIR [NEW_BENCH_ARGS...]
# e.g. eval/compare_binaries.sh ../wt-old/build build --gemm openblas-f32
# NEW_BENCH_ARGS go to the new bench_train only (the old one may predate
# them); OLD_BENCH_ARGS="..." gives the old one its own (e.g. both
# "--precision bf16"). OBJECTIVES and CONFIGS choose the training runs
# (default "clm mlm rtd", "S M"); GENERATE=0 skips generation.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$1; NEW=$2; shift 2
RUNS=${RUNS:-3}; STEPS=${STEPS:-10}; THREADS=${THREADS:-2}
W=eval/work/compare
mkdir -p "$W"
export SELFSUP_DATA_MIRROR=${SELFSUP_DATA_MIRROR:-../shared/data}
DIR=$("$NEW/selfsup" data get tinyshakespeare)
if [ ! -f "$W/run/model.safetensors" ]; then
  "$OLD/selfsup" tokenizer train --vocab-size 8192 --special-tokens '<|endoftext|>,<|doc|>' --out "$W/tok.json" "$DIR/input.txt" >/dev/null
  "$OLD/selfsup" data prepare --tokenizer "$W/tok.json" --out "$W/shards" --doc-boundary blank --separator '<|doc|>' \
    --val-fraction 0.1 "$DIR/input.txt" >/dev/null
  "$OLD/selfsup" pretrain --objective clm --data "$W/shards" --out "$W/run" --overwrite --preset small --seq 128 \
    --batch 16 --steps 20 --threads 2 --eval-every 0 --save-every 0 --log-every 20 >/dev/null 2>&1
fi
prompt=$(head -c 60 "$DIR/input.txt")
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $(uptime)"
gen() { # BIN THREADS -> tokens/s of the warm (second) sample
  "$1/selfsup" generate -m "$W/run" -p "$prompt" -n 256 --temperature 0 --num-samples 2 --stats -t "$2" 2>&1 >/dev/null |
    grep -o 'generated: [0-9]* tokens in [0-9.]* s ([0-9.]*' | tail -1 | grep -o '[0-9.]*$'
}
read -r -a OLD_ARGS <<<"${OLD_BENCH_ARGS:-}"
for th in $([ "${GENERATE:-1}" = 0 ] || echo 1 2); do
  o=(); n=()
  for _ in $(seq "$RUNS"); do o+=("$(gen "$OLD" $th)"); n+=("$(gen "$NEW" $th)"); done
  printf 'generate, %d thread(s), new tokens/s: old %s | new %s\n' "$th" "${o[*]}" "${n[*]}"
done
for obj in ${OBJECTIVES:-clm mlm rtd}; do
  for cfg in ${CONFIGS:-S M}; do
    o=(); n=()
    for _ in $(seq "$RUNS"); do
      o+=("$("$OLD/bench_train" $cfg --objective $obj --steps "$STEPS" --threads "$THREADS" "${OLD_ARGS[@]}" | grep -o '"tokens_per_s":[0-9.]*' | cut -d: -f2)")
      n+=("$("$NEW/bench_train" $cfg --objective $obj --steps "$STEPS" --threads "$THREADS" "$@" | grep -o '"tokens_per_s":[0-9.]*' | cut -d: -f2)")
    done
    printf 'train %s %s tokens/s: old %s | new %s\n' "$obj" "$cfg" "${o[*]}" "${n[*]}"
  done
done
