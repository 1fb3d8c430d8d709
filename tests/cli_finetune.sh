#!/usr/bin/env bash
# Fine-tuning and classification through the CLI, printing TAP: a tiny
# pretrain -> finetune -> classify on SST-2 that must beat chance clearly,
# the scratch baseline, a decoder with bidirectional attention, a frozen body, gradual unfreezing,
# malformed rows (stop or skip), the
# Treebank detokenization saved with a classifier,
# default text column ('text' or 'sentence'), Ctrl-C (exit 130 with the best
# weights saved), and the errors a user meets.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 37
tap_needs sst2 train.tsv cli-finetune

SST=$MIRROR/sst2
# The unlabelled corpus: the SST-2 training sentences without their labels.
tail -n +2 "$SST/train.tsv" | cut -f1 >"$TMP/text.txt"
"$SS" tokenizer train --vocab-size 1200 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary line "$TMP/text.txt" >/dev/null 2>&1 ||
  bail "could not make tokenizer and shards"
"$SS" pretrain --objective mlm --data "$TMP/shards" --out "$TMP/mlm" --layers 2 --d-model 64 --heads 2 --seq 64 \
  --batch 16 --steps 150 --lr 2e-3 --eval-every 150 --eval-tokens 4096 --threads 1 >"$TMP/pre.log" 2>&1 ||
  bail "pretraining failed: $(tail -3 "$TMP/pre.log")"

# one thread: at d_model 64 the OpenMP barriers cost more than a second core gives
FT=(--train "$SST/train.tsv" --dev "$SST/dev.tsv" --epochs 2 --batch 32 --max-seq 64 --lr 1e-3 --threads 1)
"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --out "$TMP/clf" >"$TMP/ft.log" 2>&1
check "finetune from a pretrained mlm run exits 0 and prints dev metrics" \
  bash -c "[ $? -eq 0 ] && grep -qE '^dev: accuracy 0\.[0-9]+  macro-F1 0\.[0-9]+  MCC -?[0-9.]+' '$TMP/ft.log'"
acc=$(/usr/bin/python3 -c "import json; print(json.load(open('$TMP/clf/eval.json'))['dev']['accuracy'])" 2>/dev/null)
echo "# pretrained tiny encoder, SST-2 dev accuracy: ${acc:-none}"
check "the tiny classifier beats chance clearly on SST-2 dev (accuracy > 0.62)" \
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('${acc:-0}') > 0.62 else 1)"
check "eval.json has accuracy, macro-F1, MCC and a 2x2 confusion matrix summing to 872" /usr/bin/python3 -c "
import json; d = json.load(open('$TMP/clf/eval.json'))['dev']
assert set(['accuracy', 'macro_f1', 'mcc', 'confusion']) <= set(d)
assert sum(map(sum, d['confusion'])) == 872 and len(d['confusion']) == 2"
check "the classifier directory holds config (head cls), labels, tokenizer, metrics" bash -c \
  "grep -qE '\"head\":[[:space:]]*\"cls\"' '$TMP/clf/config.json' && grep -q '\"1\"' '$TMP/clf/labels.json' &&
   test -s '$TMP/clf/tokenizer.json' && [ \$(grep -c dev_accuracy '$TMP/clf/metrics.jsonl') -eq 2 ]"

check "Hugging Face files: config.json has id2label/label2id and dropout 0.1 as written, the weights' metadata \
'step', tokenizer_config.json (GPT2Tokenizer, no space cleanup, model max length)" /usr/bin/python3 -c "
import json, struct
c = json.load(open('$TMP/clf/config.json'))
assert c['id2label'] == {'0': '0', '1': '1'} and c['label2id'] == {'0': 0, '1': 1} and c['dropout'] == 0.1, c
f = open('$TMP/clf/model.safetensors', 'rb'); n = struct.unpack('<Q', f.read(8))[0]
m = json.loads(f.read(n))['__metadata__']
assert int(m['step']) > 0 and 'finetune_step' not in m and json.loads(m['labels']) == ['0', '1'], m
t = json.load(open('$TMP/clf/tokenizer_config.json'))
assert t['tokenizer_class'] == 'GPT2Tokenizer' and t['clean_up_tokenization_spaces'] is False, t
assert t['model_max_length'] == c['max_seq'] and t['mask_token'] == '[MASK]' and t['bos_token'] == '<|endoftext|>', t"

printf 'a gorgeous , witty , moving film .\na dull , lifeless and boring mess .\n' >"$TMP/two.txt"
"$SS" classify --model "$TMP/clf" "$TMP/two.txt" >"$TMP/c1" 2>&1
check "classify prints label, probability and every class's probability per line" \
  bash -c "[ \$(grep -cE '^[01]	0\.[0-9]{4}	0=0\.[0-9]{4} 1=0\.[0-9]{4}$' '$TMP/c1') -eq 2 ]"
"$SS" classify --model "$TMP/clf" --json <"$TMP/two.txt" >"$TMP/c2" 2>&1
check "classify --json reads stdin and writes one JSON object per line, probabilities summing to 1" /usr/bin/python3 -c "
import json; rows = [json.loads(l) for l in open('$TMP/c2')]
assert len(rows) == 2 and rows[0]['text'].startswith('a gorgeous')
assert all(abs(sum(r['probs'].values()) - 1) < 1e-4 and r['label'] in r['probs'] for r in rows)"
check "classify --json rounds probabilities to 4 significant digits" /usr/bin/python3 -c "
import re
for l in open('$TMP/c2'):
    nums = re.findall(r'[:,]([-+0-9.eE]+)', l[l.index('\"probs\"'):])
    assert len(nums) == 2, l
    for n in nums:
        digits = n.lower().split('e')[0].replace('-', '').replace('.', '').lstrip('0')
        assert 1 <= len(digits) <= 4 or float(n) == 0, n"
check "classify gives the same labels one text at a time as in a padded batch" bash -c \
  "'$SS' classify --model '$TMP/clf' --batch 1 '$TMP/two.txt' | cut -f1 | cmp -s - <(cut -f1 '$TMP/c1')"

"$SS" finetune --init none --tokenizer "$TMP/tok.json" --layers 2 --d-model 64 --heads 2 "${FT[@]}" \
  --train-size 1000 --epochs 1 --out "$TMP/scratch" >"$TMP/sc.log" 2>&1
check "finetune --init none trains the same architecture from scratch" \
  bash -c "[ $? -eq 0 ] && grep -q '\"init\":[[:space:]]*\"none\"' '$TMP/scratch/eval.json'"
"$SS" finetune --init none --tokenizer "$TMP/tok.json" --layers 2 --d-model 64 --heads 2 --no-bias "${FT[@]}" \
  --train-size 200 --epochs 1 --out "$TMP/scratch-nb" >"$TMP/scnb.log" 2>&1
rc=$?
"$SS" classify --model "$TMP/scratch-nb" "$TMP/two.txt" >"$TMP/scnb.cls" 2>&1
check "finetune --init none --no-bias: a body without biases (as pretrain --no-bias), the head's kept; classify reads it" \
  bash -c "[ $rc -eq 0 ] && [ \$(wc -l <'$TMP/scnb.cls') -eq 2 ] && /usr/bin/python3 -c \"
import json, struct
f = open('$TMP/scratch-nb/model.safetensors', 'rb'); h = json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))
b = sorted(k for k in h if k.endswith('.bias'))
assert b == ['cls_head.out.bias', 'cls_head.pooler.bias'], b
assert json.load(open('$TMP/scratch-nb/config.json'))['bias'] is False\""
"$SS" finetune --init "$TMP/mlm" --no-bias "${FT[@]}" --out "$TMP/scnb2" >"$TMP/scnb2.log" 2>&1
check "--no-bias with a pretrained --init is refused: the model brings its own" \
  bash -c "[ $? -ne 0 ] && grep -q -- '--no-bias and --tokenizer are for --init none' '$TMP/scnb2.log'"

# --attention bidirectional: a decoder classifier whose attention sees the whole text, saved in its
# config.json and applied by classify (the same dev accuracy as eval.json's; with the field removed,
# the causal model, other probabilities)
"$SS" finetune --init none --tokenizer "$TMP/tok.json" --kind decoder --layers 2 --d-model 64 --heads 2 "${FT[@]}" \
  --train-size 1000 --epochs 1 --attention bidirectional --out "$TMP/bidir" >"$TMP/bd.log" 2>&1
check "finetune --attention bidirectional trains a decoder classifier and records it in config.json" \
  bash -c "[ $? -eq 0 ] && grep -q '\"attention\":[[:space:]]*\"bidirectional\"' '$TMP/bidir/config.json'"
tail -n +2 "$SST/dev.tsv" | cut -f1 >"$TMP/dev.txt"
"$SS" classify --model "$TMP/bidir" --json "$TMP/dev.txt" >"$TMP/bd.cls" 2>/dev/null
check "classify reads the bidirectional decoder as it was trained: eval.json's dev accuracy" /usr/bin/python3 -c "
import json
gold = [l.rstrip('\n').split('\t')[1] for l in open('$SST/dev.tsv')][1:]
pred = [json.loads(l)['label'] for l in open('$TMP/bd.cls')]
acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
want = json.load(open('$TMP/bidir/eval.json'))['dev']['accuracy']
assert len(pred) == len(gold) and abs(acc - want) < 1e-9, (acc, want)"
mkdir -p "$TMP/causal" && cp "$TMP/bidir"/* "$TMP/causal"/ &&
  /usr/bin/python3 -c "
import json; p = '$TMP/causal/config.json'; c = json.load(open(p)); del c['attention']; json.dump(c, open(p, 'w'))"
"$SS" classify --model "$TMP/causal" --json "$TMP/dev.txt" >"$TMP/ca.cls" 2>/dev/null
check "the same weights read causally (config.json without 'attention') give other probabilities" \
  bash -c "[ -s '$TMP/ca.cls' ] && ! cmp -s '$TMP/bd.cls' '$TMP/ca.cls'"
"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --attention bidirectional --out "$TMP/b7" >"$TMP/b7.log" 2>&1
check "--attention on an encoder is an error saying it is for a decoder" \
  bash -c "[ $? -ne 0 ] && grep -q 'attention is for a decoder' '$TMP/b7.log'"

"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --epochs 1 --train-size 1000 --freeze-encoder --out "$TMP/frozen" >"$TMP/fr.log" 2>&1
check "--freeze-encoder leaves the pretrained body unchanged" /usr/bin/python3 -c "
import sys; sys.path.insert(0, 'tests'); import st_io, numpy as np
a = st_io.read('$TMP/mlm/model.safetensors')[0]; b = st_io.read('$TMP/frozen/model.safetensors')[0]
body = [k for k in b if not k.startswith('cls_head.')]
# the classifier keeps the first --max-seq rows of the position table
assert body and all(np.array_equal(a[k][:len(b[k])], b[k]) for k in body), 'body changed'
assert len(b['embeddings.position.weight']) == 64
assert any(k.startswith('cls_head.') for k in b)"

# 1000 rows, batch 32: 32 steps; every 5 steps one more layer group of the tiny mlm run joins
"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --epochs 1 --train-size 1000 --unfreeze-every 5 --out "$TMP/gradual" \
  >"$TMP/gu.log" 2>&1
check "--unfreeze-every: the run says when everything trains, eval.json records it" bash -c \
  "[ $? -eq 0 ] && grep -q 'gradual unfreezing: the head alone for 5 steps' '$TMP/gu.log' &&
   grep -q '\"unfreeze_every\":[[:space:]]*5' '$TMP/gradual/eval.json'"
"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --freeze-encoder --unfreeze-every 5 --out "$TMP/gu2" >"$TMP/gu2.log" 2>&1
check "--unfreeze-every with --freeze-encoder is refused, naming the flag" bash -c \
  "[ $? -ne 0 ] && grep -q -- '--unfreeze-every' '$TMP/gu2.log' && [ ! -e '$TMP/gu2' ]"

{ head -3 "$SST/train.tsv"; printf 'a row without a label\n'; sed -n 4,300p "$SST/train.tsv"; } >"$TMP/bad.tsv"
"$SS" finetune --init "$TMP/mlm" --train "$TMP/bad.tsv" --dev "$SST/dev.tsv" --epochs 1 --out "$TMP/b1" >"$TMP/b1.log" 2>&1
check "a malformed row stops the run naming file and line" bash -c "[ $? -ne 0 ] && grep -q 'bad.tsv:4' '$TMP/b1.log'"
"$SS" finetune --init "$TMP/mlm" --train "$TMP/bad.tsv" --dev "$SST/dev.tsv" --epochs 1 --skip-bad-rows \
  --out "$TMP/b2" >"$TMP/b2.log" 2>&1
check "--skip-bad-rows skips and counts it" \
  bash -c "[ $? -eq 0 ] && grep -q 'skipped 1 malformed row' '$TMP/b2.log' && grep -q '\"train_bad_rows\":[[:space:]]*1' '$TMP/b2/eval.json'"

printf 'sentence\tlabel\ngreat\tpos\nawful\tneg\n' >"$TMP/tr.tsv"
printf 'sentence\tlabel\nfine\tneutral\n' >"$TMP/dv.tsv"
"$SS" finetune --init "$TMP/mlm" --train "$TMP/tr.tsv" --dev "$TMP/dv.tsv" --out "$TMP/b3" >"$TMP/b3.log" 2>&1
check "a dev label unseen in training is an error naming it" bash -c "[ $? -ne 0 ] && grep -q \"dv.tsv:2.*neutral\" '$TMP/b3.log'"
"$SS" finetune --init none "${FT[@]}" --out "$TMP/b4" >"$TMP/b4.log" 2>&1
check "--init none without --tokenizer is a clear error" bash -c "[ $? -ne 0 ] && grep -q 'tokenizer' '$TMP/b4.log'"
"$SS" classify --model "$TMP/mlm" "$TMP/two.txt" >"$TMP/b5" 2>&1
check "classify on a pretrained (not fine-tuned) model says to fine-tune it" bash -c "[ $? -ne 0 ] && grep -q 'finetune' '$TMP/b5'"
"$SS" finetune --init "$TMP/nope" "${FT[@]}" --out "$TMP/b6" >"$TMP/b6.log" 2>&1
check "a missing --init run is an error naming it" bash -c "[ $? -ne 0 ] && grep -q 'nope' '$TMP/b6.log'"
printf 'text,label\n"a, quoted ""comma"" text",yes\nplain,no\n' >"$TMP/t.csv"
"$SS" finetune --init "$TMP/mlm" --train "$TMP/t.csv" --dev "$TMP/t.csv" --epochs 1 --out "$TMP/csv" \
  --text-column text >"$TMP/csv.log" 2>&1
check "CSV with quoting and string labels trains (labels saved by name)" \
  bash -c "[ $? -eq 0 ] && grep -q '\"no\"' '$TMP/csv/labels.json' && grep -q '\"yes\"' '$TMP/csv/labels.json'"

# --detokenize ptb: saved with the classifier, which then reads Treebank
# tokens and ordinary text alike (the same probabilities for both forms).
"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --epochs 1 --train-size 500 --detokenize ptb -o "$TMP/ptb" >"$TMP/ptb.log" 2>&1
check "finetune --detokenize ptb records it in config.json" \
  bash -c "[ $? -eq 0 ] && grep -q '\"text_normalization\":[[:space:]]*\"ptb\"' '$TMP/ptb/config.json'"
# one line per run: the same row of the same product, so equal texts give equal bits
echo "it does n't work , -lrb- sadly -rrb- ." >"$TMP/ptb1.txt"
echo "it doesn't work, (sadly)." >"$TMP/ptb2.txt"
for f in ptb1 ptb2; do
  "$SS" classify -m "$TMP/ptb" -t 1 --precision fp32 --json "$TMP/$f.txt" | sed 's/"text":"[^"]*",//' >"$TMP/$f.out" 2>&1
  "$SS" classify -m "$TMP/ptb" -t 1 --precision fp32 --json --detokenize none "$TMP/$f.txt" |
    sed 's/"text":"[^"]*",//' >"$TMP/$f-none.out" 2>&1
done
check "classify applies the saved normalization (both forms, one result; --detokenize none tells them apart)" \
  bash -c "grep -q probs '$TMP/ptb1.out' && cmp -s '$TMP/ptb1.out' '$TMP/ptb2.out' && ! cmp -s '$TMP/ptb1-none.out' '$TMP/ptb2-none.out'"

# No --text-column: a Hugging Face style file with a 'text' column (or key) is read.
printf '{"text":"a gorgeous film","label":1}\n{"label":0,"text":"a dull mess"}\n' >"$TMP/hf.jsonl"
"$SS" finetune --init "$TMP/mlm" --train "$TMP/hf.jsonl" --dev "$TMP/hf.jsonl" --epochs 1 -o "$TMP/hf" >"$TMP/hf.log" 2>&1
check "without --text-column the 'text' field (Hugging Face datasets) is the text" \
  bash -c "[ $? -eq 0 ] && grep -q '\"1\"' '$TMP/hf/labels.json' && grep -q 'train 2 rows' '$TMP/hf.log'"

# Ctrl-C: the best weights so far are evaluated and saved, exit status 130.
# The signal goes as soon as training starts (the 'data:' line): step lines
# are shown every few seconds, and with the faster GEMM path the whole run
# can end before the first one
"$SS" finetune --init "$TMP/mlm" "${FT[@]}" --train-size 3000 --epochs 5 -o "$TMP/int" >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
for _ in $(seq 600); do grep -qs '^data: train' "$TMP/int.out" "$TMP/int.err" && break; sleep 0.02; done
kill -INT $pid
wait $pid
rc=$?
check "Ctrl-C stops finetune with exit status 130 and a usable classifier in DIR" \
  bash -c "[ $rc -eq 130 ] && grep -q 'interrupted: the best weights so far are in' '$TMP/int.err' &&
           test -s '$TMP/int/eval.json' && '$SS' classify -m '$TMP/int' -t 1 '$TMP/two.txt' | [ \$(wc -l) -eq 2 ]"
check "finetune prints the thread setup to stderr, not stdout" \
  bash -c "grep -q '^threads: ' '$TMP/int.err' && ! grep -q '^threads' '$TMP/int.out'"
"$SS" finetune --resume -o "$TMP/int" --lr 1 -t 1 >"$TMP/int2" 2>&1
check "--resume with another --lr is an error naming it" bash -c "[ $? -ne 0 ] && grep -q -- '--lr 1 differs from the run' '$TMP/int2'"
"$SS" finetune --resume -o "$TMP/int" --d-model 999 -t 1 >"$TMP/int2b" 2>&1
check "--resume with a model option that differs from the checkpoint is an error naming it" \
  bash -c "[ $? -eq 2 ] && grep -q -- '--d-model 999 differs from the resumed run.s d_model' '$TMP/int2b'"
"$SS" finetune --resume -o "$TMP/int" --kind encoder -t 1 >"$TMP/int3" 2>&1
check "--resume after Ctrl-C (a model option that agrees given too) continues the run to its end and removes the checkpoint" \
  bash -c "[ $? -eq 0 ] && grep -qE '^resumed .* at step [1-9]' '$TMP/int3' && grep -qE '^best: epoch [1-5], step [0-9]+ of 470' '$TMP/int3' &&
           ! test -e '$TMP/int/checkpoint'"

# Progress and plot: step lines with the epoch and an ETA; metrics.jsonl
# holds the mean train loss of every 20 steps besides the evaluations;
# plot draws train loss and dev metrics (two panels) without a gnuplot warning.
check "finetune shows progress lines with step/total, epoch, loss and ETA" \
  grep -qE '^step [0-9]+/[0-9]+  epoch [12]  loss [0-9.]+  lr .*  ETA [0-9]+[smh]' "$TMP/ft.log"
check "metrics.jsonl has a train line every 20 steps and at the last (step, epoch, loss, lr)" \
  bash -c "grep -q '\"step\":20,\"epoch\":1,\"loss\":' '$TMP/clf/metrics.jsonl' &&
           [ \$(grep -c '\"lr\"' '$TMP/clf/metrics.jsonl') -eq \$(( \$(grep -c dev_accuracy '$TMP/clf/metrics.jsonl') * 217 / 20 + 1 )) ]"
"$SS" plot "$TMP/clf" >"$TMP/plot" 2>"$TMP/plot.err"
check "plot of a fine-tuning run: train loss and dev metrics, no gnuplot warning" \
  bash -c "[ $? -eq 0 ] && grep -q 'fine-tuning: .* 2 evaluations' '$TMP/plot' && head -c 8 '$TMP/clf/loss.png' | grep -q PNG &&
           ! test -s '$TMP/plot.err'"
