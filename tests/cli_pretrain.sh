#!/usr/bin/env bash
# `selfsup pretrain`, `eval` and `plot` end to end through the CLI, printing
# TAP: tokenizer -> shards -> a short run -> resume -> eval -> plot, plus the
# error paths a user meets (existing run, corrupt checkpoint, bad options).
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 14
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
check "metrics.jsonl has step, loss, lr, grad_norm, tokens_per_s, mfu and val_bpb" \
  bash -c "grep -q '\"mfu\"' '$TMP/run/metrics.jsonl' && grep -q '\"grad_norm\"' '$TMP/run/metrics.jsonl' && grep -q '\"val_bpb\"' '$TMP/run/metrics.jsonl'"

"$SS" pretrain "${ARGS[@]}" --out "$TMP/run" >"$TMP/log2" 2>&1
check "refuses to overwrite an existing run without --resume/--overwrite" \
  bash -c "[ $? -ne 0 ] && grep -q 'already holds a training run' '$TMP/log2'"

"$SS" pretrain --data "$TMP/shards" --out "$TMP/run" --resume --threads 2 >"$TMP/log3" 2>&1
check "--resume of a finished run exits 0 and says where it resumed" \
  bash -c "[ $? -eq 0 ] && grep -q 'resumed .* at step 20' '$TMP/log3'"

"$SS" eval --model "$TMP/run" --data "$TMP/shards" --seq 32 --threads 2 >"$TMP/eval" 2>&1
check "eval prints loss, perplexity and bits per byte" grep -qE 'loss [0-9.]+ \| perplexity [0-9.]+ \| bits per byte [0-9.]+' "$TMP/eval"

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
