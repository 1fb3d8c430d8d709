#!/usr/bin/env bash
# The "learning" comparison of make bench-train: on tinyshakespeare with a
# selfsup BPE tokenizer, selfsup and the PyTorch reference train the same
# decoder (same config, init scheme, optimizer, schedule, data windows
# policy, threads) for the same wall-clock budget, one after the other on
# the same machine; both then evaluate the whole val split in the same
# non-overlapping windows. Prints both val bits per byte.
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
echo "== selfsup, ${SECONDS_BUDGET}s"
$B/selfsup pretrain --objective clm --data "$W/shards" --out "$W/run" --overwrite "${CFG[@]}" \
  --time "$SECONDS_BUDGET" --threads "$THREADS" --eval-every 0 --save-every 0 --log-every 100 | tail -4
$B/selfsup eval --model "$W/run" --data "$W/shards" --seq 128 --batch 16 --threads "$THREADS" | tee "$W/selfsup_eval.txt"
echo "== PyTorch reference, ${SECONDS_BUDGET}s"
/usr/bin/python3 eval/torch_train_lm.py --data "$W/shards" --time "$SECONDS_BUDGET" --threads "$THREADS" \
  --preset small --seq 128 --batch 16 --lr 1e-3 --dropout 0.1 --seed 1337 --log-every 100 | tail -1 | tee "$W/torch_final.json"
ss=$(grep -oE 'bits per byte [0-9.]+' "$W/selfsup_eval.txt" | awk '{print $4}')
tt=$(/usr/bin/python3 -c "import json,sys; print(json.load(open('$W/torch_final.json'))['val_bpb'])")
steps_ss=$(tail -1 "$W/run/metrics.jsonl" | /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read())['step'])")
steps_tt=$(/usr/bin/python3 -c "import json; print(json.load(open('$W/torch_final.json'))['step'])")
printf '\nval bits per byte after %ss: selfsup %.4f (%s steps), PyTorch %.4f (%s steps)\n' \
  "$SECONDS_BUDGET" "$ss" "$steps_ss" "$tt" "$steps_tt"
