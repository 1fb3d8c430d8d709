#!/usr/bin/env bash
# Linear probes (make exp-probe): how much of SST-2 a pretrained model's
# frozen features already hold. For each model of PROBE_MODELS (names as in
# eval/exp_recipe.sh: a pretraining run pre_<name>, or scratch-encoder /
# scratch-decoder: random weights, the floor), a logistic regression on its
# pooled final-layer vectors: finetune --freeze-encoder --no-pooler (the body,
# its final LayerNorm included, is frozen; the head is one linear layer over
# the pooled vector, softmax over the two classes), --pooling POOL for each of
# PROBE_POOLS (default mean; a decoder also wmean and last), no dropout, no
# weight decay, on all 6,920 SST-2 train sentences, PROBE_EPOCHS epochs at lr
# PROBE_LR (linear decay), dev evaluated every epoch and the best kept, SEEDS
# seeds (the head's init and the order). Chosen before any result, not tuned.
# Runs go to eval/work/exp/probe/<model>+<pool>_s<seed>; the table is
# eval/exp_summary.py's sst2 table of that directory. Then, for each
# pretrained model, how spread its frozen vectors of the 872 dev sentences
# are (selfsup embed, mean pooling and an encoder's [CLS]; exp_summary.py
# spread): a body collapsed onto a few directions holds nothing to probe.
# A scratch model's vectors come from its first probe (a classifier whose
# frozen body is the random initialisation).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}; SS=$B/selfsup
THREADS=${THREADS:-2}; SEEDS=${SEEDS:-1 2 3}
PROBE_MODELS=${PROBE_MODELS:-mlm-2h-bf16 scratch-encoder}
PROBE_EPOCHS=${PROBE_EPOCHS:-5}; PROBE_LR=${PROBE_LR:-3e-3}
W=eval/work/exp
SST=$($SS data get sst2)
source eval/exp_recipe.sh
R=$W/probe
mkdir -p "$R"
for m in $PROBE_MODELS; do
  pools=${PROBE_POOLS:-$(case $m in clm*|scratch-decoder) echo "mean wmean last" ;; *) echo mean ;; esac)}
  for pool in $pools; do
    for s in $SEEDS; do
      out=$R/$m+${pool}_s$s
      [ -s "$out/eval.json" ] && continue
      rm -rf "$out"
      echo "== linear probe: $m, $pool pooling, seed $s"
      $SS finetune $(init_args "$m") --train "$SST/train.tsv" --dev "$SST/dev.tsv" --out "$out" \
        --freeze-encoder --no-pooler --pooling "$pool" --dropout 0 --weight-decay 0 --layer-decay 1 \
        --lr "$PROBE_LR" --epochs "$PROBE_EPOCHS" --batch 32 --max-seq 128 --seed "$s" --threads "$THREADS" |
        grep --line-buffered -E '^(dev:|best)'
    done
  done
done
/usr/bin/python3 eval/exp_summary.py sst2 "$R"
tail -n +2 "$SST/dev.tsv" | cut -f1 >"$R/dev.txt"
vecs=()
for m in $PROBE_MODELS; do
  body=$W/pre_$m
  case $m in scratch-*) read -r first _ <<<"${PROBE_POOLS:-mean}"; body=$R/$m+${first}_s${SEEDS%% *} ;; esac
  pools=$(case $m in clm*|scratch-decoder) echo mean ;; *) echo "mean cls" ;; esac)
  for pool in $pools; do
    v=$R/$m+$pool.dev.npy
    [ -s "$v" ] || $SS embed --model "$body" --pooling "$pool" --threads "$THREADS" --npy "$v" "$R/dev.txt"
    vecs+=("$v")
  done
done
[ ${#vecs[@]} -eq 0 ] || /usr/bin/python3 eval/exp_summary.py spread "${vecs[@]}"
