#!/usr/bin/env bash
# `selfsup embed` through the CLI, printing TAP: one vector per input line
# (JSON lines, or a .npy file NumPy reads) from a clm decoder, an mlm
# encoder, an rtd run (its discriminator) and a fine-tuned classifier; the
# default poolings; --normalize; batching does not change the vectors;
# standard input; and the errors a user meets (invalid UTF-8, cls pooling on
# a decoder, no such model, a long line cut and said so).
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 17
tap_needs tinyshakespeare input.txt cli-embed
PY=/usr/bin/python3

head -c 100000 "$MIRROR/tinyshakespeare/input.txt" >"$TMP/text.txt"
# Checks compare vectors across runs to 1e-5, so every run names fp32: with
# --precision auto a CPU with fast native bf16 may compute in bf16 (and a
# loaded one decide otherwise in one of two runs), and in bf16 one row and
# many rows round differently (one-row kernels against oneDNN's), ~1e-3.
EMB=("$SS" embed --precision fp32)
{ "$SS" tokenizer train --vocab-size 400 --out "$TMP/tok.json" "$TMP/text.txt" &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary blank "$TMP/text.txt"; } \
  >/dev/null 2>&1 || bail "could not make tokenizer and shards"
P=(--data "$TMP/shards" --layers 2 --d-model 32 --heads 2 --seq 32 --batch 4 --steps 6 --eval-every 0 --threads 1)
for ob in clm mlm rtd; do
  "$SS" pretrain --objective $ob "${P[@]}" --out "$TMP/$ob" >"$TMP/$ob.log" 2>&1 || bail "pretraining $ob failed"
done
# a fine-tuned classifier: lines labelled by whether they hold a comma
grep -v '^$' "$TMP/text.txt" | head -200 | tr -d '\t' |
  awk 'BEGIN { print "text\tlabel" } { print $0 "\t" (index($0, ",") ? "comma" : "none") }' >"$TMP/rows.tsv"
"$SS" finetune --init "$TMP/mlm" --train "$TMP/rows.tsv" --dev "$TMP/rows.tsv" --epochs 1 --max-seq 32 --threads 1 \
  --out "$TMP/clf" >"$TMP/ft.log" 2>&1 || bail "fine-tuning failed: $(tail -3 "$TMP/ft.log")"

# 9 lines, one of them empty and one of them long
{ sed -n '1,4p' "$TMP/text.txt"; echo; sed -n '10,12p' "$TMP/text.txt"; tr '\n' ' ' <"$TMP/text.txt" | head -c 3000; echo; } >"$TMP/in.txt"
n=$(wc -l <"$TMP/in.txt")
# json_check FILE DIM: N lines, each a JSON array of DIM numbers
json_ok() { $PY -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == $n and all(len(r) == int(sys.argv[2]) and all(isinstance(x, float) for x in r) for r in rows), len(rows)" "$@"; }

# same_vecs A B: the same number of vectors, equal to 1e-5 (two processes may
# probe different f32 backends on a loaded machine: equal math, other bits).
same_vecs() { $PY -c "
import json, sys
a, b = ([json.loads(l) for l in open(f)] for f in sys.argv[1:3])
assert len(a) == len(b) > 0 and all(len(r) == len(s) for r, s in zip(a, b))
assert max(abs(x - y) for r, s in zip(a, b) for x, y in zip(r, s)) <= 1e-5" "$@" 2>/dev/null; }

"${EMB[@]}" --model "$TMP/clm" "$TMP/in.txt" >"$TMP/clm.json" 2>"$TMP/clm.err"
check "embed of a clm run: one JSON array of d_model numbers per input line (the empty one included)" \
  bash -c "[ $? -eq 0 ] && $(declare -f json_ok); PY=$PY n=$n; json_ok '$TMP/clm.json' 32"
check "a line longer than the model's max_seq is cut to its start, and standard error says so" \
  grep -qE '1 of 9 lines were longer than 512 tokens .*cut to their start' "$TMP/clm.err"
"${EMB[@]}" --model "$TMP/clm" --pooling last "$TMP/in.txt" >"$TMP/clm-last.json" 2>/dev/null
check "a decoder's default pooling is last" same_vecs "$TMP/clm.json" "$TMP/clm-last.json"
"${EMB[@]}" -m "$TMP/mlm" <"$TMP/in.txt" >"$TMP/mlm.json" 2>/dev/null
"${EMB[@]}" -m "$TMP/mlm" --pooling mean "$TMP/in.txt" >"$TMP/mlm-mean.json" 2>/dev/null
check "an encoder's default pooling is mean; standard input when no FILE is given" \
  bash -c "$(declare -f same_vecs json_ok); PY=$PY n=$n; same_vecs '$TMP/mlm.json' '$TMP/mlm-mean.json' && json_ok '$TMP/mlm.json' 32"
"${EMB[@]}" -m "$TMP/mlm" --pooling cls "$TMP/in.txt" >"$TMP/mlm-cls.json" 2>/dev/null
check "poolings give different vectors" bash -c "[ -s '$TMP/mlm-cls.json' ] && ! cmp -s '$TMP/mlm.json' '$TMP/mlm-cls.json'"
"${EMB[@]}" -m "$TMP/mlm" --batch 1 "$TMP/in.txt" >"$TMP/b1.json" 2>/dev/null
"${EMB[@]}" -m "$TMP/mlm" --batch 7 "$TMP/in.txt" >"$TMP/b7.json" 2>/dev/null
check "batch 1 and batch 7 give the same vectors (to 1e-5)" $PY -c "
import json
a, b = ([json.loads(l) for l in open('$TMP/' + f)] for f in ('b1.json', 'b7.json'))
assert len(a) == len(b) == $n and max(abs(x - y) for r, s in zip(a, b) for x, y in zip(r, s)) <= 1e-5"
"${EMB[@]}" -m "$TMP/mlm" --normalize "$TMP/in.txt" >"$TMP/norm.json" 2>/dev/null
check "--normalize gives unit vectors in the directions of the raw ones" $PY -c "
import json, math
a, b = ([json.loads(l) for l in open('$TMP/' + f)] for f in ('mlm.json', 'norm.json'))
for r, s in zip(a, b):
    n = math.sqrt(sum(x * x for x in r))
    assert abs(math.sqrt(sum(x * x for x in s)) - 1) < 1e-5 and max(abs(x / n - y) for x, y in zip(r, s)) < 1e-5"
"${EMB[@]}" -m "$TMP/mlm" --npy "$TMP/mlm.npy" "$TMP/in.txt" >"$TMP/npy.out" 2>"$TMP/npy.err"
check "--npy writes a float32 [lines, d_model] file NumPy reads, equal to the JSON lines, and nothing on stdout" \
  bash -c "[ $? -eq 0 ] && ! test -s '$TMP/npy.out' && grep -q 'wrote 9 vectors of 32 float32' '$TMP/npy.err' && $PY -c \"
import json, numpy as np
a = np.load('$TMP/mlm.npy'); j = np.array([json.loads(l) for l in open('$TMP/mlm.json')], dtype=np.float32)
assert a.dtype == np.float32 and a.shape == ($n, 32) and np.array_equal(a, j), (a.dtype, a.shape)
assert open('$TMP/mlm.npy', 'rb').read(10) == b'\\\\x93NUMPY\\\\x01\\\\x00v\\\\x00'\""
"${EMB[@]}" -m "$TMP/rtd" "$TMP/in.txt" >"$TMP/rtd.json" 2>/dev/null
"${EMB[@]}" -m "$TMP/rtd/discriminator" "$TMP/in.txt" >"$TMP/disc.json" 2>/dev/null
check "an rtd run embeds with its discriminator (the same vectors as RUN/discriminator/)" \
  same_vecs "$TMP/rtd.json" "$TMP/disc.json"
"${EMB[@]}" -m "$TMP/clf" "$TMP/in.txt" >"$TMP/clf.json" 2>/dev/null
"${EMB[@]}" -m "$TMP/clf" --pooling cls "$TMP/in.txt" >"$TMP/clf-cls.json" 2>/dev/null
check "a fine-tuned classifier embeds with its body, by default with its head's pooling (cls)" \
  bash -c "$(declare -f same_vecs json_ok); PY=$PY n=$n; same_vecs '$TMP/clf.json' '$TMP/clf-cls.json' &&
           ! same_vecs '$TMP/clf.json' '$TMP/mlm-cls.json' && json_ok '$TMP/clf.json' 32"
"${EMB[@]}" -m "$TMP/mlm" --max-seq 8 "$TMP/in.txt" >"$TMP/short.json" 2>"$TMP/short.err"
check "--max-seq cuts lines shorter and says how many" \
  bash -c "[ $? -eq 0 ] && grep -qE '[2-9] of 9 lines were longer than 8 tokens' '$TMP/short.err' && ! cmp -s '$TMP/short.json' '$TMP/mlm.json'"

printf 'fine\nnot \xff\xfe fine\n' >"$TMP/bad.txt"
"${EMB[@]}" -m "$TMP/mlm" --npy "$TMP/bad.npy" "$TMP/bad.txt" >"$TMP/bad.out" 2>&1
check "invalid UTF-8 is an error naming FILE:LINE, and no .npy file is left" \
  bash -c "[ $? -ne 0 ] && grep -q '$TMP/bad.txt:2: the line is not valid UTF-8' '$TMP/bad.out' && ! test -e '$TMP/bad.npy'"
"${EMB[@]}" -m "$TMP/clm" --pooling cls "$TMP/in.txt" >"$TMP/e1" 2>&1
check "--pooling cls on a decoder is an error saying why" bash -c "[ $? -ne 0 ] && grep -q 'pooling cls reads position 0' '$TMP/e1'"
"${EMB[@]}" -m "$TMP/nope" "$TMP/in.txt" >"$TMP/e2" 2>&1
check "a model directory that does not exist is an error naming it" bash -c "[ $? -ne 0 ] && grep -q '$TMP/nope' '$TMP/e2'"
# one line per file: the same row of the same product, so equal texts give equal bits
echo "it does n't work , -lrb- sadly -rrb- ." >"$TMP/ptb1.txt"
echo "it doesn't work, (sadly)." >"$TMP/ptb2.txt"
for f in ptb1 ptb2; do
  "${EMB[@]}" -m "$TMP/mlm" --detokenize ptb "$TMP/$f.txt" >"$TMP/$f.json" 2>/dev/null
  "${EMB[@]}" -m "$TMP/mlm" "$TMP/$f.txt" >"$TMP/$f-none.json" 2>/dev/null
done
check "--detokenize ptb embeds Treebank tokens as the ordinary text (one vector for both forms; without, two)" \
  bash -c "$(declare -f same_vecs); PY=$PY; same_vecs '$TMP/ptb1.json' '$TMP/ptb2.json' &&
           ! same_vecs '$TMP/ptb1-none.json' '$TMP/ptb2-none.json'"
"${EMB[@]}" -m "$TMP/mlm" --pooling max "$TMP/in.txt" >"$TMP/e3" 2>&1
check "an unknown pooling is an error listing the choices" bash -c "[ $? -eq 2 ] && grep -q 'cls, last, mean' '$TMP/e3'"
check "selfsup lists embed; embed --help documents its options" \
  bash -c "'$SS' --help | grep -q '^  embed ' && '$SS' embed --help | grep -q -- '--npy FILE'"
