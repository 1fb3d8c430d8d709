#!/usr/bin/env bash
# Experiment (make exp-lever): one pretraining lever against its baseline
# across several PRETRAINING seeds. The learning study's twenty-third part
# found why this is needed: the same masked-LM recipe pretrained with a
# second seed fine-tuned 2.8 points better at 1,000 labels, more than the
# levers it was judging; a lever is measured against the spread of
# pretraining runs, not only of fine-tuning seeds.
#
# For each pretraining seed S of PRE_SEEDS (default "1 2") it pretrains
# OBJECTIVE (default mlm) with pretrain's defaults (LR=0 of exp_pretrain.sh)
# on the unlabelled IMDB text (CORPUS=all) for FLOPS (default 3e14: the
# budget counts the same matrix products whatever the load, so two of these
# can run side by side), without and with the pretrain flags LEVER, as runs
#   eval/work/exp/pre_<OBJECTIVE><BASE_TAG>[-sS]   (the baseline)
#   eval/work/exp/pre_<OBJECTIVE><LEVER_TAG>[-sS]  (the lever)
# (seed 1 without the -s1), then fine-tunes each with finetune's defaults
# at 1,000 labels (exp_label_efficiency.sh) and with all 6,920
# (exp_sst2.sh), SEEDS fine-tuning seeds each, and prints
# `exp_summary.py lever`: per pretraining run, each side's mean of its runs'
# means, the change and its standard error over pretraining runs.
# Finished runs are reused and interrupted ones resume, so a second
# invocation with more PRE_SEEDS only adds what is new. Examples (the study's
# levers at 3e14, whose seed-1 runs and baseline seeds 1-2 exist, made with
# mlm's defaults before the twenty-ninth part: biases, 30% masking; a new
# baseline is made with today's, no biases and 40%, so it needs a new
# BASE_TAG, and LEVER="--bias --mask-prob 0.3" is then the old recipe):
#   LEVER=--no-bias LEVER_TAG=-m3-def-nobias make exp-lever
#   LEVER="--batch 8 --grad-accum 4 --batch-ramp 0.5" LEVER_TAG=-m3-ramp make exp-lever
#   LEVER="--layers 6 --d-model 256 --heads 4" LEVER_TAG=-m3-L6 make exp-lever   (a model size:
#     fewer tokens for the same FLOPS; exp_pretrain.sh drops its preset small)
# BASE_TAG defaults to -m3-def, the 3e14 baseline's name: with another FLOPS
# give both tags, so no run is mistaken for one of another budget. An
# existing run is reused as it was made: its budget and seed are checked,
# and what the runs were made with (`exp_summary.py recipe-diff`: every
# model setting and training option) too: each side's runs must agree with
# its first one, and each lever run must differ from its seed's baseline;
# the summary prints how, so the table says what the lever was (a tag names
# one lever: a new lever, a new tag). The tag's LEVER is recorded in
# eval/work/exp/lever<LEVER_TAG>.flags by its first invocation; a later one
# with other flags under that tag is refused.
# THREADS (default 2) for every step; B the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
OBJECTIVE=${OBJECTIVE:-mlm}; FLOPS=${FLOPS:-3e14}; PRE_SEEDS=${PRE_SEEDS:-1 2}
LEVER=${LEVER:-}; LEVER_TAG=${LEVER_TAG:-}; BASE_TAG=${BASE_TAG:-}
W=eval/work/exp
die() { echo "exp_lever.sh: $*" >&2; exit 2; }
[ -n "$LEVER" ] || die "LEVER is empty: give the pretrain flags of the lever (e.g. LEVER=--no-bias)"
[ -n "$LEVER_TAG" ] || die "LEVER_TAG is empty: name the lever's runs (e.g. LEVER_TAG=-m3-def-nobias)"
if [ -z "$BASE_TAG" ]; then
  [ "$FLOPS" = 3e14 ] || die "FLOPS=$FLOPS without BASE_TAG: the default baseline -m3-def is the 3e14 one"
  BASE_TAG=-m3-def
fi
[ "$BASE_TAG" != "$LEVER_TAG" ] || die "BASE_TAG and LEVER_TAG are both '$BASE_TAG'"
case $OBJECTIVE in mlm|rtd|clm|hybrid) ;; *) die "OBJECTIVE=$OBJECTIVE: mlm, rtd, clm or hybrid" ;; esac
for s in $PRE_SEEDS; do [[ $s =~ ^[1-9][0-9]*$ ]] || die "PRE_SEEDS: '$s' is not a positive integer"; done

# the flags a tag names, recorded with its first runs: the runs' files cannot tell which flags made them
mkdir -p "$W"
flags_file=$W/lever$LEVER_TAG.flags
if [ -s "$flags_file" ]; then
  recorded=$(cat "$flags_file")
  [ "$recorded" = "$LEVER" ] ||
    die "LEVER_TAG=$LEVER_TAG names LEVER=\"$recorded\" ($flags_file), not \"$LEVER\": give this lever a new tag"
else
  printf '%s\n' "$LEVER" > "$flags_file.tmp" && mv "$flags_file.tmp" "$flags_file"
fi

seed_tag() { [ "$1" = 1 ] || echo "-s$1"; }
# how run $2 was made differently from run $1, the options one of them did not record left out
recipe_diff() { /usr/bin/python3 eval/exp_summary.py recipe-diff "$1" "$2" | { grep -v '(unrecorded)' || true; }; }
export B CORPUS=all LR=0 FLOPS
base_models=() lever_models=()
declare -A first_run=()  # each side's first run: the others must have been made as it was
for s in $PRE_SEEDS; do
  for side in base lever; do
    if [ $side = base ]; then tag=$BASE_TAG$(seed_tag "$s"); extra="--seed $s"
    else tag=$LEVER_TAG$(seed_tag "$s"); extra="$LEVER --seed $s"; fi
    model=$OBJECTIVE$tag
    echo "==== $side, pretraining seed $s: pre_$model"
    OBJECTIVES=$OBJECTIVE TAG=$tag PRE_EXTRA="$extra" eval/exp_pretrain.sh
    # what the run was made with must be what this comparison says it is
    /usr/bin/python3 - "$W/pre_$model/trainer_state.json" "$FLOPS" "$s" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))["options"]
if float(o["flops"]) != float(sys.argv[2]) or str(o["seed"]) != sys.argv[3]:
    sys.exit(f"{sys.argv[1]}: made with --flops {o['flops']} --seed {o['seed']}, not {sys.argv[2]} and {sys.argv[3]}")
EOF
    # what the runs were made with: each side's runs as its first one was, each lever run unlike
    # its seed's baseline
    if [ -z "${first_run[$side]:-}" ]; then first_run[$side]=$W/pre_$model
    else
      d=$(recipe_diff "${first_run[$side]}" "$W/pre_$model")
      [ -z "$d" ] || die "pre_$model was not made as ${first_run[$side]} was (a run of other flags under this tag? give it a new tag):
$d"
    fi
    if [ $side = lever ]; then
      base_run=$W/pre_$OBJECTIVE$BASE_TAG$(seed_tag "$s")
      [ -n "$(recipe_diff "$base_run" "$W/pre_$model")" ] ||
        die "pre_$model was made as its baseline was: LEVER=\"$LEVER\" changed nothing"
      [ -n "${lever_diff:-}" ] || lever_diff=$(/usr/bin/python3 eval/exp_summary.py recipe-diff "$base_run" "$W/pre_$model")
    fi
    FT_EXTRA="--lr 0 --layer-decay 0" FT_TAG=+def BEST=$model BASE=$model LE_MODELS=$model SIZES=1000 \
      eval/exp_label_efficiency.sh | { grep -v "^|" || true; }
    FT_EXTRA="--lr 0 --layer-decay 0" FT_TAG=+def MODELS=$model eval/exp_sst2.sh | { grep -v "^|" || true; }
    if [ $side = base ]; then base_models+=("$model+def"); else lever_models+=("$model+def"); fi
  done
done
join() { local IFS=,; echo "$*"; }
echo
echo "== $OBJECTIVE at $FLOPS FLOPs, SST-2 dev (sentence protocol): LEVER=\"$LEVER\" against the baseline"
echo "the lever's runs against the baseline's (config.json, trainer_state.json):"
echo "$lever_diff" | sed 's/^/  /'
echo
/usr/bin/python3 eval/exp_summary.py lever "$W/label_eff" "$W/sst2" 6920 \
  "BASE=$(join "${base_models[@]}")" "LEVER=$(join "${lever_models[@]}")"
