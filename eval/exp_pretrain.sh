#!/usr/bin/env bash
# Experiment step 1 (make exp-pretrain): pretrain the same encoder
# architecture with mlm and rtd, and a decoder of the same size with clm, on
# the unlabelled IMDB reviews, each for the SAME training FLOPs (pretrain
# --flops: the objective's own FLOPs per token decide its steps).
#   corpus:    imdb unsup.txt.zst, 50,000 reviews (selfsup data get imdb)
#   tokenizer: byte-level BPE, vocab 8192, lower-cased (SST-2 is lower-case)
#   model:     preset small (4 layers, d_model 256, 4 heads, d_ff 1024), seq 128
# Runs go to eval/work/exp/pre_{mlm,rtd,clm}; an interrupted run resumes
# with its own saved options (LR, MASK, PRE_EXTRA ... given now are not
# compared with them: a new recipe needs a new TAG); a longer budget
# extends a finished run, the same one returns at once.
# OBJECTIVES chooses (default "mlm rtd clm"; "hybrid" is the encoder with
# causal and masked steps, pretrain --objective hybrid).
# FLOPS (default 1.5e14, 15-30 minutes per run on 2 cores), THREADS (2).
# TIME=SECONDS budgets by wall time instead of FLOPs (the learning-rate
# schedule follows the clock); TAG names the runs pre_$obj$TAG, so a longer
# budget (e.g. TAG=-long) sits beside the equal-FLOPs runs. STEPS=N budgets
# by optimizer steps (e.g. a timed run re-made to its recorded step count,
# which other work on the machine cannot change).
# CORPUS=all pretrains on the unsup reviews plus the texts (labels dropped)
# of IMDB's train and test reviews (2x the text, less repetition; same
# tokenizer, shards in eval/work/exp/shards-all). LR, LR_MIN, MASK, BATCH
# override the recipe (recorded in each run's trainer_state.json);
# PRE_EXTRA adds pretrain options (e.g. the ELECTRA masking of the rtd
# study: PRE_EXTRA="--mask-replace 0.85 --mask-random 0"); a PRE_EXTRA that
# names the model (--preset, or --layers/--d-model/--heads) replaces preset
# small (a model-size lever: PRE_EXTRA="--layers 6 --d-model 256 --heads 4").
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
SHARDS=$W/shards
if [ "${CORPUS:-unsup}" = all ]; then
  SHARDS=$W/shards-all
  if [ ! -s "$SHARDS/tokenizer.json" ]; then
    echo "== shards of unsup + the texts of IMDB train and test (labels dropped)"
    for s in train test; do zstdcat "$DIR/$s.tsv.zst" | tail -n +2 | cut -f1; done |
      zstd -q -f -o "$W/imdb_labelled_texts.txt.zst"
    $SS data prepare --tokenizer "$W/tok.json" --out "$SHARDS" --doc-boundary line --val-fraction 0.02 \
      "$DIR/unsup.txt.zst" "$W/imdb_labelled_texts.txt.zst"
  fi
fi
$SS data inspect "$SHARDS" | sed -n 1,5p

# The same optimisation recipe for the three objectives (chosen on the val
# split of the pretraining corpus only).
MODEL=(--preset small)
case " ${PRE_EXTRA:-} " in *" --preset "*|*" --layers "*) MODEL=() ;; esac
COMMON=(--data "$SHARDS" "${MODEL[@]}" --seq 128 --batch "${BATCH:-32}" --lr "${LR:-5e-4}" --weight-decay 0.01
        --threads "$THREADS" --eval-every 1000 --eval-tokens 131072 --save-every 500
        --log-every 100 --seed 1)
[ -n "${LR_MIN:-}" ] && COMMON+=(--lr-min "$LR_MIN")
[ -z "${LR:-}" ] && COMMON+=(--warmup 300)  # the original recipe; otherwise warmup is 5% of the run
BUDGET=(--flops "$FLOPS"); [ -n "$TIME" ] && BUDGET=(--time "$TIME"); [ -n "${STEPS:-}" ] && BUDGET=(--steps "$STEPS")
for obj in $OBJECTIVES; do
  run=$W/pre_$obj$TAG
  echo "== pretrain $obj for ${BUDGET[*]}"
  if [ -s "$run/trainer_state.json" ]; then
    # resume (a finished run returns at once): the run's saved options hold; only the length is given
    # (a longer one extends the run) and the options that may change (threads, logging)
    $SS pretrain --resume --out "$run" --threads "$THREADS" --eval-every 1000 --save-every 500 --log-every 100 \
      "${BUDGET[@]}" | grep --line-buffered -v '^sgemm'
    continue
  fi
  MASKARG=(); [ -n "${MASK:-}" ] && [ "$obj" != clm ] && MASKARG=(--mask-prob "$MASK")
  $SS pretrain --objective "$obj" "${COMMON[@]}" "${MASKARG[@]}" ${PRE_EXTRA:-} "${BUDGET[@]}" --out "$run" --overwrite |
    grep --line-buffered -v '^sgemm'
done
