#!/usr/bin/env bash
# Prompt-based classification through the CLI, printing TAP: zero-shot
# 'classify --template --verbalizer [--calibrate]' on tiny clm and mlm runs
# pretrained on SST-2's sentences (output as any classify: lines and --json),
# the template and verbalizer errors a user meets, and prompt-based
# fine-tuning ('finetune --template --verbalizer', one template or two)
# whose directory classifies with plain 'classify --model DIR' exactly as
# its dev evaluation did.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 15
tap_needs sst2 train.tsv cli-prompt

SST=$MIRROR/sst2
tail -n +2 "$SST/train.tsv" | cut -f1 >"$TMP/text.txt"
"$SS" tokenizer train --vocab-size 1200 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary line "$TMP/text.txt" >/dev/null 2>&1 ||
  bail "could not make tokenizer and shards"
for obj in clm mlm; do
  "$SS" pretrain --objective $obj --data "$TMP/shards" --out "$TMP/$obj" --layers 2 --d-model 64 --heads 2 --seq 64 \
    --batch 16 --steps 100 --lr 2e-3 --eval-every 100 --eval-tokens 4096 --threads 1 >"$TMP/$obj.log" 2>&1 ||
    bail "pretraining $obj failed: $(tail -3 "$TMP/$obj.log")"
done

printf 'a gorgeous , witty , moving film .\na dull , lifeless and boring mess .\nN/A\n' >"$TMP/three.txt"
VERB='0=bad,awful;1=good,great'
"$SS" classify --model "$TMP/clm" --template '{text} It was' --verbalizer "$VERB" -t 1 "$TMP/three.txt" >"$TMP/z1" 2>&1
check "zero-shot on a clm run prints label, probability and every label's probability per line" \
  bash -c "[ $? -eq 0 ] && [ \$(grep -cE '^[01]	0\.[0-9]{4}	0=0\.[0-9]{4} 1=0\.[0-9]{4}$' '$TMP/z1') -eq 3 ]"
"$SS" classify --model "$TMP/mlm" --template '{text} It was [MASK].' --verbalizer "$VERB" --json -t 1 \
  <"$TMP/three.txt" >"$TMP/z2" 2>&1
check "zero-shot on an mlm run with --json: one object per line, labels in the verbalizer's order, summing to 1" \
  /usr/bin/python3 -c "
import json; rows = [json.loads(l) for l in open('$TMP/z2')]
assert len(rows) == 3 and rows[0]['text'].startswith('a gorgeous'), rows
assert all(list(r['probs']) == ['0', '1'] and abs(sum(r['probs'].values()) - 1) < 1e-3 for r in rows), rows"
"$SS" classify --model "$TMP/mlm" --template '{text} It was [MASK].' --verbalizer "$VERB" --json --calibrate -t 1 \
  <"$TMP/three.txt" >"$TMP/z3" 2>&1
check "--calibrate changes the probabilities (the content-free prior divided out)" /usr/bin/python3 -c "
import json; a = [json.loads(l)['probs']['1'] for l in open('$TMP/z2')]; b = [json.loads(l)['probs']['1'] for l in open('$TMP/z3')]
assert len(b) == 3 and all(abs(x - y) > 1e-4 for x, y in zip(a, b)), (a, b)"

"$SS" classify --model "$TMP/mlm" --template '{text} A [MASK] film.' --verbalizer "$VERB" --json --calibrate -t 1 \
  <"$TMP/three.txt" >"$TMP/z4" 2>&1
"$SS" classify --model "$TMP/mlm" --template '{text} It was [MASK].' --template '{text} A [MASK] film.' \
  --verbalizer "$VERB" --json --calibrate -t 1 <"$TMP/three.txt" >"$TMP/z5" 2>&1
check "--template twice: the softmax of the mean of the two templates' calibrated log-probabilities" /usr/bin/python3 -c "
import json, math
one, two, both = ([json.loads(l)['probs'] for l in open('$TMP/' + f)] for f in ('z3', 'z4', 'z5'))
assert len(both) == 3, both
for a, b, g in zip(one, two, both):
    s = {k: (math.log(a[k]) + math.log(b[k])) / 2 for k in a}
    want = math.exp(s['1']) / (math.exp(s['0']) + math.exp(s['1']))
    assert abs(g['1'] - want) < 2e-3 and abs(a['1'] - b['1']) > 1e-3, (a, b, g, want)"

"$SS" classify --model "$TMP/clm" --template '{text} It was [MASK].' --verbalizer "$VERB" "$TMP/three.txt" >"$TMP/e1" 2>&1
check "a decoder template with text after [MASK] is an error saying why" \
  bash -c "[ $? -ne 0 ] && grep -q 'nothing may follow \[MASK\]' '$TMP/e1'"
"$SS" classify --model "$TMP/mlm" --template '{text} It was.' --verbalizer "$VERB" "$TMP/three.txt" >"$TMP/e2" 2>&1
check "an encoder template without [MASK] is an error" \
  bash -c "[ $? -ne 0 ] && grep -q \"an encoder's template needs exactly one\" '$TMP/e2'"
"$SS" classify --model "$TMP/mlm" --template 'It was [MASK].' --verbalizer "$VERB" "$TMP/three.txt" >"$TMP/e3" 2>&1
check "a template without {text} is an error" bash -c "[ $? -ne 0 ] && grep -q 'has no {text}' '$TMP/e3'"
"$SS" classify --model "$TMP/mlm" --template '{text} [MASK]' --verbalizer '0=bad;0=good' "$TMP/three.txt" >"$TMP/e4" 2>&1
check "a label given twice in the verbalizer is an error" bash -c "[ $? -ne 0 ] && grep -q \"names label '0' twice\" '$TMP/e4'"
"$SS" classify --model "$TMP/mlm" --template '{text} [MASK]' "$TMP/three.txt" >"$TMP/e5" 2>&1
check "--template without --verbalizer is an error" bash -c "[ $? -ne 0 ] && grep -q 'go together' '$TMP/e5'"
"$SS" classify --model "$TMP/clm" "$TMP/three.txt" >"$TMP/e6" 2>&1
check "classify on a pretrained run without a prompt points to --template" \
  bash -c "[ $? -ne 0 ] && grep -q 'zero-shot with --template and --verbalizer' '$TMP/e6'"

FT=(--train "$SST/train.tsv" --dev "$SST/dev.tsv" --train-size 300 --epochs 1 --batch 16 --max-seq 64 --lr 1e-3 --threads 1)
tail -n +2 "$SST/dev.tsv" | cut -f1 >"$TMP/dev.txt"
tail -n +2 "$SST/dev.tsv" | cut -f2 >"$TMP/dev.gold"
# plain 'classify --model DIR' of fine-tuned run ft-NAME (exit status RC)
# on dev reproduces its eval.json accuracy; EXTRA: more Python assertions
# (ev: eval.json, p: prompt.json)
reproduces() {
  local name=$1 rc=$2 what=$3 extra=$4
  "$SS" classify --model "$TMP/ft-$name" -t 1 "$TMP/dev.txt" >"$TMP/ft-$name.out" 2>&1
  check "$what" /usr/bin/python3 -c "
import json
assert $rc == 0, open('$TMP/ft-$name.log').read()[-500:]
ev = json.load(open('$TMP/ft-$name/eval.json')); p = json.load(open('$TMP/ft-$name/prompt.json'))
$extra
pred = [l.split('\t')[0] for l in open('$TMP/ft-$name.out')]; gold = [l.strip() for l in open('$TMP/dev.gold')]
assert len(pred) == len(gold) == ev['dev']['n'] == 872
acc = sum(a == b for a, b in zip(pred, gold)) / len(gold)
print('# $name: dev accuracy', acc, 'eval.json', ev['dev']['accuracy'])
assert acc == ev['dev']['accuracy'], (acc, ev['dev']['accuracy'])"
}
for obj in clm mlm; do
  tpl='{text} It was [MASK].'
  [ $obj = clm ] && tpl='{text} It was'
  "$SS" finetune --init "$TMP/$obj" "${FT[@]}" --template "$tpl" --verbalizer '0=bad;1=good' --out "$TMP/ft-$obj" \
    >"$TMP/ft-$obj.log" 2>&1
  reproduces $obj $? "prompt-based fine-tuning of the $obj run; plain 'classify --model DIR' reproduces its dev accuracy" \
    "assert p['template'] == '''$tpl''' and p['verbalizer'] == '0=bad;1=good', p"
done
T2='Review: {text} Overall, it was'
"$SS" finetune --init "$TMP/clm" "${FT[@]}" --template '{text} It was' --template "$T2" --verbalizer '0=bad;1=good' \
  --out "$TMP/ft-two" >"$TMP/ft-two.log" 2>&1
reproduces two $? "--template twice in finetune: each row through both (twice the steps), prompt.json lists both, classify reproduces dev" "
one = json.load(open('$TMP/ft-clm/eval.json'))
assert p['template'] == ['{text} It was', '''$T2'''] and ev['template'] == p['template'], p
assert ev['steps'] == 2 * one['steps'] and ev['train_rows'] == one['train_rows'] == 300, (ev['steps'], one['steps'])"
"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --template '{text} It was [MASK].' --verbalizer '0=bad;1=magnificent' \
  --out "$TMP/ft-bad" >"$TMP/e7" 2>&1
check "prompt-based fine-tuning with a word of several tokens is an error showing its tokens" \
  bash -c "[ $? -ne 0 ] && grep -q \"the verbalizer word 'magnificent' (label '1') is [0-9]* tokens for this tokenizer ('\" '$TMP/e7' &&
           ! test -e '$TMP/ft-bad'"
"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --template '{text} It was [MASK].' --verbalizer '0=bad;1=good' \
  --freeze-encoder --out "$TMP/ft-bad" >"$TMP/e8" 2>&1
check "--freeze-encoder with --template is an error" \
  bash -c "[ $? -ne 0 ] && grep -q 'does not go with --template' '$TMP/e8'"
