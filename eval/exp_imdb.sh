#!/usr/bin/env bash
# Experiment step 4 (make exp-imdb): fine-tune on IMDB train (25,000
# reviews) and score on IMDB test (25,000), for the best pretrained model
# on SST-2 (BEST) and the same architecture from scratch (BASE). Reviews are cut
# to their first MAX_SEQ tokens (default 128, the pretraining length; about
# 45% of a median review). EPOCHS (default 1) over 22,500 reviews; IMDB has no
# dev split, so "dev" is the last 2,500 training reviews (held out of
# training, balanced), used to pick the epoch; test is scored once.
# IMDB_MODELS runs only some of "$BEST $BASE" (two processes can share the work).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}; SS=$B/selfsup
THREADS=${THREADS:-2}; EPOCHS=${EPOCHS:-1}; MAX_SEQ=${MAX_SEQ:-128}; SEED=${SEED:-1}
TRAIN_SIZE=${TRAIN_SIZE:-0}   # > 0: a seeded random subset of the 22,500 training reviews
# Results: eval/work/exp/imdb/all/<model>/ (or imdb/n<TRAIN_SIZE>/<model>/).
W=eval/work/exp
DIR=$($SS data get imdb)
source eval/exp_recipe.sh
# BEST: by default the pretrained model with the highest mean SST-2 dev
# accuracy in eval/exp_sst2.sh's runs; BASE: the same kind from scratch
BEST=${BEST:-$(/usr/bin/python3 eval/exp_summary.py best "$W/sst2" mlm rtd clm)}
BASE=${BASE:-$(scratch_for "$BEST")}
echo "IMDB: $BEST against $BASE"
mkdir -p "$W/imdb"
if [ ! -s "$W/imdb/dev.tsv" ]; then  # (no zstd | head: under pipefail its SIGPIPE would stop the script)
  zstd -q -dc "$DIR/train.tsv.zst" >"$W/imdb/all.tsv"
  head -n 22501 "$W/imdb/all.tsv" >"$W/imdb/train.tsv"
  { head -n 1 "$W/imdb/all.tsv"; tail -n +22502 "$W/imdb/all.tsv"; } >"$W/imdb/dev.tsv"
  rm "$W/imdb/all.tsv"
fi
R=$W/imdb/n$TRAIN_SIZE; [ "$TRAIN_SIZE" = 0 ] && R=$W/imdb/all   # runs per training-set size
for m in ${IMDB_MODELS:-$BEST $BASE}; do
  out=$R/$m
  [ -s "$out/eval.json" ] && continue
  echo "== $m on IMDB"
  $SS finetune $(init_args "$m") --train "$W/imdb/train.tsv" --dev "$W/imdb/dev.tsv" --test "$DIR/test.tsv.zst" \
    --out "$out" "${FT_RECIPE[@]}" --epochs "$EPOCHS" --max-seq "$MAX_SEQ" --seed "$SEED" --threads "$THREADS" \
    --train-size "$TRAIN_SIZE" |
    grep --line-buffered -E '^(data|epoch|dev:|test:|best)'
done
/usr/bin/python3 eval/exp_summary.py imdb "$R"
