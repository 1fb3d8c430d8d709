#!/usr/bin/env bash
# make demo: the main job, end to end, printing what each step did, and what
# pretraining on unlabelled text buys when labels are few:
#   50,000 unlabelled IMDB movie reviews -> byte-level BPE tokenizer -> token
#   shards -> pretrain a decoder (next-token prediction) -> generate text ->
#   fine-tune it on LABELS labelled SST-2 sentences, and the same model from
#   random weights on the same sentences -> compare on SST-2 dev -> classify
#   sentences -> plots.
# About 10 minutes on 2 cores. Outputs go to runs/demo/ (never removed by
# `make clean`); a second run starts over. Settings: DEMO_SECONDS (decoder
# pretraining budget, default 360), DEMO_LABELS (labelled sentences for the
# comparison, default 500), DEMO_THREADS (default: physical cores).
set -euo pipefail
cd "$(dirname "$0")/.."
SS=${SS:-build/selfsup}
OUT=${DEMO_OUT:-runs/demo}
SECS=${DEMO_SECONDS:-360}
LABELS=${DEMO_LABELS:-500}
THREADS=(); [ -n "${DEMO_THREADS:-}" ] && THREADS=(--threads "$DEMO_THREADS")
step() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"

step "1. data: IMDB reviews (unlabelled) to pretrain on, SST-2 sentences (labelled) to fine-tune on"
echo "Both are fetched first, so a missing data set stops the demo now, not after ten minutes."
if [ -n "${SELFSUP_DATA_MIRROR:-}" ]; then
  echo "(copying from the data mirror SELFSUP_DATA_MIRROR=$SELFSUP_DATA_MIRROR)"
else
  echo "(no SELFSUP_DATA_MIRROR: downloading from the original sources and converting, checksums verified;"
  echo " IMDB is an 84 MB archive from ai.stanford.edu, SST-2 two small files from GitHub; cached in corpora/cache/)"
fi
IMDB=$($SS data get imdb)
SST=$($SS data get sst2 train.tsv dev.tsv)
echo "pretraining text: $IMDB/unsup.txt.zst, 50,000 movie reviews ($(stat -c %s "$IMDB/unsup.txt.zst") bytes, zstd)"
echo "labelled text:    $SST/train.tsv ($(($(wc -l <"$SST/train.tsv") - 1)) sentences), $SST/dev.tsv ($(($(wc -l <"$SST/dev.tsv") - 1)))"
echo "                  (SST-2 comes from Rotten Tomatoes reviews: a different site, never pretrained on)"

step "2. tokenizer: byte-level BPE, 8,192 tokens, lower-cased (SST-2 is lower-case), trained on the reviews"
$SS tokenizer train --vocab-size 8192 --lowercase --out "$OUT/tokenizer.json" "$IMDB/unsup.txt.zst"
SAMPLE="I didn't expect much, but this film is a small masterpiece — 10/10!"
IDS=$($SS tokenizer encode --tokenizer "$OUT/tokenizer.json" --text "$SAMPLE")
echo "text:    $SAMPLE"
echo "ids:     $IDS   ($(echo $IDS | wc -w) tokens for $(printf %s "$SAMPLE" | wc -c) bytes)"
echo "decoded: $($SS tokenizer decode --tokenizer "$OUT/tokenizer.json" $IDS)   (lower-cased, otherwise exact)"

step "3. token shards: one document per review, 2% held out for validation"
$SS data prepare --tokenizer "$OUT/tokenizer.json" --out "$OUT/shards" --doc-boundary line --val-fraction 0.02 \
  "$IMDB/unsup.txt.zst"

step "4. pretrain a decoder (GPT-style next-token prediction; 4 layers, d_model 256) for ${SECS}s"
$SS pretrain --objective clm --data "$OUT/shards" --out "$OUT/pretrained" --overwrite --preset small \
  --seq 128 --batch 32 --lr 1e-3 --weight-decay 0.01 --time "$SECS" --eval-every 250 --eval-tokens 65536 \
  --log-every 50 "${THREADS[@]}"

step "5. generate text from a prompt (KV cache; temperature 0.8, top-k 40)"
for p in "this movie was" "the acting in this film"; do
  $SS generate --model "$OUT/pretrained" --prompt "$p" --echo --max-new-tokens 40 --seed 7 "${THREADS[@]}"
  echo
done

step "6. fine-tune on $LABELS labelled SST-2 sentences: the pretrained decoder, then the same model from random weights"
echo "Same architecture, tokenizer, sentences, recipe and seed; the only difference is the pretraining."
# The label-efficiency recipe of eval/exp_label_efficiency.sh, shortened: max(3 epochs, 150 steps)
# (with 500 labels the train loss is near 0 by step 100), six dev evaluations, the best one kept.
per_epoch=$(( (LABELS + 31) / 32 )); epochs=$(( (150 + per_epoch - 1) / per_epoch )); [ $epochs -lt 3 ] && epochs=3
# Everything else is finetune's default (batch 32, 128 tokens, 10% warmup; the learning rate by the model:
# 2e-4 for a decoder and for random weights).
FT=(--train "$SST/train.tsv" --dev "$SST/dev.tsv" --train-size "$LABELS" --epochs "$epochs"
    --eval-every $(( per_epoch * epochs / 6 )) --seed 1 "${THREADS[@]}")
echo "-- pretrained:"
$SS finetune --init "$OUT/pretrained" "${FT[@]}" --out "$OUT/sentiment" | tee "$OUT/sentiment.log"
echo "-- from scratch (random weights):"
$SS finetune --init none --tokenizer "$OUT/tokenizer.json" --kind decoder --preset small "${FT[@]}" \
  --out "$OUT/sentiment-scratch" | tee "$OUT/sentiment-scratch.log"

# the best dev evaluation's accuracy, from finetune's closing "dev: accuracy A ..." line
acc() { awk '/^dev: accuracy/ {printf "%.2f", 100 * $3}' "$1"; }
A=$(acc "$OUT/sentiment.log"); S=$(acc "$OUT/sentiment-scratch.log")
step "7. what pretraining bought: SST-2 dev accuracy (872 sentences) with $LABELS labels"
D=$(awk -v a="$A" -v s="$S" 'BEGIN {printf "%+.2f", a - s}')
TOKENS=$(grep -o '"tokens_seen":[[:space:]]*[0-9]*' "$OUT/pretrained/trainer_state.json" 2>/dev/null | grep -o '[0-9]*$' || true)
printf '  pretrained on unlabelled reviews (%ss, %s tokens): %s%%\n  from scratch:                               %s%%\n  difference:                                 %s points (one seed)\n' \
  "$SECS" "${TOKENS:-?}" "$A" "$S" "$D"
if awk -v d="$D" 'BEGIN {exit !(d >= 2)}'; then
  echo "Pretraining paid: the same $LABELS labels went further from the pretrained weights."
else
  echo "Pretraining did not pay at this budget: ${TOKENS:-too few} tokens are too few for the decoder to learn"
  echo "features the classifier can use (a warning above says when this CPU's matrix products run below"
  echo "its peak). It pays with more: eval/RESULTS.md measures +5.9 points at 300 labels after 32 minutes"
  echo "(1.5e14 FLOPs) and +14 after 2 hours, 3 seeds each. Try DEMO_SECONDS=1800 make demo."
fi
echo "(The encoders pay too, after longer: pretrained with pretrain's defaults for the compute 2 hours buy on 2"
echo " cores, a masked LM fine-tunes +5.4 points above the same encoder from scratch with all 6,920 labels and"
echo " +10.0 at 1,000; ELECTRA's discriminator +3.7 and +7.6, the decoder +4.9 and +11.7 after 2 hours: eval/RESULTS.md.)"

step "8. classify a few sentences with the fine-tuned model"
printf '%s\n' "a gorgeous , witty and deeply moving film ." "the plot is thin and the acting is wooden ." \
  "i laughed , i cried , i loved every minute ." "two hours of my life i will never get back ." >"$OUT/sentences.txt"
$SS classify --model "$OUT/sentiment" "${THREADS[@]}" "$OUT/sentences.txt" | paste - "$OUT/sentences.txt" |
  awk -F'\t' '{printf "%-8s p=%s  %s\n", ($1 == "1" ? "positive" : "negative"), $2, $4}'

step "9. plots"
for run in pretrained sentiment sentiment-scratch; do
  $SS plot "$OUT/$run" --out "$OUT/$run.png" && echo "$OUT/$run.png"
done

printf '\ndemo finished in %ss; everything is in %s/\n' "$(( $(date +%s) - t0 ))" "$OUT"
