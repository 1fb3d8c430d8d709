#!/usr/bin/env bash
# Continued pretraining (make exp-continued): does a model pretrained on
# general text gain from a short continuation on in-domain text (domain-
# adaptive pretraining, Gururangan et al. 2020: `pretrain --init RUN`)?
# Three decoders (clm, preset small, the recipe of eval/exp_pretrain.sh), the
# same FLOPs each (pretrain --flops, so a loaded machine changes the time,
# not the result):
#   <GENERAL>            GENERAL text (kjv: the King James Bible, default;
#                        or wikitext-2) for all FLOPS
#   imdb                 IMDB's unlabelled reviews for all FLOPS (the
#                        in-domain corpus of every other experiment)
#   <GENERAL>+imdb       GENERAL for (1 - SHARE) x FLOPS, then continued on
#                        IMDB for SHARE x FLOPS (SHARE 0.2: the issue's 20%)
# One tokenizer for all (eval/exp_pretrain.sh's, trained on IMDB: --init
# needs the data in the model's tokenizer). Each model is fine-tuned on
# SST-2 (sentence protocol; exp_recipe.sh's recipe; SEEDS seeds) with all
# 6,920 labels and with 1,000 (the label-efficiency subsets and schedule).
# Runs: eval/work/exp/cont/pre_<model>, fine-tuned runs in
# eval/work/exp/cont/sst2/<model>_s<seed> and cont/label_eff/<model>_n1000_s<seed>.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}; SS=$B/selfsup
THREADS=${THREADS:-2}; SEEDS=${SEEDS:-1 2 3}
FLOPS=${FLOPS:-1.5e14}; SHARE=${SHARE:-0.2}; GENERAL=${GENERAL:-kjv}
W=eval/work/exp
C=$W/cont
mkdir -p "$C/sst2" "$C/label_eff"
[ -s "$W/shards/tokenizer.json" ] || { echo "exp-continued needs eval/exp_pretrain.sh's tokenizer and IMDB shards first (make exp-pretrain OBJECTIVES=clm)" >&2; exit 2; }
case $GENERAL in
  kjv) TEXT=$($SS data get kjv)/kjv.txt ;;
  wikitext-2) TEXT=$($SS data get wikitext-2)/wiki.test.raw ;;
  *) echo "GENERAL must be kjv or wikitext-2" >&2; exit 2 ;;
esac
if [ ! -s "$C/shards-$GENERAL/tokenizer.json" ]; then
  echo "== shards of $GENERAL with the IMDB tokenizer"
  $SS data prepare --tokenizer "$W/tok.json" --out "$C/shards-$GENERAL" --doc-boundary line --val-fraction 0.02 "$TEXT"
fi
COMMON=(--objective clm --seq 128 --batch 32 --lr 5e-4 --warmup 300 --weight-decay 0.01
        --threads "$THREADS" --eval-every 1000 --eval-tokens 131072 --save-every 500 --log-every 100 --seed 1)
pretrain() { # run data flops [init]
  local run=$1 data=$2 flops=$3 init=${4:-} start=()
  echo "== pretrain $(basename "$run") on $(basename "$data") for $flops FLOPs${init:+ from $(basename "$init")}"
  # a finished run returns at once; a resumed run's architecture is its checkpoint's (--preset refused)
  if [ -s "$run/trainer_state.json" ]; then start=(--resume)
  else start=(--overwrite --preset small ${init:+--init "$init"}); fi
  $SS pretrain "${COMMON[@]}" --data "$data" --flops "$flops" "${start[@]}" --out "$run" | grep --line-buffered -v '^sgemm'
}
part() { /usr/bin/python3 -c "print('%.4g' % (($1) * $FLOPS))"; }
pretrain "$C/pre_$GENERAL" "$C/shards-$GENERAL" "$FLOPS"
pretrain "$C/pre_imdb" "$W/shards" "$FLOPS"
pretrain "$C/pre_$GENERAL-part" "$C/shards-$GENERAL" "$(part "1 - $SHARE")"
pretrain "$C/pre_$GENERAL+imdb" "$W/shards" "$(part "$SHARE")" "$C/pre_$GENERAL-part"

SST=$($SS data get sst2)
source eval/exp_recipe.sh
# 1,000 labels first for every model (short runs: the comparison is whole
# sooner; exp_recipe.sh's subset and schedule, as eval/exp_label_efficiency.sh
# runs them), then all labels
read -r n cut < <(subset 1000); read -r epochs every < <(schedule "$n")
for m in "$GENERAL" imdb "$GENERAL+imdb"; do
  for s in $SEEDS; do
    out=$C/label_eff/${m}_n1000_s$s
    if [ ! -s "$out/eval.json" ]; then
      rm -rf "$out"
      echo "== $m, 1,000 labels, seed $s"
      $SS finetune --init "$C/pre_$m" --train "$SST/train.tsv" --dev "$SST/dev.tsv" --out "$out" "${FT_RECIPE[@]}" \
        --epochs "$epochs" --eval-every "$every" $cut --seed "$s" --threads "$THREADS" | grep --line-buffered -E '^best' || true
    fi
  done
done
for m in "$GENERAL" imdb "$GENERAL+imdb"; do
  for s in $SEEDS; do
    out=$C/sst2/${m}_s$s
    if [ ! -s "$out/eval.json" ]; then
      rm -rf "$out"
      echo "== $m, all labels, seed $s"
      $SS finetune --init "$C/pre_$m" --train "$SST/train.tsv" --dev "$SST/dev.tsv" --out "$out" "${FT_RECIPE[@]}" \
        --seed "$s" --threads "$THREADS" | grep --line-buffered -E '^best' || true
    fi
  done
done
echo "== all labels"; /usr/bin/python3 eval/exp_summary.py sst2 "$C/sst2"
echo "== 1,000 labels"; /usr/bin/python3 eval/exp_summary.py sst2 "$C/label_eff"
