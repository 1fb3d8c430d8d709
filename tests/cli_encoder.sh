#!/usr/bin/env bash
# Encoder pretraining through the CLI, printing TAP: mlm and rtd runs,
# eval of both, fill-mask, the standalone discriminator, and the errors a
# user meets (tokenizer without [MASK], fill-mask on a decoder, bad options,
# --disc-init generator with a narrower generator).
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 22
tap_needs tinyshakespeare input.txt cli-encoder

head -c 120000 "$MIRROR/tinyshakespeare/input.txt" >"$TMP/text.txt"
"$SS" tokenizer train --vocab-size 400 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary blank "$TMP/text.txt" >/dev/null 2>&1 ||
  bail "could not make tokenizer and shards"
ARGS=(--data "$TMP/shards" --layers 2 --d-model 32 --heads 2 --seq 32 --batch 4 --steps 12 --eval-every 12
      --log-every 4 --threads 2 --eval-tokens 4096)

"$SS" pretrain --objective mlm "${ARGS[@]}" --out "$TMP/mlm" >"$TMP/mlm.log" 2>&1
check "mlm pretraining exits 0 and logs masked accuracy" bash -c "[ $? -eq 0 ] && grep -qE '^step 12/12 \| loss [0-9.]+ \| acc [0-9.]+' '$TMP/mlm.log'"
check "mlm run is an encoder with an mlm head" grep -qE '"head":[[:space:]]*"mlm"' "$TMP/mlm/config.json"

"$SS" pretrain --objective rtd "${ARGS[@]}" --out "$TMP/rtd" --whole-word >"$TMP/rtd.log" 2>&1
check "rtd pretraining exits 0 and logs generator and discriminator metrics" \
  bash -c "[ $? -eq 0 ] && grep -qE 'gen [0-9.]+ acc [0-9.]+ \| disc [0-9.]+ acc [0-9.]+ P [0-9.]+ R [0-9.]+' '$TMP/rtd.log'"
check "rtd saves the discriminator alone" test -s "$TMP/rtd/discriminator/model.safetensors" -a -s "$TMP/rtd/discriminator/tokenizer.json"
check "an mlm run has no biases in its body by default (config.json \"bias\": false), an rtd run keeps them" \
  bash -c "grep -qE '\"bias\":[[:space:]]*false' '$TMP/mlm/config.json' && grep -q 'no biases in the body' '$TMP/mlm.log' &&
           ! grep -q '\"bias\"' '$TMP/rtd/config.json'"
"$SS" pretrain --objective mlm "${ARGS[@]}" --steps 2 --bias --out "$TMP/mlm-bias" >"$TMP/mlmb.log" 2>&1
rc=$?
"$SS" pretrain --objective mlm "${ARGS[@]}" --steps 2 --bias --no-bias --out "$TMP/mlm-bb" >"$TMP/mlmbb.log" 2>&1
rc2=$?
"$SS" pretrain --objective mlm --init "$TMP/mlm" "${ARGS[@]}" --steps 2 --bias --out "$TMP/mlm-ib" >"$TMP/mlmib.log" 2>&1
rc3=$?
check "--bias keeps an mlm run's biases; --bias with --no-bias, and --bias on an --init run without them, are errors" \
  bash -c "[ $rc -eq 0 ] && ! grep -q '\"bias\"' '$TMP/mlm-bias/config.json' && [ $rc2 -ne 0 ] &&
           grep -q -- '--bias and --no-bias exclude each other' '$TMP/mlmbb.log' && [ $rc3 -ne 0 ] &&
           grep -q -- '--bias differs from the --init run' '$TMP/mlmib.log'"

# --precision fixed: auto probes the GEMM backends, and on a loaded machine two runs can pick different ones
"$SS" eval --model "$TMP/mlm" --data "$TMP/shards" --precision fp32 >"$TMP/e1" 2>"$TMP/e1.err"
check "eval of an mlm run prints MLM loss and masked accuracy" grep -qE 'MLM loss [0-9.]+ \| perplexity [0-9.]+ \| masked accuracy [0-9.]+' "$TMP/e1"
check "an mlm run without --mask-prob trains and evaluates at mlm's default rate, 40%" \
  grep -qF "masking (the run's): 40% of the tokens chosen; of them 80% [MASK]" "$TMP/e1"
"$SS" eval --model "$TMP/mlm" --data "$TMP/shards" --precision fp32 >"$TMP/e1b" 2>"$TMP/e1b.err"
check "encoder eval is reproducible (fixed masking seed; results on stdout, the measured GEMM peaks on stderr vary)" cmp -s "$TMP/e1" "$TMP/e1b"
"$SS" eval --model "$TMP/rtd" --data "$TMP/shards" >"$TMP/e2" 2>&1
check "eval of an rtd run prints the discriminator's accuracy, its base rate and AUC" grep -qE 'discriminator: loss [0-9.]+ \| accuracy [0-9.]+ \(base rate, share not replaced: [0-9.]+\) \| AUC [0-9.]+' "$TMP/e2"
# the batches of the run's own evaluation (--seq 32 --batch 4 --eval-tokens 4096): with the run's masking
# (--whole-word here) eval gives the val loss the run logged; with the default masking it did not
"$SS" eval --model "$TMP/rtd" --data "$TMP/shards" --seq 32 --batch 4 --max-tokens 4096 >"$TMP/e2b" 2>&1
check "eval of an encoder uses the run's masking (whole words here), so it reproduces the run's logged val loss, \
and prints the spread of the body's vectors" /usr/bin/python3 -c "
import json, re
out = open('$TMP/e2b').read()
assert re.search(r'masking \(the run.s\): 30% of the tokens chosen \(whole words\); of them 80% \[MASK\]', out), out
assert re.search(r'spread of the discriminator.s mean vectors: mean cosine [-0-9.]+ \| participation ratio [0-9.]+', out), out
got = float(re.search(r'generator MLM loss ([0-9.]+)', out).group(1))
logged = [json.loads(l) for l in open('$TMP/rtd/metrics.jsonl') if 'val_loss' in l][-1]
assert abs(got - logged['val_loss']) < 0.01 * logged['val_loss'], (got, logged)  # precision may differ: auto
assert 'val_spread_pr' in logged and 'val_spread_cos' in logged, logged"

"$SS" fill-mask --model "$TMP/mlm" --top-k 3 "To be or not to [MASK]" >"$TMP/f1" 2>&1
check "fill-mask prints top-3 fillers with probabilities" bash -c "[ $(grep -cE '^ +[0-9.]+%  ' "$TMP/f1") -eq 3 ] && grep -q '^best: To be or not to' '$TMP/f1'"
"$SS" fill-mask --model "$TMP/rtd" "the [MASK] of [MASK]" >"$TMP/f2" 2>&1
check "fill-mask on an rtd run uses its generator, one block per [MASK]" bash -c "grep -q '\[MASK\] #2' '$TMP/f2'"
"$SS" pretrain --objective rtd "${ARGS[@]}" --out "$TMP/rtd-own" --gen-embeddings own >"$TMP/rtd-own.log" 2>&1 &&
  "$SS" fill-mask --model "$TMP/rtd-own" "the [MASK] of" >"$TMP/f4" 2>&1
check "an rtd run whose generator has embeddings of its own saves them, and fill-mask reads them" \
  bash -c "[ $? -eq 0 ] && head -c 20000 '$TMP/rtd-own/model.safetensors' | grep -aq 'generator.embeddings.token.weight' &&
    grep -q '^best:' '$TMP/f4'"
"$SS" fill-mask --model "$TMP/mlm" "no mask here" >"$TMP/f3" 2>&1
check "fill-mask without [MASK] is a clear error" bash -c "[ $? -ne 0 ] && grep -q 'no \[MASK\]' '$TMP/f3'"

"$SS" tokenizer train --vocab-size 300 --special-tokens '<|endoftext|>' --out "$TMP/tok2.json" "$TMP/text.txt" >/dev/null 2>&1
"$SS" data prepare --tokenizer "$TMP/tok2.json" --out "$TMP/sh2" "$TMP/text.txt" >/dev/null 2>&1
"$SS" pretrain --objective mlm --data "$TMP/sh2" --out "$TMP/x" --layers 1 --d-model 16 --heads 1 --seq 16 --steps 2 >"$TMP/e3" 2>&1
check "mlm with a tokenizer lacking [MASK] names the problem" bash -c "[ $? -ne 0 ] && grep -q 'MASK\|CLS' '$TMP/e3'"
"$SS" pretrain --objective rtd "${ARGS[@]}" --out "$TMP/y" --gen-size 0 >"$TMP/e4" 2>&1
check "--gen-size 0 is rejected" bash -c "[ $? -ne 0 ] && grep -q 'gen-size' '$TMP/e4'"
"$SS" pretrain --objective rtd "${ARGS[@]}" --out "$TMP/y" --gen-size 0.5 --disc-init generator >"$TMP/e5" 2>&1
check "--disc-init generator with a narrower generator says it needs --gen-size 1" \
  bash -c "[ $? -ne 0 ] && grep -q 'disc-init generator.*--gen-size 1' '$TMP/e5' && [ ! -e '$TMP/y/model.safetensors' ]"

# plot: what each kind of encoder run logged, two panels, and no gnuplot warning
png_height() { /usr/bin/python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(struct.unpack('>I', d[20:24])[0] if d[:4]==b'\x89PNG' else 0)" "$1"; }
"$SS" plot "$TMP/mlm" >"$TMP/p1" 2>"$TMP/p1.err"
check "plot of an mlm run: loss and masked-accuracy panels, no gnuplot warning" \
  bash -c "[ $? -eq 0 ] && grep -q 'mlm pretraining' '$TMP/p1' && [ $(png_height "$TMP/mlm/loss.png") -eq 900 ] && ! test -s '$TMP/p1.err'"
"$SS" plot "$TMP/rtd" --out "$TMP/rtd.png" >"$TMP/p2" 2>"$TMP/p2.err"
check "plot of an rtd run: generator/discriminator losses, accuracy vs base rate and AUC, no gnuplot warning" \
  bash -c "[ $? -eq 0 ] && grep -q 'rtd (ELECTRA) pretraining' '$TMP/p2' && [ $(png_height "$TMP/rtd.png") -eq 900 ] && ! test -s '$TMP/p2.err'"

# a gnuplot that fails after opening its output (a stand-in on PATH): the
# PNG drawn above stays as it was, no empty or temporary file is left; the
# PNGs drawn are 0644 like every file selfsup writes (not mkstemp's 0600)
mkdir -p "$TMP/badgp"
cat >"$TMP/badgp/gnuplot" <<'EOF'
#!/bin/sh
out=$(sed -n "s/^set output '\(.*\)'$/\1/p" "$1"); : >"$out"; echo "all points undefined" >&2; exit 1
EOF
chmod +x "$TMP/badgp/gnuplot"
cp "$TMP/rtd.png" "$TMP/rtd.before"
PATH=$TMP/badgp:$PATH "$SS" plot "$TMP/rtd" --out "$TMP/rtd.png" >"$TMP/p3" 2>"$TMP/p3.err"
plot_rc=$?
failed_plot_kept() {
  [ "$1" -ne 0 ] && grep -q 'gnuplot could not draw' "$TMP/p3.err" && cmp -s "$TMP/rtd.png" "$TMP/rtd.before" &&
    [ -z "$(ls "$TMP" | grep '\.tmp\.')" ] && [ "$(stat -c %a "$TMP/rtd.png")" = 644 ] &&
    [ "$(stat -c %a "$TMP/mlm/loss.png")" = 644 ]
}
check "plot: when gnuplot fails it says so, an earlier PNG is kept and no temporary file is left; PNGs are 0644" \
  failed_plot_kept $plot_rc

# eval on a terminal (script gives it one): a live progress line on stderr
script -qec "'$SS' eval --model '$TMP/rtd' --data '$TMP/shards' --split train --batch 2 --threads 2" /dev/null >"$TMP/tty" 2>&1
check "eval on a terminal shows a live progress line (batches, elapsed, ETA)" \
  grep -qE $'\reval train: 100% \\| batch [0-9]+/~[0-9]+ \\| [0-9]+ tokens \\| ([0-9]+m)?[0-9]+s elapsed \\| ETA 0s' "$TMP/tty"
