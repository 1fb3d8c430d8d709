#!/usr/bin/env bash
# The learning study's headline in one command (make exp-learning; issue 14):
# each objective (OBJECTIVES, default "mlm rtd clm") pretrained for TIME
# seconds (default 7200, the study's 2-hour budget; run it on an otherwise
# idle machine: the schedule follows the clock) with `selfsup pretrain`'s
# own defaults (no recipe flag: the defaults are the study's findings, see
# the README's pretrain section) on the IMDB reviews plus the texts of IMDB
# train/test (CORPUS=all of eval/exp_pretrain.sh), then every model and the
# same architectures from scratch fine-tuned with `selfsup finetune`'s own
# defaults (--lr 0 --layer-decay 0: its rate and layer decay by model
# kind) on SST-2, all 6,920 labels and SIZES (default "100 300 1000")
# labels, SEEDS (1 2 3) fine-tuning seeds each, and the tables printed.
# Runs: eval/work/exp/pre_<obj><TAG> (TAG default -2h-defaults), fine-tunes
# <model>+def in eval/work/exp/sst2/ and label_eff/. Every step resumes
# where an interruption left it (a finished run is not redone).
# A smoke run of the whole chain: TIME=60 TAG=-smoke SEEDS=1 SIZES=100.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}; export B
TIME=${TIME:-7200}; TAG=${TAG:--2h-defaults}; SIZES=${SIZES:-100 300 1000}; SEEDS=${SEEDS:-1 2 3}
OBJECTIVES=${OBJECTIVES:-mlm rtd clm}
export SEEDS THREADS="${THREADS:-2}"
W=eval/work/exp
source eval/exp_recipe.sh
uptime
for obj in $OBJECTIVES; do  # LR=0: pretrain's default rate, warmup and --lr-min for the objective
  CORPUS=all OBJECTIVES=$obj TIME=$TIME LR=0 TAG=$TAG FLOPS= STEPS= MASK= PRE_EXTRA= eval/exp_pretrain.sh
done
models=(); pairs=(); bases=()
for obj in $OBJECTIVES; do
  base=$(scratch_for "$obj$TAG")
  models+=("$obj$TAG"); pairs+=("$obj$TAG+def" "$base+def")
  [[ " ${bases[*]} " == *" $base "* ]] || bases+=("$base")
done
FT=(FT_EXTRA="--lr 0 --layer-decay 0" FT_TAG=+def)
env "${FT[@]}" MODELS="${models[*]} ${bases[*]}" eval/exp_sst2.sh
for m in "${models[@]}"; do
  base=$(scratch_for "$m")
  env "${FT[@]}" SIZES="$SIZES" BEST="$m" BASE="$base" LE_PAIRS="$m+def $base+def" eval/exp_label_efficiency.sh
done
echo "== the headline: each model against its scratch baseline, $SIZES labels and all 6,920"
/usr/bin/python3 eval/exp_summary.py label_eff "$W/label_eff" "$W/learning$TAG.png" "$W/sst2" 6920 "${pairs[@]}"
for m in "${models[@]}"; do
  /usr/bin/python3 -c 'import json, sys; s = json.load(open(sys.argv[1] + "/trainer_state.json"))
print("%s: %d steps, %.1f M tokens, %.0f s, %s" % (sys.argv[2], s["step"], s["tokens_seen"] / 1e6, s["elapsed_s"], s["gemm"]))' \
    "$W/pre_$m" "$m"
done
grep -m1 'model name' /proc/cpuinfo
