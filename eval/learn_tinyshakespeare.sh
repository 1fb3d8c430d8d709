#!/usr/bin/env bash
# The "learning" comparison of make bench-train: on tinyshakespeare with a
# selfsup BPE tokenizer, selfsup and the PyTorch reference train the same
# decoder (same config, init scheme, optimizer, schedule, data windows
# policy, threads) for the same wall-clock budget, one after the other on
# the same machine; both then evaluate the whole val split in the same
# non-overlapping windows. Prints both val bits per byte.
# selfsup runs once per precision in PRECISIONS (default: fp32, then the
# default --precision auto, which is bf16 on a CPU with fast native bf16),
# so the same 10 minutes compare fp32 against bf16 too.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_BUDGET=${SECONDS_BUDGET:-600}; THREADS=${THREADS:-2}; B=${B:-build}
W=eval/work/learn
mkdir -p "$W"
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
DIR=$($B/selfsup data get tinyshakespeare)
CFG=(--preset small --seq 128 --batch 16 --lr 1e-3 --dropout 0.1 --seed 1337)
$B/selfsup tokenizer train --vocab-size 4096 --out "$W/tok.json" "$DIR/input.txt"
$B/selfsup data prepare --tokenizer "$W/tok.json" --out "$W/shards" --doc-boundary blank \
  --val-fraction 0.1 "$DIR/input.txt"
PRECISIONS=${PRECISIONS:-fp32 auto}
# selfsup's val curve: the whole val split every EVAL_EVERY steps (0: none);
# evaluation time is not part of the training budget
EVAL_EVERY=${EVAL_EVERY:-250}
# TORCH=0 skips the PyTorch reference (selfsup's precisions only)
for prec in $PRECISIONS; do
  echo "== selfsup --precision $prec, ${SECONDS_BUDGET}s"
  $B/selfsup pretrain --objective clm --data "$W/shards" --out "$W/run-$prec" --overwrite "${CFG[@]}" \
    --precision "$prec" --time "$SECONDS_BUDGET" --threads "$THREADS" --eval-every "$EVAL_EVERY" --eval-tokens 0 --save-every 0 \
    --log-every 100 | grep -E 'precision|gemm|^step' | tail -4
  $B/selfsup eval --model "$W/run-$prec" --data "$W/shards" --seq 128 --batch 16 --threads "$THREADS" --precision "$prec" \
    | tee "$W/selfsup_eval-$prec.txt"
done
if [ "${TORCH:-1}" = 1 ]; then
  echo "== PyTorch reference, ${SECONDS_BUDGET}s"
  /usr/bin/python3 eval/torch_train_lm.py --data "$W/shards" --time "$SECONDS_BUDGET" --threads "$THREADS" \
    --preset small --seq 128 --batch 16 --lr 1e-3 --dropout 0.1 --seed 1337 --log-every 100 | tail -1 | tee "$W/torch_final.json"
  tt=$(/usr/bin/python3 -c "import json,sys; print(json.load(open('$W/torch_final.json'))['val_bpb'])")
  steps_tt=$(/usr/bin/python3 -c "import json; print(json.load(open('$W/torch_final.json'))['step'])")
fi
printf '\nval bits per byte after %ss:\n' "$SECONDS_BUDGET"
for prec in $PRECISIONS; do
  ss=$(grep -oE 'bits per byte [0-9.]+' "$W/selfsup_eval-$prec.txt" | awk '{print $4}')
  steps_ss=$(tail -1 "$W/run-$prec/metrics.jsonl" | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read())['step'])")
  used=$(/usr/bin/python3 -c "import json; print(json.load(open('$W/run-$prec/trainer_state.json')).get('gemm','?'))")
  best=$(/usr/bin/python3 -c "
import json
v = [json.loads(l) for l in open('$W/run-$prec/metrics.jsonl') if '\"val_bpb\"' in l]
if v:
    b = min(v, key=lambda r: r['val_bpb'])
    print('; its lowest val on the way: %.4f at step %d' % (b['val_bpb'], b['step']))")
  printf '  selfsup --precision %s (ran %s): %.4f (%s steps%s)\n' "$prec" "$used" "$ss" "$steps_ss" "$best"
done
if [ "${TORCH:-1}" = 1 ]; then printf '  PyTorch fp32: %.4f (%s steps)\n' "$tt" "$steps_tt"; fi
