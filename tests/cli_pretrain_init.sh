#!/usr/bin/env bash
# `selfsup pretrain --init RUN` (continued pretraining) through the CLI,
# printing TAP: a run continued on new text starts from RUN's weights (its
# first evaluation, after one step at lr 1e-30, is RUN's loss on the new
# data as `selfsup eval` measures it), records RUN, its step and the sha256
# of its weights, and has a fresh step; a decoder continued as an encoder
# (objective mlm) keeps its body; the errors a user meets: another
# tokenizer, no such run, a model option that differs, another --init on
# --resume.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 13
tap_needs tinyshakespeare input.txt cli-pretrain-init

head -c 120000 "$MIRROR/tinyshakespeare/input.txt" >"$TMP/a.txt"
head -c 240000 "$MIRROR/tinyshakespeare/input.txt" | tail -c 120000 >"$TMP/b.txt"
{ "$SS" tokenizer train --vocab-size 400 --out "$TMP/tok.json" "$TMP/a.txt" &&
  "$SS" tokenizer train --vocab-size 400 --out "$TMP/tok2.json" "$TMP/b.txt" &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/sa" --doc-boundary blank "$TMP/a.txt" &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/sb" --doc-boundary blank "$TMP/b.txt" &&
  "$SS" data prepare --tokenizer "$TMP/tok2.json" --out "$TMP/sc" --doc-boundary blank "$TMP/b.txt"; } >/dev/null 2>&1 ||
  bail "could not make tokenizers and shards"
COMMON=(--seq 32 --batch 4 --eval-tokens 0 --threads 1)
"$SS" pretrain --objective clm --data "$TMP/sa" --out "$TMP/A" --layers 2 --d-model 32 --heads 2 --steps 20 \
  --eval-every 20 "${COMMON[@]}" >"$TMP/a.log" 2>&1 || bail "pretraining A failed: $(tail -3 "$TMP/a.log")"

# B: A continued on text B, one step at lr 1e-30 (the weights stay A's), evaluated after it;
# --layers 2 agrees with A's model, so it is accepted
"$SS" pretrain --objective clm --data "$TMP/sb" --out "$TMP/B" --init "$TMP/A" --layers 2 --steps 1 --lr 1e-30 \
  --warmup 0 --eval-every 1 "${COMMON[@]}" >"$TMP/b.log" 2>&1
check "pretrain --init exits 0 and says what it continues from" \
  bash -c "[ $? -eq 0 ] && grep -q 'continuing from $TMP/A (step 20, model.safetensors sha256 ' '$TMP/b.log'"
"$SS" eval --model "$TMP/A" --data "$TMP/sb" --seq 32 --batch 4 --threads 1 >"$TMP/eval" 2>/dev/null
want=$(sed -n 's/.*loss \([0-9.]*\) |.*/\1/p' "$TMP/eval")
got=$(/usr/bin/python3 -c "
import json
for l in open('$TMP/B/metrics.jsonl'):
    d = json.loads(l)
    if 'val_loss' in d: print('%.4f' % d['val_loss'])" 2>/dev/null)
echo "# A's loss on text B (selfsup eval): ${want:-none}; B's first evaluation: ${got:-none}"
check "the continued run's first evaluation is the init run's loss on the new text" \
  bash -c "[ -n '$want' ] && [ '$want' = '$got' ]"
sha=$(sha256sum "$TMP/A/model.safetensors" | cut -d' ' -f1)
check "trainer_state.json records the init run, its step and the sha256 of its weights; the step is B's own" \
  /usr/bin/python3 -c "
import json; s = json.load(open('$TMP/B/trainer_state.json'))
assert s['init'] == {'run': '$TMP/A', 'step': 20, 'model_sha256': '$sha'}, s['init']
assert s['options']['init'] == '$TMP/A' and s['step'] == 1, s"
check "the continued run has the init run's architecture" /usr/bin/python3 -c "
import json; a, b = (json.load(open('$TMP/' + r + '/config.json')) for r in 'AB')
assert all(a[k] == b[k] for k in ('kind', 'vocab_size', 'n_layer', 'd_model', 'n_head', 'd_ff', 'max_seq'))"

"$SS" pretrain --objective clm --data "$TMP/sc" --out "$TMP/e1" --init "$TMP/A" --steps 2 "${COMMON[@]}" >"$TMP/e1.log" 2>&1
check "data with another tokenizer is an error naming both tokenizer files" \
  bash -c "[ $? -ne 0 ] && grep -q 'the data.s tokenizer $TMP/sc/tokenizer.json differs from the --init run.s $TMP/A/tokenizer.json' '$TMP/e1.log'"
"$SS" pretrain --objective clm --data "$TMP/sb" --out "$TMP/e2" --init "$TMP/nope" --steps 2 "${COMMON[@]}" >"$TMP/e2.log" 2>&1
check "--init of a directory that does not exist is an error naming it" \
  bash -c "[ $? -ne 0 ] && grep -q -- '--init $TMP/nope: no such run directory' '$TMP/e2.log'"
"$SS" pretrain --objective clm --data "$TMP/sb" --out "$TMP/e3" --init "$TMP/A" --layers 3 --steps 2 "${COMMON[@]}" >"$TMP/e3.log" 2>&1
check "a model option that differs from the init run's is an error naming it" \
  bash -c "[ $? -eq 2 ] && grep -q -- \"--layers 3 differs from the --init run's n_layer 2\" '$TMP/e3.log'"
"$SS" pretrain --objective clm --data "$TMP/sb" --out "$TMP/e4" --init "$TMP/A" --preset small --steps 2 "${COMMON[@]}" >"$TMP/e4.log" 2>&1
check "--preset with another model than the init run's is an error naming it" \
  bash -c "[ $? -eq 2 ] && grep -q -- '--preset small .* differs from the --init run' '$TMP/e4.log'"
# an encoder objective on a decoder run: the decoder's body continues as an encoder (one step at lr 1e-30: the
# body's tensors stay A's exactly)
"$SS" pretrain --objective mlm --data "$TMP/sb" --out "$TMP/E" --init "$TMP/A" --steps 1 --lr 1e-30 --warmup 0 \
  "${COMMON[@]}" >"$TMP/e5.log" 2>&1
check "an encoder objective on a decoder run continues its body as an encoder, saying so" \
  bash -c "[ $? -eq 0 ] && grep -q \"the decoder's body as an encoder (attention over the whole text from now on), a fresh mlm head\" '$TMP/e5.log' &&
           grep -q '\"kind\":[[:space:]]*\"encoder\"' '$TMP/E/config.json'"
check "the encoder's body tensors are the decoder's" /usr/bin/python3 -c "
import sys; sys.path.insert(0, 'tests'); import st_io, numpy as np
a = st_io.read('$TMP/A/model.safetensors')[0]; e = st_io.read('$TMP/E/model.safetensors')[0]
assert len(a) > 5 and all(k in e and np.array_equal(a[k], e[k]) for k in a), sorted(set(a) - set(e))
assert len(e) > len(a)  # and an MLM head of its own"
"$SS" pretrain --resume --out "$TMP/B" --init "$TMP/sb" --threads 1 >"$TMP/e6.log" 2>&1
check "--resume with another --init is an error naming --init" \
  bash -c "[ $? -ne 0 ] && grep -q -- '--init $TMP/sb differs from the run' '$TMP/e6.log'"
"$SS" pretrain --resume --out "$TMP/B" --init "$TMP/A" --steps 3 --threads 1 >"$TMP/r.log" 2>&1
check "--resume with the same --init continues the run and keeps its record" \
  bash -c "[ $? -eq 0 ] && grep -q 'resumed .* at step 1' '$TMP/r.log' && grep -q '$sha' '$TMP/B/trainer_state.json' &&
           grep -qE '\"step\":[[:space:]]*3,' '$TMP/B/trainer_state.json'"
check "pretrain --help documents --init" bash -c "'$SS' pretrain --help | grep -q -- '--init RUN'"
