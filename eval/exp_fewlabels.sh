#!/usr/bin/env bash
# Few labels, no labels (make exp-fewlabels): the roads from a pretrained
# model (MODEL, default mlm-2h: eval/exp_pretrain.sh's run pre_$MODEL) to a
# classifier, on SST-2 dev (sentence protocol), beside the plain-head
# fine-tuning of the same model (eval/exp_label_efficiency.sh's runs):
#   zero-shot  no labelled row: classify --template --verbalizer, with and
#              without --calibrate; then the seven templates below given
#              together (--template several times: the mean of their class
#              log-probabilities), fixed before any of them was read on
#              this model (ZS_TEMPLATES=0 skips them)
#   prompt     prompt-based fine-tuning (finetune --template --verbalizer) at
#              SIZES labels (N random sentences, or Kpc: K of each class),
#              with the plain head's subsets, seeds, epochs and dev
#              evaluations (max(3 epochs, 300 steps), six of them) and
#              finetune's default rate for it (not the plain head's 2e-4);
#              FT_TEMPLATES=K: through the first K of the seven templates
#              at once (runs <MODEL><FT_TAG>+ftK+prompt_...)
#   self       self-training at ST_SIZES labels: the plain-head teacher, one
#              round of pseudo-labels on IMDB review sentences (never SST or
#              Rotten Tomatoes text; 20,000 drawn with a fixed seed from the
#              unlabelled reviews), probability >= 0.9, at most 2,000
#              balanced, a student trained 3 epochs on labelled + pseudo rows
#              (ST_MAX and ST_THRESHOLD change the 2,000 and 0.9, ST_GOLD=N
#              repeats the labelled rows N times (--gold-repeat); ST_PROMPT=1
#              makes teacher and student prompt-based, the prompt mode's
#              template(s) and verbalizer: runs <MODEL><FT_TAG>+pself<ST_TAG>
#              (+ftK+pself with FT_TEMPLATES=K), else +self<ST_TAG>; ST_TEACHERS=K: K teachers' mean labels
#              the pool (--teachers); ST_ROUNDS=N: N rounds (--rounds; each
#              later round labelled by the previous student; a finished run
#              with fewer rounds continues in place, its rounds kept);
#              ST_POOL=train: see below)
# Runs go to eval/work/exp/label_eff/<MODEL><FT_TAG>+prompt_n<N>_s<S> and
# <MODEL><FT_TAG>+self_n<N>_s<S> (so exp_summary.py's label_eff table has them
# as models of their own), zero-shot results to eval/work/exp/fewlabels/.
# FT_EXTRA adds fine-tuning flags to both (as in eval/exp_label_efficiency.sh,
# e.g. FT_EXTRA="--lr 5e-4 --layer-decay 0.8" FT_TAG=+lr5e-4+ld0.8: the
# self-training teacher and student then use the plain head's best recipe).
# TEMPLATE and VERB_FT replace the prompt (defaults below); TEMPLATE_TAG
# then names it: the zero-shot files get it and the runs' names carry
# <MODEL><FT_TAG><TEMPLATE_TAG> (required with either, so that no result is
# mistaken for the default prompt's).
# A finished run is not redone; an interrupted one starts over (self-training
# continues by itself).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}; SS=$B/selfsup
THREADS=${THREADS:-2}; SEEDS=${SEEDS:-1 2 3}; SIZES=${SIZES-100 300 1000}; ST_SIZES=${ST_SIZES-100 300}  # empty: none
MODEL=${MODEL:-mlm-2h}
W=eval/work/exp
R=$W/fewlabels
SST=$($SS data get sst2)
IMDB=$($SS data get imdb)
source eval/exp_recipe.sh
read -r -a FT_EXTRA_A <<<"${FT_EXTRA:-}"; FT_TAG=${FT_TAG:-}
mkdir -p "$R" "$W/label_eff"
RUN=$W/pre_$MODEL
TTAG=${TEMPLATE_TAG:-}
if [ -n "${TEMPLATE:-}${VERB_FT:-}" ] && [ -z "$TTAG" ]; then
  echo "exp_fewlabels.sh: TEMPLATE or VERB_FT given without TEMPLATE_TAG (e.g. TEMPLATE_TAG=+t2)" >&2; exit 2
fi
if [ -z "${TEMPLATE:-}" ]; then
  case $MODEL in
    clm*) TEMPLATE='{text} It was' ;;
    *) TEMPLATE='{text} It was [MASK].' ;;
  esac
fi
VERB_ZS='0=terrible,bad,awful;1=great,good,wonderful'
# DETOK=ptb: every text read with --detokenize ptb (SST-2's Treebank tokens
# as ordinary text); its results are tagged +ptb
DT=(); DTAG=
[ -n "${DETOK:-}" ] && DT=(--detokenize "$DETOK") && DTAG=+$DETOK
VERB_FT=${VERB_FT:-'0=terrible;1=great'}
FT_TAG=$FT_TAG$TTAG
tail -n +2 "$SST/dev.tsv" | cut -f1 >"$R/dev.txt"
tail -n +2 "$SST/dev.tsv" | cut -f2 >"$R/dev.gold"

echo "== zero-shot: $MODEL, template '$TEMPLATE', verbalizer '$VERB_ZS'"
for cal in "" --calibrate; do
  out=$R/zeroshot_${MODEL}${DTAG}${TTAG}${cal}.txt
  [ -s "$out" ] || $SS classify --model "$RUN" --template "$TEMPLATE" --verbalizer "$VERB_ZS" $cal "${DT[@]}" \
    --threads "$THREADS" "$R/dev.txt" | cut -f1 >"$out"
  paste "$out" "$R/dev.gold" | awk -v c="${cal:-uncalibrated}" \
    '{n++; ok += ($1 == $2)} END {printf "zero-shot %s: %d/%d = %.2f%%\n", c, ok, n, 100 * ok / n}'
done

# several templates at once: exp_recipe.sh's seven, the same for every
# model (an encoder's with [MASK] where a decoder's word goes)
template_args "$MODEL" 7; ZA=("${TA[@]}")
if [ "${ZS_TEMPLATES:-1}" != 0 ]; then
  echo "== zero-shot, the ${#TEMPLATES7[@]} templates together"
  for cal in "" --calibrate; do
    out=$R/zeroshot_${MODEL}${DTAG}+t${#TEMPLATES7[@]}${cal}.txt
    [ -s "$out" ] || $SS classify --model "$RUN" "${ZA[@]}" --verbalizer "$VERB_ZS" $cal "${DT[@]}" \
      --threads "$THREADS" "$R/dev.txt" | cut -f1 >"$out"
    paste "$out" "$R/dev.gold" | awk -v c="${cal:-uncalibrated}" -v n=${#TEMPLATES7[@]} \
      '{t++; ok += ($1 == $2)} END {printf "zero-shot, %d templates, %s: %d/%d = %.2f%%\n", n, c, ok, t, 100 * ok / t}'
  done
fi

# sizes (N or Kpc) and schedules are the plain head's (exp_recipe.sh's
# subset and schedule, as eval/exp_label_efficiency.sh runs them).
# FT_TEMPLATES=K fine-tunes through the first K of the seven templates
# at once (finetune --template K times; runs tagged +ftK): every row through
# each, the schedule of K x N rows (at least 300 steps and 3 epochs, as for
# N rows: the same steps at 100 and 300 labels, about twice them at 1,000).
PT=(--template "$TEMPLATE"); PTAG=; PK=1
if [ -n "${FT_TEMPLATES:-}" ]; then
  PK=$FT_TEMPLATES; PTAG=+ft$PK; template_args "$MODEL" "$PK"; PT=("${TA[@]}")
fi
for size in $SIZES; do
  read -r n cut < <(subset "$size"); read -r epochs every < <(schedule "$((n * PK))")
  for s in $SEEDS; do
    out=$W/label_eff/${MODEL}${FT_TAG}${PTAG}+prompt${DTAG}_n${size}_s$s
    [ -s "$out/eval.json" ] && continue
    rm -rf "$out"
    echo "== prompt-based fine-tuning: $MODEL, $n sentences ($cut), seed $s ($epochs epochs, $PK template(s))"
    # --lr 0 --layer-decay 0: finetune's defaults for prompt-based fine-tuning
    # (the rates the study measured best), not the plain head's 2e-4 of
    # FT_RECIPE (which every run before the eleventh session's fix used
    # unless FT_EXTRA gave --lr); FT_EXTRA still overrides them
    $SS finetune --init "$RUN" "${PT[@]}" --verbalizer "$VERB_FT" --train "$SST/train.tsv" \
      --dev "$SST/dev.tsv" --out "$out" "${FT_RECIPE[@]}" --lr 0 --layer-decay 0 --epochs "$epochs" \
      --eval-every "$every" $cut --seed "$s" --threads "$THREADS" "${DT[@]}" "${FT_EXTRA_A[@]}" |
      grep --line-buffered -E '^(dev:|best)'
  done
done

# ST_POOL=train: the pool is 20,000 sentences of IMDB's *labelled* train
# reviews instead, each with its review's label as a gold column that
# training never sees: selftrain.json then reports how often the chosen
# pseudo-labels agree with the review's label (a proxy for their accuracy:
# a sentence can disagree with its review); runs tagged -trainpool
ST_TAG=${ST_TAG:-}
POOL=$W/imdb_sentences.txt
if [ "${ST_POOL:-unsup}" = train ]; then
  POOL=$W/imdb_train_sentences.tsv; ST_TAG="${ST_TAG:-}-trainpool"
  if [ ! -s "$POOL" ]; then
    echo "== unlabelled pool: 20,000 sentences of IMDB's labelled train reviews, the review label as hidden gold"
    zstdcat "$IMDB/train.tsv.zst" | /usr/bin/python3 -c '
import random, re, sys
sents = []
next(sys.stdin)
for line in sys.stdin:
    text, label = line.rstrip("\n").rsplit("\t", 1)
    for s in re.split(r"(?<=[.!?])\s+", text.strip()):
        if 5 <= len(s.split()) <= 40: sents.append((s, label))
random.Random(15).shuffle(sents)
sys.stdout.write("sentence\tlabel\n" + "".join("%s\t%s\n" % p for p in sents[:20000]))' >"$POOL.part" && mv "$POOL.part" "$POOL"
  fi
elif [ ! -s "$POOL" ]; then
  echo "== unlabelled pool: 20,000 sentences of the unlabelled IMDB reviews (seeded draw)"
  zstdcat "$IMDB/unsup.txt.zst" | /usr/bin/python3 -c '
import random, re, sys
sents = []
for line in sys.stdin:
    for s in re.split(r"(?<=[.!?])\s+", line.strip()):
        if 5 <= len(s.split()) <= 40: sents.append(s)
random.Random(14).shuffle(sents)
sys.stdout.write("\n".join(sents[:20000]) + "\n")' >"$POOL.part" && mv "$POOL.part" "$POOL"
fi
ST_MAX=${ST_MAX:-2000}; ST_THRESHOLD=${ST_THRESHOLD:-0.9}; ST_ROUNDS=${ST_ROUNDS:-1}
[[ $ST_ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "exp_fewlabels.sh: ST_ROUNDS=$ST_ROUNDS is not a positive integer" >&2; exit 2; }
ST_NAME=+self; ST_A=()
[ -n "${ST_GOLD:-}" ] && ST_A+=(--gold-repeat "$ST_GOLD")  # ST_GOLD=N: the labelled rows N times
# ST_TEACHERS=K: round 1's pseudo-labels from the mean of K teachers (--teachers); runs tagged -tK
[ -n "${ST_TEACHERS:-}" ] && ST_A+=(--teachers "$ST_TEACHERS") && ST_TAG="$ST_TAG-t$ST_TEACHERS"
# ST_PROMPT=1 with FT_TEMPLATES=K: teacher and student through the K templates (runs +ftK+pself)
SK=1
if [ -n "${ST_PROMPT:-}" ]; then ST_NAME=$PTAG+pself; SK=$PK; ST_A+=("${PT[@]}" --verbalizer "$VERB_FT"); fi
for size in $ST_SIZES; do
  read -r n cut < <(subset "$size"); read -r epochs every < <(schedule "$((n * SK))")
  for s in $SEEDS; do
    out=$W/label_eff/${MODEL}${FT_TAG}${ST_NAME}${ST_TAG}_n${size}_s$s
    # finished with ST_ROUNDS rounds (or more, or stopped early: a round found no confident
    # pseudo-label of some class); a run of fewer rounds goes on with the next
    [ -s "$out/selftrain.json" ] && /usr/bin/python3 -c 'import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(not (len(s["rounds"]) > int(sys.argv[2]) or "stopped_at_round" in s))' "$out/selftrain.json" "$ST_ROUNDS" &&
      continue
    echo "== self-training: $MODEL, $n sentences ($cut), seed $s"
    $SS finetune --init "$RUN" --train "$SST/train.tsv" --dev "$SST/dev.tsv" --out "$out" "${FT_RECIPE[@]}" \
      --epochs "$epochs" --eval-every "$every" $cut --seed "$s" --threads "$THREADS" \
      --precision fp32 --unlabeled "$POOL" --rounds "$ST_ROUNDS" --threshold "$ST_THRESHOLD" --max-pseudo "$ST_MAX" \
      --student-epochs 3 "${ST_A[@]}" "${FT_EXTRA_A[@]}" |
      grep --line-buffered -E '^(self-training|  |dev:)'
  done
done
[ -z "$ST_SIZES" ] || /usr/bin/python3 eval/exp_summary.py selftrain "$W/label_eff" "$MODEL$FT_TAG$ST_NAME$ST_TAG" || true
/usr/bin/python3 eval/exp_summary.py label_eff "$W/label_eff" "" "" "" \
  "$MODEL$FT_TAG" scratch-encoder "$MODEL$FT_TAG$PTAG+prompt" scratch-encoder "$MODEL$FT_TAG$ST_NAME$ST_TAG" scratch-encoder 2>/dev/null || true
