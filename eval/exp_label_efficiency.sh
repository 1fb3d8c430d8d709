#!/usr/bin/env bash
# Experiment step 3 (make exp-label-efficiency): SST-2 dev accuracy against
# the number of labelled training sentences (SIZES, default 100 300 1000
# 3000; all 6,920 are the runs of eval/exp_sst2.sh, same recipe and seeds),
# for the best pretrained model (BEST, default: mlm, rtd or clm, whichever has
# the highest mean SST-2 dev accuracy) and the same architecture from scratch
# (BASE), SEEDS fine-tuning seeds each.
# A size-n run trains on a seeded random n-sentence subset (--train-size, the
# seed also picks the subset; a size Kpc: K of each class, --per-class, runs
# named _nKpc_) for max(3 epochs, 300 steps), evaluated on dev six times in
# the run (the best evaluation is kept). LE_MODELS runs only
# some of "$BEST $BASE". Writes eval/work/exp/label_eff/, prints the table and draws
# eval/work/exp/label_efficiency.png (gnuplot) for LE_PAIRS (see below). The plot
# committed beside RESULTS.md, eval/label_efficiency.png, has every objective's
# curve: it is drawn from eval/label_efficiency.tsv (see that file's header).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}; SS=$B/selfsup
THREADS=${THREADS:-2}; SEEDS=${SEEDS:-1 2 3}; SIZES=${SIZES:-100 300 1000 3000}
W=eval/work/exp
SST=$($SS data get sst2)
source eval/exp_recipe.sh
# FT_EXTRA adds fine-tuning flags to the recipe (a lever of the learning
# study, e.g. FT_EXTRA="--layer-decay 0.8"); FT_TAG names those runs
# <model><FT_TAG>_..., so they sit beside the plain recipe's.
read -r -a FT_EXTRA_A <<<"${FT_EXTRA:-}"; FT_TAG=${FT_TAG:-}
# BEST: by default the pretrained model (mlm, rtd or clm) with the highest
# mean SST-2 dev accuracy in eval/exp_sst2.sh's runs; BASE: it from scratch
BEST=${BEST:-$(/usr/bin/python3 eval/exp_summary.py best "$W/sst2" mlm rtd clm)}; BASE=${BASE:-$(scratch_for "$BEST")}
echo "label efficiency: $BEST against $BASE"
for m in ${LE_MODELS:-$BEST $BASE}; do
  for size in $SIZES; do
    read -r n cut < <(subset "$size"); read -r epochs every < <(schedule "$n")
    for s in $SEEDS; do
      out=$W/label_eff/${m}${FT_TAG}_n${size}_s$s
      [ -s "$out/eval.json" ] && continue
      echo "== $m, $n sentences ($cut), seed $s ($epochs epochs)"
      $SS finetune $(init_args "$m") --train "$SST/train.tsv" --dev "$SST/dev.tsv" --out "$out" \
        "${FT_RECIPE[@]}" --epochs "$epochs" --eval-every "$every" $cut --seed "$s" --threads "$THREADS" \
        "${FT_EXTRA_A[@]}" |
        grep --line-buffered -E '^(dev:|best)'
    done
  done
done
# the table and plot: LE_PAIRS "pretrained scratch ..." (run names, FT_TAG included; default
# "$BEST$FT_TAG $BASE$FT_TAG", the runs made above)
/usr/bin/python3 eval/exp_summary.py label_eff "$W/label_eff" "$W/label_efficiency.png" "$W/sst2" 6920 \
  ${LE_PAIRS:-$BEST$FT_TAG $BASE$FT_TAG}
