#!/usr/bin/env bash
# Experiment step 2 (make exp-sst2): pretrained vs scratch on SST-2.
# Every model is fine-tuned with the same recipe on the Kim split's train
# (6,920 sentences) and scored on its dev (872), with SEEDS fine-tuning seeds:
#   mlm, rtd (the discriminator), clm: the runs of eval/exp_pretrain.sh
#   scratch-encoder, scratch-decoder: the same architectures, random init
# Results: eval/work/exp/sst2/<model>_s<seed>/eval.json; the summary table
# (mean, std, min, max of dev accuracy) is printed by eval/exp_summary.py.
# A finished fine-tuning run (eval.json present) is not redone.
# TRAIN_SET=glue trains on the 67,349 labelled GLUE phrases instead (the
# phrase protocol: 3 epochs of 2,105 steps, dev evaluated every 700 steps,
# nine evaluations, the best kept; GLUE_EPOCHS overrides the epochs) and
# scores GLUE dev (the same 872 sentences, GLUE's bracket tokens); results
# in eval/work/exp/sst2_glue/ (GLUE_EPOCHS=1 runs are tagged +1ep).
# PROMPT=1 fine-tunes prompt-based instead of under a new head (finetune
# --template '{text} It was' --verbalizer '0=terrible;1=great', the decoder
# prompt of eval/exp_fewlabels.sh; an encoder's template ends in [MASK].),
# at finetune's default rate for it unless FT_EXTRA gives --lr; runs named
# <model><FT_TAG>+prompt_s<seed>. PROMPT_TEMPLATES=K: through the first K
# of exp_recipe.sh's seven templates at once (K times the steps per epoch;
# runs <model><FT_TAG>+ftK+prompt_s<seed>).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}; SS=$B/selfsup
THREADS=${THREADS:-2}; SEEDS=${SEEDS:-1 2 3}
MODELS=${MODELS:-mlm rtd clm scratch-encoder scratch-decoder}
W=eval/work/exp
SST=$($SS data get sst2)
source eval/exp_recipe.sh
# FT_EXTRA adds fine-tuning flags to the recipe (a lever of the learning
# study, e.g. FT_EXTRA="--layer-decay 0.8"); FT_TAG names those runs
# <model><FT_TAG>_..., so they sit beside the plain recipe's.
read -r -a FT_EXTRA_A <<<"${FT_EXTRA:-}"; FT_TAG=${FT_TAG:-}
case ${TRAIN_SET:-kim} in
  kim) TRAIN=$SST/train.tsv DEV=$SST/dev.tsv R=$W/sst2; EXTRA=() ;;
  glue) TRAIN=$SST/train_glue_phrases.tsv DEV=$SST/dev_glue.tsv R=$W/sst2_glue
        EXTRA=(--epochs "${GLUE_EPOCHS:-3}" --eval-every 700); [ "${GLUE_EPOCHS:-3}" = 3 ] || FT_TAG+=+${GLUE_EPOCHS}ep ;;
  *) echo "TRAIN_SET must be kim or glue" >&2; exit 2 ;;
esac
for m in $MODELS; do
  PA=(); PTAG=
  if [ -n "${PROMPT:-}" ]; then  # --lr 0 --layer-decay 0: finetune's defaults for prompt-based fine-tuning
    K=${PROMPT_TEMPLATES:-1}; template_args "$m" "$K"
    PA=("${TA[@]}" --verbalizer '0=terrible;1=great' --lr 0 --layer-decay 0); PTAG=+prompt
    [ "$K" = 1 ] || PTAG=+ft$K+prompt
  fi
  for s in $SEEDS; do
    out=$R/${m}${FT_TAG}${PTAG}_s$s
    [ -s "$out/eval.json" ] && continue
    echo "== $m${FT_TAG}${PTAG}, seed $s"
    $SS finetune $(init_args "$m") --train "$TRAIN" --dev "$DEV" --out "$out" \
      "${FT_RECIPE[@]}" "${PA[@]}" "${EXTRA[@]}" "${FT_EXTRA_A[@]}" --seed "$s" --threads "$THREADS" |
      grep --line-buffered -E '^(epoch|dev:|best)'
  done
done
/usr/bin/python3 eval/exp_summary.py sst2 "$R"
