#!/usr/bin/env bash
# eval/exp_summary.py, which turns the experiments' eval.json files into the
# tables and the label-efficiency plot of eval/RESULTS.md: the figures it
# prints are checked against hand-computed ones on made-up runs, and the plot
# appears only when gnuplot drew it (gnuplot opens its output before it
# fails: an empty eval/label_efficiency.png was once committed that way).
# gnuplot is replaced by a stand-in on PATH, so the test needs only python3
# (and numpy for the spread of sentence vectors).
set -u
source "$(dirname "$0")/tap.sh"
cd "$(dirname "$0")/.."
tap_plan 11
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || bail "python3 is not installed (apt-get install python3)"
SUMMARY=eval/exp_summary.py
TMP=$(mktemp -d "${TMPDIR:-/tmp}/selfsup-exp-summary.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

run() { # DIR ACCURACY: a fine-tuned run's eval.json
  mkdir -p "$1" && printf '{"dev": {"accuracy": %s, "macro_f1": 0.5, "mcc": 0.1}}\n' "$2" >"$1/eval.json"
}
LE=$TMP/label_eff FULL=$TMP/sst2
run "$LE/a+lr1_n100_s1" 0.60; run "$LE/a+lr1_n100_s2" 0.62; run "$LE/a+lr1_n100_s3" 0.64
run "$LE/a+lr2_n100_s1" 0.70; run "$LE/a+lr2_n100_s2" 0.70; run "$LE/a+lr2_n100_s3" 0.73
run "$LE/a+lr1_n1000_s1" 0.80; run "$LE/a+lr1_n1000_s2" 0.82
run "$LE/a+lr2_n1000_s1" 0.75
run "$FULL/a+lr1_s1" 0.90; run "$FULL/a+lr1_s2" 0.91
run "$LE/b_n100_s1" 0.50; run "$LE/b_n100_s2" 0.52
mkdir -p "$LE/b_n100_s3"  # a run without eval.json (interrupted): not counted

curve_ok() {
  local out want
  out=$("$PY" "$SUMMARY" curve "$LE" "$FULL" 6920 "A=a+lr1,a+lr2" B=b) || return 1
  # per size the recipe with the higher mean: lr2 at 100 (71.00 vs 62.00), lr1 at 1,000 and 6,920
  want=$(printf '# curve\tlabels\tmean\tstd\tseeds\trun\nA\t100\t71.00\t1.73\t3\ta+lr2\nA\t1000\t81.00\t1.41\t2\ta+lr1\nA\t6920\t90.50\t0.71\t2\ta+lr1\nB\t100\t51.00\t1.41\t2\tb')
  [ "$out" = "$want" ] || { echo "$out" | sed 's/^/# got: /'; return 1; }
}
check "curve: mean and sample std per size, the better recipe chosen per size, interrupted runs skipped" curve_ok

table_ok() {
  local out
  out=$("$PY" "$SUMMARY" label_eff "$LE" "" "$FULL" 6920 a+lr1 b) || return 1
  echo "$out" | grep -qF '| 100 | 62.00 ± 2.00 (3) | 51.00 ± 1.41 (2) | +11.00 |' &&
    echo "$out" | grep -qF '| 6920 | 90.50 ± 0.71 (2) | – | – |' || { echo "$out" | sed 's/^/# got: /'; return 1; }
}
check "label_eff: the table's cells and differences, the full-size runs as 6,920" table_ok

# balanced sizes (finetune --per-class): _n16pc_ is 16 of each class of the
# run's labels.json, a size of its own beside 32 random sentences
PC=$TMP/pc
for s in 1 2; do run "$PC/c_n16pc_s$s" 0.7$s; printf '["0", "1"]\n' >"$PC/c_n16pc_s$s/labels.json"; done
run "$PC/c_n32_s1" 0.60; run "$PC/c_n100_s1" 0.80
per_class_ok() {
  local out
  out=$("$PY" "$SUMMARY" label_eff "$PC") || return 1
  [ "$(echo "$out" | grep -c '^| [0-9]')" = 3 ] && echo "$out" | grep -qF '| 32 (16 per class) | 71.50 ± 0.71 (2) |' &&
    echo "$out" | grep -qF '| 32 | 60.00 ± 0.00 (1) |' &&
    [ "$("$PY" "$SUMMARY" curve "$PC" "" 0 c | sed -n 2p | cut -f2)" = 32 ] || { echo "$out" | sed 's/^/# got: /'; return 1; }
}
check "label_eff: Kpc runs count K x the run's classes, a size apart from as many random sentences" per_class_ok

# gnuplot stand-ins: one opens its output and fails, one writes a picture
mkdir -p "$TMP/bad" "$TMP/good"
cat >"$TMP/bad/gnuplot" <<'EOF'
#!/bin/sh
out=$(printf '%s' "$2" | sed -n "s/.*set output '\([^']*\)'.*/\1/p"); : >"$out"; echo "gnuplot: all points undefined" >&2; exit 1
EOF
cat >"$TMP/good/gnuplot" <<'EOF'
#!/bin/sh
out=$(printf '%s' "$2" | sed -n "s/.*set output '\([^']*\)'.*/\1/p"); printf 'PNG picture' >"$out"
EOF
chmod +x "$TMP/bad/gnuplot" "$TMP/good/gnuplot"
printf '# a comment\nA\t100\t71.00\t1.73\t3\ta+lr2\nA\t1000\t81.00\t1.41\t2\ta+lr1\n' >"$TMP/curves.tsv"

failed_plot_leaves_nothing() {
  printf 'old picture' >"$TMP/kept.png"
  PATH=$TMP/bad:$PATH "$PY" "$SUMMARY" plot "$TMP/curves.tsv" "$TMP/kept.png" 2>"$TMP/err" &&
    PATH=$TMP/bad:$PATH "$PY" "$SUMMARY" plot "$TMP/curves.tsv" "$TMP/new.png" 2>>"$TMP/err" &&
    [ "$(cat "$TMP/kept.png")" = "old picture" ] && [ ! -e "$TMP/new.png" ] &&
    [ -z "$(ls "$TMP" | grep -E '\.(tmp|dat)$')" ] && grep -q 'no plot' "$TMP/err"
}
check "plot: when gnuplot fails, no empty PNG appears and an existing one is kept (no temporary files left)" failed_plot_leaves_nothing

good_plot() {
  PATH=$TMP/good:$PATH "$PY" "$SUMMARY" plot "$TMP/curves.tsv" "$TMP/kept.png" >"$TMP/out" &&
    [ "$(cat "$TMP/kept.png")" = "PNG picture" ] && grep -q "plot: $TMP/kept.png" "$TMP/out"
}
check "plot: a drawn picture replaces the old one" good_plot

bad_tsv() {
  printf 'A\t100\t71.00\t1.73\nA\tmany\t81.00\t1.41\n' >"$TMP/broken.tsv"
  ! PATH=$TMP/good:$PATH "$PY" "$SUMMARY" plot "$TMP/broken.tsv" "$TMP/b.png" 2>"$TMP/err" &&
    grep -qF "broken.tsv:2: expected curve, x, mean, std" "$TMP/err" && [ ! -e "$TMP/b.png" ]
}
check "plot: a malformed curve file is refused naming its line" bad_tsv

committed_curves() { # the source of eval/label_efficiency.png: every objective and both scratch models
  "$PY" -c '
import sys; sys.path.insert(0, "eval"); import exp_summary
names = {n for n, _ in exp_summary.read_curves("eval/label_efficiency.tsv")}
need = {"clm-2h", "mlm-2h-bf16", "rtd-2h-bf16", "scratch-decoder", "scratch-encoder"}
sys.exit(0 if need <= names else "missing curves: %s" % sorted(need - names))' && [ -s eval/label_efficiency.png ]
}
check "eval/label_efficiency.tsv has clm, mlm and rtd and both scratch curves; the PNG is not empty" committed_curves

spread_ok() { # hand-made vectors: 3 that differ only by scale (cosine 1, one direction), and an orthonormal set
  "$PY" -c "
import numpy as np
np.save('$TMP/same.npy', np.array([[1, 2, 2], [2, 4, 4], [3, 6, 6]], dtype=np.float32))
np.save('$TMP/ortho.npy', np.eye(4, dtype=np.float32))" || return 1
  out=$("$PY" $SUMMARY spread "$TMP/same.npy" "$TMP/ortho.npy") || return 1
  echo "$out" | sed 's/^/# /'
  # same: cosine 1; centred rows (-1,-2,-2), 0, (1,2,2): one direction (share 1, rank 1), spread 2/3*3 / 6 = 1/3
  # ortho: cosine 0; centred rows e_i - 1/4: variance equal over 3 directions, rank 3; spread sqrt(3)/2 / 1
  echo "$out" | grep -qF '| same.npy | 3 | 1.0000 | 0.3333 | 1.000 | 1.0 |' &&
  echo "$out" | grep -qF '| ortho.npy | 4 | 0.0000 | 0.8660 | 0.333 | 3.0 |'
}
check "spread: cosine, spread, top component and effective rank of hand-made vectors" spread_ok

selftrain_ok() { # two seeds of --teachers 3 at 100 labels, one with gold-scored pseudo-labels; a run whose student
  # never ran; seed 1 went on for rounds 2 and 3, seed 2 for round 2 (--rounds)
  ST=$TMP/st
  st_run() { # DIR TEACHER T2 T3 ENSEMBLE STUDENT [PSEUDO_ACC|- [ROUND2 ...]]
    mkdir -p "$1"
    "$PY" -c "
import json, sys
d, t1, t2, t3, ens, stu = sys.argv[1], *map(float, sys.argv[2:7])
r1 = {'round': 1, 'pseudo_labels': 2000, 'candidates': 9000, 'ensemble_dev_accuracy': ens, 'dev_accuracy': stu}
if len(sys.argv) > 7 and sys.argv[7] != '-': r1['pseudo_accuracy'] = float(sys.argv[7])
later = [{'round': 2 + k, 'pseudo_labels': 2000, 'candidates': 8000, 'dev_accuracy': float(a)}
         for k, a in enumerate(sys.argv[8:])]
json.dump({'rounds': [{'round': 0, 'pseudo_labels': 0, 'candidates': 0, 'dev_accuracy': t1}, r1] + later,
           'teachers': [{'dir': 'round-0', 'seed': 1, 'dev_accuracy': t1}, {'dir': 'teacher-2', 'seed': 1001,
           'dev_accuracy': t2}, {'dir': 'teacher-3', 'seed': 2001, 'dev_accuracy': t3}]}, open(d + '/selftrain.json', 'w'))
" "$@"
  }
  st_run "$ST/m+self_n100_s1" 0.60 0.62 0.64 0.66 0.65 0.80 0.67 0.68
  st_run "$ST/m+self_n100_s2" 0.70 0.70 0.72 0.74 0.69 - 0.71
  mkdir -p "$ST/m+self_n100_s3" && echo '{"rounds": [{"round": 0, "dev_accuracy": 0.5}]}' >"$ST/m+self_n100_s3/selftrain.json"
  st_run "$ST/other_n100_s1" 0.1 0.1 0.1 0.1 0.1
  out=$("$PY" $SUMMARY selftrain "$ST" m+self) || return 1
  echo "$out" | sed 's/^/# /'
  # seed 1: 60 -> 65 (+5), seed 2: 70 -> 69 (-1): mean +2.00; teachers 65 +- 7.07; ensembles 70 +- 5.66; students 67 +- 2.83;
  # round 2: 67 and 71 -> 69 +- 2.83; round 3: seed 1's 68 alone, said so (1)
  echo "$out" | grep -qF '| 100 | 1 | 60.00 | 62.00 / 64.00 | 66.00 | 65.00 | +5.00 | 2000 (9000) | 80.00 | 67.00 / 68.00 |' &&
  echo "$out" | grep -qF '| 100 | 2 | 70.00 | 70.00 / 72.00 | 74.00 | 69.00 | -1.00 | 2000 (9000) |  | 71.00 |' &&
  echo "$out" | grep -qF '| 100 | mean ± std (2) | 65.00 ± 7.07 | | 70.00 ± 5.66 | 67.00 ± 2.83 | **+2.00** | | 80.00 ± 0.00 | 69.00 ± 2.83 / 68.00 ± 0.00 (1) |' &&
  [ "$(echo "$out" | grep -c '^| 100 |')" -eq 3 ]
}
check "selftrain: per seed and mean +- std of teacher, the other teachers, their ensemble, the student and later rounds" selftrain_ok

# lever: two pretraining runs a side, each fine-tuned with two seeds; the
# side's figure is the mean of its runs' means, the change's standard error
# comes from the spread of those means (not of the fine-tuning seeds):
# base 61, 65 -> 63.00 (sd 2.83); lever 70, 67 -> 68.50 (sd 2.12);
# +5.50, SE sqrt(8/2 + 4.5/2) = 2.50; paired by pretraining seed (the -s<S>
# of the names, none for seed 1) +9, +2: +5.50, SE 4.95 / sqrt(2) = 3.50,
# whatever order the runs are given in
LV=$TMP/lever LVF=$TMP/lever_full
run "$LV/b_n1000_s1" 0.60; run "$LV/b_n1000_s2" 0.62; run "$LV/b-s2_n1000_s1" 0.64; run "$LV/b-s2_n1000_s2" 0.66
run "$LV/l_n1000_s1" 0.70; run "$LV/l_n1000_s2" 0.70; run "$LV/l-s2_n1000_s1" 0.66; run "$LV/l-s2_n1000_s2" 0.68
run "$LV/l-s3_n1000_s1" 0.50; run "$LV/l2_n1000_s1" 0.55  # l2: seed 1 by its name, as l
run "$LVF/b_s1" 0.80; run "$LVF/l_s1" 0.81
lever_ok() {
  local out one swap odd
  out=$("$PY" "$SUMMARY" lever "$LV" "$LVF" 6920 BASE=b,b-s2 LEVER=l,l-s2) || return 1
  one=$("$PY" "$SUMMARY" lever "$LV" "$LVF" 6920 BASE=b,b-s2 LEVER=l) || return 1
  swap=$("$PY" "$SUMMARY" lever "$LV" "$LVF" 6920 BASE=b-s2,b LEVER=l,l-s2) || return 1
  odd=$("$PY" "$SUMMARY" lever "$LV" "$LVF" 6920 BASE=b,b-s2 LEVER=l-s3,l) || return 1
  echo "$out" | grep -qF '| 1000 | base | b-s2 | 64.00, 66.00 | 65.00 ± 1.41 |' &&
    echo "$out" | grep -qF '| 1000 | base | mean of 2 pretraining run(s) | | **63.00** ± 2.83 |' &&
    echo "$out" | grep -qF '| 1000 | lever | mean of 2 pretraining run(s) | | **68.50** ± 2.12 |' &&
    echo "$out" | grep -qF '| 1000 | lever - base | | | **+5.50** ± 2.50 (SE over 2 + 2 pretraining runs, +2.2 SE) |' &&
    echo "$out" | grep -qF '| 1000 | lever - base, paired by pretraining seed (1, 2) | | +9.00, +2.00 | +5.50 ± 3.50, +1.6 SE on 1 degree(s) of freedom |' &&
    echo "$swap" | grep -qF '| 1000 | lever - base, paired by pretraining seed (1, 2) | | +9.00, +2.00 |' &&
    echo "$out" | grep -qF '| 6920 | lever - base | | | **+1.00** (one pretraining run on a side' &&
    echo "$one" | grep -qF '| 1000 | lever - base | | | **+7.00** (one pretraining run on a side' &&
    ! echo "$odd" | grep -q 'paired' &&
    ! "$PY" "$SUMMARY" lever "$LV" "$LVF" 6920 BASE=b LEVER=l9 2>"$TMP/lv.err" && grep -q 'no fine-tuning results for l9' "$TMP/lv.err" &&
    ! "$PY" "$SUMMARY" lever "$LV" "$LVF" 6920 BASE=b,b-s2 LEVER=l,l2 2>"$TMP/lv.err" &&
    grep -q 'two LEVER runs have one pretraining seed (l, l2)' "$TMP/lv.err" ||
    { echo "$out" | sed 's/^/# got: /'; return 1; }
}
check "lever: per pretraining run, each side's mean of means, the change and its SE over pretraining runs, paired by the names' seeds" lever_ok

# recipe-diff: how a lever's pretraining run was made differently from its
# baseline's. A config.json without "bias" is a model with biases (written
# before --no-bias), an option a run does not record is shown as unrecorded,
# the seed is not a difference, and a run without its files is an error.
RD=$TMP/recipe
mkdir -p "$RD/base" "$RD/lever" "$RD/same"
echo '{"kind": "encoder", "d_model": 256}' >"$RD/base/config.json"
echo '{"kind": "encoder", "d_model": 256, "bias": false}' >"$RD/lever/config.json"
cp "$RD/base/config.json" "$RD/same/config.json"
echo '{"step": 9, "options": {"batch": 32, "seed": "1", "lr": 0.001}}' >"$RD/base/trainer_state.json"
echo '{"step": 7, "options": {"batch": 8, "seed": "2", "lr": 0.001, "batch_ramp": 0.5}}' >"$RD/lever/trainer_state.json"
echo '{"step": 3, "options": {"batch": 32, "seed": "3", "lr": 0.001}}' >"$RD/same/trainer_state.json"
recipe_ok() {
  local out want
  out=$("$PY" "$SUMMARY" recipe-diff "$RD/base" "$RD/lever") || return 1
  want=$(printf 'config.bias: true -> false\noptions.batch: 32 -> 8\noptions.batch_ramp: (unrecorded) -> 0.5')
  [ "$out" = "$want" ] || { echo "$out" | sed 's/^/# got: /'; return 1; }
  [ -z "$("$PY" "$SUMMARY" recipe-diff "$RD/base" "$RD/same")" ] &&
    ! "$PY" "$SUMMARY" recipe-diff "$RD/base" "$RD/none" 2>"$TMP/rd.err" &&
    grep -q "recipe/none: not a finished or resumable pretraining run" "$TMP/rd.err"
}
check "recipe-diff: model settings and options that differ, absent bias = biases, the seed left out" recipe_ok
