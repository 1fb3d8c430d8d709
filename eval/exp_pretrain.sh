#!/usr/bin/env bash
# Experiment step 1 (make exp-pretrain): pretrain the same encoder
# architecture with mlm and rtd, and a decoder of the same size with clm, on
# the unlabelled IMDB reviews, each for the SAME training FLOPs (pretrain
# --flops: the objective's own FLOPs per token decide its steps).
#   corpus:    imdb unsup.txt.zst, 50,000 reviews (selfsup data get imdb)
#   tokenizer: byte-level BPE, vocab 8192, lower-cased (SST-2 is lower-case)
#   model:     preset small (4 layers, d_model 256, 4 heads, d_ff 1024), seq 128
# Runs go to eval/work/exp/pre_{mlm,rtd,clm}; an interrupted run resumes.
# FLOPS (default 1.5e14, 15-30 minutes per run on 2 cores), THREADS (2).
# TIME=SECONDS budgets by wall time instead of FLOPs (the learning-rate
# schedule follows the clock); TAG names the runs pre_$obj$TAG, so a longer
# budget (e.g. TAG=-long) sits beside the equal-FLOPs runs.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}; SS=$B/selfsup
FLOPS=${FLOPS:-1.5e14}; TIME=${TIME:-}; TAG=${TAG:-}; THREADS=${THREADS:-2}; OBJECTIVES=${OBJECTIVES:-mlm rtd clm}
W=eval/work/exp
mkdir -p "$W"
DIR=$($SS data get imdb)

if [ ! -s "$W/shards/tokenizer.json" ]; then
  echo "== tokenizer and shards (IMDB unsup, lower-cased BPE 8192)"
  $SS tokenizer train --vocab-size 8192 --lowercase --out "$W/tok.json" "$DIR/unsup.txt.zst"
  $SS data prepare --tokenizer "$W/tok.json" --out "$W/shards" --doc-boundary line --val-fraction 0.02 \
    "$DIR/unsup.txt.zst"
fi
$SS data inspect "$W/shards" | sed -n 1,5p

# The same optimisation recipe for the three objectives (chosen on the val
# split of the pretraining corpus only).
COMMON=(--data "$W/shards" --preset small --seq 128 --batch 32 --lr 5e-4 --warmup 300 --weight-decay 0.01
        --threads "$THREADS" --eval-every 1000 --eval-tokens 131072 --save-every 500
        --log-every 100 --seed 1)
BUDGET=(--flops "$FLOPS"); [ -n "$TIME" ] && BUDGET=(--time "$TIME")
for obj in $OBJECTIVES; do
  run=$W/pre_$obj$TAG
  echo "== pretrain $obj for ${BUDGET[*]}"
  resume=--overwrite; [ -s "$run/trainer_state.json" ] && resume=--resume  # a finished run returns at once
  $SS pretrain --objective "$obj" "${COMMON[@]}" "${BUDGET[@]}" --out "$run" $resume | grep -v '^sgemm'
done
