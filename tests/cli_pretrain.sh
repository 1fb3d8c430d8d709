#!/usr/bin/env bash
# `selfsup pretrain`, `eval` and `plot` end to end through the CLI, printing
# TAP: tokenizer -> shards -> a short run -> resume -> eval -> plot, Ctrl-C
# (save, exit 130, resume), the resume rules (an option that defines the run
# cannot change; a longer run extends it), plus the error paths a user meets
# (existing run, corrupt checkpoint, bad options).
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 36
tap_needs tinyshakespeare input.txt cli-pretrain

head -c 200000 "$MIRROR/tinyshakespeare/input.txt" >"$TMP/text.txt"
"$SS" tokenizer train --vocab-size 400 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary blank "$TMP/text.txt" >/dev/null 2>&1 ||
  bail "could not make tokenizer and shards"

ARGS=(--objective clm --data "$TMP/shards" --layers 2 --d-model 32 --heads 2 --seq 32 --batch 4 --steps 20
      --eval-every 10 --save-every 10 --log-every 5 --eval-tokens 2048 --threads 2 --seed 5)
"$SS" pretrain "${ARGS[@]}" --out "$TMP/run" >"$TMP/log" 2>&1
check "pretrain exits 0" [ $? -eq 0 ]
check "plain log lines when not a terminal (step/total, loss, tok/s, ETA)" \
  grep -qE '^step 20/20 \| loss [0-9.]+ \| .* tok/s \| .*ETA' "$TMP/log"
check "prints the thread setup (one OpenMP pool shared with OpenBLAS)" grep -q 'OpenMP build: one shared thread pool' "$TMP/log"
check "run directory has the Hugging Face layout" test -s "$TMP/run/config.json" -a -s "$TMP/run/model.safetensors" \
  -a -s "$TMP/run/tokenizer.json" -a -s "$TMP/run/optimizer.safetensors" -a -s "$TMP/run/trainer_state.json"
check "tokenizer_config.json beside every tokenizer.json (shards; run: with the model's max_seq)" /usr/bin/python3 -c "
import json
s, r = (json.load(open(d + '/tokenizer_config.json')) for d in ('$TMP/shards', '$TMP/run'))
assert s['tokenizer_class'] == 'GPT2Tokenizer' and s['clean_up_tokenization_spaces'] is False and 'model_max_length' not in s
assert r['model_max_length'] == json.load(open('$TMP/run/config.json'))['max_seq'] and r['eos_token'] == '<|endoftext|>'"
check "metrics.jsonl has step, loss, lr, grad_norm, tokens_per_s, mfu and val_bpb" \
  bash -c "grep -q '\"mfu\"' '$TMP/run/metrics.jsonl' && grep -q '\"grad_norm\"' '$TMP/run/metrics.jsonl' && grep -q '\"val_bpb\"' '$TMP/run/metrics.jsonl'"

"$SS" pretrain "${ARGS[@]}" --out "$TMP/run" >"$TMP/log2" 2>&1
check "refuses to overwrite an existing run without --resume/--overwrite" \
  bash -c "[ $? -ne 0 ] && grep -q 'already holds a training run' '$TMP/log2'"

"$SS" pretrain --data "$TMP/shards" --out "$TMP/run" --resume --threads 2 >"$TMP/log3" 2>&1
check "--resume of a finished run exits 0 and says where it resumed" \
  bash -c "[ $? -eq 0 ] && grep -q 'resumed .* at step 20' '$TMP/log3'"
# The command that made a run, with --resume added, continues it: model
# options that agree with the checkpoint are accepted, one that differs is
# an error naming it (as a training option that differs is).
"$SS" pretrain "${ARGS[@]}" --out "$TMP/run" --resume >"$TMP/log3b" 2>&1
check "--resume with the run's own command (model options that agree) exits 0" \
  bash -c "[ $? -eq 0 ] && grep -q 'resumed .* at step 20' '$TMP/log3b'"
"$SS" pretrain --resume --out "$TMP/run" --preset small --threads 2 >"$TMP/log3c" 2>&1; r1=$?
"$SS" pretrain --resume --out "$TMP/run" --d-model 64 --threads 2 >"$TMP/log3d" 2>&1; r2=$?
"$SS" pretrain --resume --out "$TMP/run" --dropout 0.1 --threads 2 >"$TMP/log3e" 2>&1; r3=$?
check "--resume with a model option that differs from the checkpoint (--preset, --d-model, --dropout) names it" \
  bash -c "[ $r1 -eq 2 ] && grep -q -- '--preset small (4 layers.*differs from the resumed run.s model' '$TMP/log3c' &&
           [ $r2 -eq 2 ] && grep -q -- '--d-model 64 differs from the resumed run.s d_model 32' '$TMP/log3d' &&
           [ $r3 -eq 2 ] && grep -q -- '--dropout 0.1 differs from the resumed run.s dropout 0' '$TMP/log3e'"
check "a clm run resumes without a warning (no spurious 'holds no ELECTRA generator') and keeps its GEMM backend" \
  bash -c "! grep -q 'warning' '$TMP/log3' && grep -q 'as the run computed them before' '$TMP/log3'"

"$SS" eval --model "$TMP/run" --data "$TMP/shards" --seq 32 --threads 2 >"$TMP/eval" 2>&1
check "eval prints loss, perplexity and bits per byte" grep -qE 'loss [0-9.]+ \| perplexity [0-9.]+ \| bits per byte [0-9.]+' "$TMP/eval"

# Ctrl-C: the run saves a checkpoint and exits with 130; --resume finishes it.
# (-o is --out.) The signal is sent once the first log line is out.
"$SS" pretrain "${ARGS[@]}" --steps 200 --eval-every 0 --save-every 0 -o "$TMP/int" >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
for _ in $(seq 400); do grep -qs '^step ' "$TMP/int.out" "$TMP/int.err" && break; sleep 0.05; done
kill -INT $pid
wait $pid
rc=$?
check "Ctrl-C saves a checkpoint and exits with status 130" \
  bash -c "[ $rc -eq 130 ] && grep -q 'interrupted: checkpoint saved' '$TMP/int.err' && test -s '$TMP/int/model.safetensors' &&
           ! grep -qE '\"step\":[[:space:]]*200,' '$TMP/int/trainer_state.json'"
check "the thread setup line goes to stderr (stdout holds results only)" \
  bash -c "grep -q '^threads: ' '$TMP/int.err' && ! grep -q '^threads' '$TMP/int.out'"
"$SS" pretrain --data "$TMP/shards" --out "$TMP/int" --resume --threads 2 >"$TMP/int2" 2>&1
check "--resume after Ctrl-C continues from the saved step to the end" \
  bash -c "[ $? -eq 0 ] && grep -qE 'resumed .* at step [1-9][0-9]*' '$TMP/int2' &&
           grep -qE '\"step\":[[:space:]]*200,' '$TMP/int/trainer_state.json'"

# One writer per run directory: a second process given a run that another is
# writing (even with --overwrite, or a fine-tune into it) is refused at once,
# naming the directory and the writer's pid; the lock goes with the process.
printf 'text\tlabel\na good film\t1\na bad film\t0\n' >"$TMP/ft.tsv"
"$SS" pretrain "${ARGS[@]}" --steps 100000 --eval-every 0 --save-every 0 -o "$TMP/busy" >"$TMP/busy.out" 2>&1 &
pid=$!
for _ in $(seq 400); do grep -qs '^step ' "$TMP/busy.out" && break; sleep 0.05; done
"$SS" pretrain "${ARGS[@]}" --steps 10 -o "$TMP/busy" --overwrite >"$TMP/busy2" 2>&1; r1=$?
"$SS" finetune --init "$TMP/run" --train "$TMP/ft.tsv" --dev "$TMP/ft.tsv" --epochs 1 -t 1 -o "$TMP/busy" >"$TMP/busy3" 2>&1
r2=$?
kill -INT $pid
wait $pid
rc=$?
"$SS" pretrain "${ARGS[@]}" --steps 10 -o "$TMP/busy" --overwrite >"$TMP/busy4" 2>&1; r3=$?
check "a run directory another process writes is refused (pretrain, finetune), naming it and the pid; free once it ends" \
  bash -c "[ $r1 -ne 0 ] && grep -q 'busy is in use by another training process (pid $pid)' '$TMP/busy2' &&
           [ $r2 -ne 0 ] && grep -q 'busy is in use by another training process (pid $pid)' '$TMP/busy3' &&
           [ $rc -eq 130 ] && [ $r3 -eq 0 ]"

# A second Ctrl-C quits at once, without saving: it is sent as soon as the
# first one's message is out, in the middle of a step of a bigger model.
"$SS" pretrain "${ARGS[@]}" --layers 4 --d-model 256 --heads 4 --seq 64 --batch 16 --steps 50 --eval-every 0 \
  --log-every 1 --out "$TMP/int3" >"$TMP/int3.out" 2>"$TMP/int3.err" &
pid=$!
for _ in $(seq 600); do grep -qs '^step ' "$TMP/int3.out" "$TMP/int3.err" && break; sleep 0.05; done
kill -INT $pid
for _ in $(seq 500); do grep -qs 'Ctrl-C again' "$TMP/int3.err" && break; sleep 0.01; done
kill -INT $pid
wait $pid
rc=$?
check "a second Ctrl-C quits at once without saving" \
  bash -c "[ $rc -eq 130 ] && grep -q 'Ctrl-C again' '$TMP/int3.err' && ! grep -q 'checkpoint saved' '$TMP/int3.err' &&
           ! test -e '$TMP/int3/trainer_state.json'"

"$SS" plot "$TMP/run" >/dev/null 2>&1
check "plot writes a PNG" bash -c "head -c 8 '$TMP/run/loss.png' | grep -q PNG"

cp -r "$TMP/run" "$TMP/bad"
truncate -s 100 "$TMP/bad/model.safetensors"
"$SS" eval --model "$TMP/bad" --data "$TMP/shards" --seq 32 >"$TMP/e2" 2>&1
check "a truncated model.safetensors is a clear error naming the file" \
  bash -c "[ $? -ne 0 ] && grep -q 'model.safetensors' '$TMP/e2' && ! grep -qi 'segmentation' '$TMP/e2'"

"$SS" pretrain --data "$TMP/shards" --out "$TMP/bad" --resume --threads 2 >"$TMP/e3" 2>&1
check "resume from a corrupt latest checkpoint falls back to .previous" \
  bash -c "[ $? -eq 0 ] && grep -q 'previous' '$TMP/e3'"

"$SS" pretrain "${ARGS[@]}" --out "$TMP/x" --seq 1000000 >"$TMP/e4" 2>&1
check "a window longer than the data is a clear error" bash -c "[ $? -ne 0 ] && grep -q 'fewer than one window' '$TMP/e4'"

"$SS" pretrain --data "$TMP/nope" --out "$TMP/y" --steps 3 >"$TMP/e5" 2>&1
check "missing shards directory names it" bash -c "[ $? -ne 0 ] && grep -q '$TMP/nope' '$TMP/e5'"

"$SS" pretrain "${ARGS[@]}" --out "$TMP/z" --steps 3 --tokens 100 >"$TMP/e6" 2>&1
check "two run lengths at once is an error" bash -c "[ $? -eq 2 ] && grep -q 'exactly one of' '$TMP/e6'"

# plot: a clm run's loss and bits-per-byte panels; a run without evaluations
# gets the train-loss panel alone (no empty series), and gnuplot never warns
png_height() { /usr/bin/python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(struct.unpack('>I', d[20:24])[0] if d[:4]==b'\x89PNG' else 0)" "$1"; }
"$SS" plot "$TMP/run" --out "$TMP/clm.png" >"$TMP/p1" 2>"$TMP/p1.err"
check "plot of a clm run: train/val loss and val bits per byte, no gnuplot warning" \
  bash -c "[ $? -eq 0 ] && grep -q 'clm pretraining' '$TMP/p1' && [ $(png_height "$TMP/clm.png") -eq 900 ] && ! test -s '$TMP/p1.err'"
"$SS" pretrain "${ARGS[@]}" --steps 10 --eval-every 0 --out "$TMP/noeval" >/dev/null 2>&1
"$SS" plot "$TMP/noeval" >"$TMP/p2" 2>"$TMP/p2.err"
check "plot of a run without evaluations: the train-loss panel alone, no gnuplot warning" \
  bash -c "[ $? -eq 0 ] && grep -q '0 evaluations' '$TMP/p2' && [ $(png_height "$TMP/noeval/loss.png") -eq 520 ] &&
           ! test -s '$TMP/p2.err'"

# a run directory and an --out holding a quote (gnuplot's strings get it doubled)
cp -r "$TMP/noeval" "$TMP/it's run"
"$SS" plot "$TMP/it's run" --out "$TMP/it's.png" >"$TMP/p3" 2>"$TMP/p3.err"
rc=$? h=$(png_height "$TMP/it's.png")
check "plot of a run whose path holds a quote, to a PNG whose path holds one" \
  bash -c "[ $rc -eq 0 ] && [ $h -eq 520 ] && ! test -s \"\$1\"" _ "$TMP/p3.err"

# --resume of a finished run: other data, another lr or a shorter length are
# errors naming the option; a longer --steps extends it (the added steps at lr-min)
cp -r "$TMP/run" "$TMP/ext"
"$SS" pretrain --resume --out "$TMP/ext" --data "$TMP" --time 30 --threads 2 >"$TMP/r1" 2>&1
check "--resume with other --data is an error naming --data" \
  bash -c "[ $? -ne 0 ] && grep -q -- '--data .* differs from the run' '$TMP/r1' && ! grep -q '^done' '$TMP/r1'"
"$SS" pretrain --resume --out "$TMP/ext" --data "$TMP/shards" --lr 2e-3 --threads 2 >"$TMP/r2" 2>&1
check "--resume with another --lr is an error naming --lr" \
  bash -c "[ $? -ne 0 ] && grep -q -- \"--lr 0.002 differs from the run's 0.0005\" '$TMP/r2'"
"$SS" pretrain --resume --out "$TMP/ext" --steps 10 --threads 2 >"$TMP/r3" 2>&1
check "--resume with a shorter --steps is an error" bash -c "[ $? -ne 0 ] && grep -q -- '--steps: shorter' '$TMP/r3'"
"$SS" pretrain --resume --out "$TMP/ext" --steps 24 --threads 2 >"$TMP/r4" 2>&1
check "--resume with a longer --steps (no --data: the saved one) extends the run to it" \
  bash -c "[ $? -eq 0 ] && grep -q 'extending the run' '$TMP/r4' && grep -qE '^step 24/24 ' '$TMP/r4' &&
           grep -qE '\"step\":[[:space:]]*24,' '$TMP/ext/trainer_state.json'"

# --no-bias (Cramming's lever): the body's linear layers and LayerNorms
# without biases; the checkpoint has none of them and says so in config.json,
# eval and --init read it, --resume takes the flag only on such a run, --init keeps the
# model's (and refuses --no-bias for a model that has biases)
"$SS" pretrain "${ARGS[@]}" --steps 10 --no-bias --out "$TMP/nb" >"$TMP/nb1" 2>&1
check "--no-bias: a run whose config.json says \"bias\": false, whose checkpoint has no body bias, its log saying so" \
  /usr/bin/python3 -c "
import json, struct, sys
assert json.load(open('$TMP/nb/config.json'))['bias'] is False
f = open('$TMP/nb/model.safetensors', 'rb'); n = struct.unpack('<Q', f.read(8))[0]
names = [k for k in json.loads(f.read(n)) if k != '__metadata__']
assert not [k for k in names if k.endswith('.bias')], names
assert 'blocks.1.ln2.weight' in names and 'ln_f.weight' in names, names
assert 'no biases in the body' in open('$TMP/nb1').read()"
"$SS" eval --model "$TMP/nb" --data "$TMP/shards" --threads 2 >"$TMP/nb2" 2>&1
check "eval reads a model without biases" bash -c "[ $? -eq 0 ] && grep -q 'bits per byte' '$TMP/nb2'"
"$SS" pretrain --resume --out "$TMP/nb" --no-bias --threads 2 >"$TMP/nb3" 2>&1; r3=$?
"$SS" pretrain --resume --out "$TMP/run" --no-bias --threads 2 >"$TMP/nb3b" 2>&1
check "--resume takes --no-bias on a run without biases, names it on a run with them" \
  bash -c "[ $r3 -eq 0 ] && [ $? -eq 2 ] && grep -q -- '--no-bias differs from the resumed run.s model' '$TMP/nb3b'"
"$SS" pretrain --objective clm --data "$TMP/shards" --init "$TMP/nb" --out "$TMP/nb_init" --seq 32 --batch 4 --steps 4 \
  --eval-every 0 --threads 2 >"$TMP/nb4" 2>&1
"$SS" pretrain --objective clm --data "$TMP/shards" --init "$TMP/run" --out "$TMP/nb_init2" --seq 32 --batch 4 \
  --steps 4 --eval-every 0 --threads 2 --no-bias >"$TMP/nb5" 2>&1
r5=$?
check "--init keeps a model without biases; --no-bias on a model with biases is an error naming it" \
  bash -c "grep -q '\"bias\":[[:space:]]*false' '$TMP/nb_init/config.json' && [ $r5 -ne 0 ] &&
           grep -q -- '--no-bias differs from the --init run' '$TMP/nb5'"

# --batch-ramp (Cramming's batch-size ramp): an rtd run of 10 steps with
# --grad-accum 2 ramped over its first half trains 1 micro-batch (4 x 32
# tokens, fewer the padding of packed documents) a step for 5 steps, then 2
# (metrics.jsonl's cumulative "tokens": the non-pad input tokens);
# its log says so; without --grad-accum 2 or more it is an error naming both
"$SS" pretrain --objective rtd --data "$TMP/shards" --layers 2 --d-model 32 --heads 2 --seq 32 --batch 4 \
  --grad-accum 2 --batch-ramp 0.5 --steps 10 --disc-start-share 0 --log-every 1 --eval-every 0 --threads 2 \
  --out "$TMP/ramp" >"$TMP/ramp1" 2>&1
check "--batch-ramp: 1 micro-batch a step over the first half of an rtd run, then --grad-accum's 2; the log says so" \
  /usr/bin/python3 -c "
import json
rows = [json.loads(l) for l in open('$TMP/ramp/metrics.jsonl') if '\"loss\"' in l]
tok = [r['tokens'] for r in rows]
assert [r['step'] for r in rows] == list(range(1, 11)), rows
d = [b - a for a, b in zip([0] + tok, tok)]
assert all(96 < x <= 128 for x in d[:5]) and all(192 < x <= 256 for x in d[5:]), d
assert all(0 <= r['disc_precision'] <= 1 and 0 <= r['disc_recall'] <= 1 for r in rows), rows
assert 'batch ramp: 1 micro-batch' in open('$TMP/ramp1').read()"
"$SS" pretrain "${ARGS[@]}" --batch-ramp 0.5 --out "$TMP/ramp_bad" >"$TMP/ramp2" 2>&1
check "--batch-ramp without --grad-accum 2 or more is an error naming both" \
  bash -c "[ $? -eq 2 ] && grep -q -- '--batch-ramp 0.5: .*--grad-accum 2 or more' '$TMP/ramp2'"
