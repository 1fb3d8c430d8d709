#!/usr/bin/env bash
# Fault injection through the CLI, printing TAP (issue 18):
#  - corrupted tensor bytes: one flipped bit in a model's or optimizer's
#    tensor data is caught by the file's checksum (data_xxh64): eval and
#    generate fail naming the file, --resume falls back to .previous and ends
#    bit-identical to an undamaged run, or fails clearly when both sets are
#    damaged; a file without the checksum (written before it existed) loads;
#  - kill -9 at random moments of a run that saves every step (so most kills
#    land in a checkpoint write), and right as a checkpoint's temporary file
#    appears; each run, resumed (several times when killed again), ends with
#    tensor data bit-identical to an uninterrupted run's;
#  - a full disk: on a small tmpfs (root only; skipped with a message
#    otherwise) a checkpoint write fails with a nonzero exit and a message
#    naming the file, the last complete checkpoint survives, and the run
#    copied elsewhere resumes from it to the same weights.
# The model is so small that every matrix product is below the GEMM layer's
# small-product threshold (SS_GEMM_SMALL, 64^3 multiply-adds): OpenBLAS
# computes them all whatever backend the start-up probe picks, so separate
# runs compare bit for bit. One thread throughout.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 8
tap_needs tinyshakespeare input.txt cli-faults
PY=/usr/bin/python3

head -c 100000 "$MIRROR/tinyshakespeare/input.txt" >"$TMP/text.txt"
"$SS" tokenizer train --vocab-size 300 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary blank "$TMP/text.txt" >/dev/null 2>&1 ||
  bail "could not make tokenizer and shards"

ARGS=(--objective clm --data "$TMP/shards" --layers 2 --d-model 16 --heads 2 --d-ff 64 --seq 16 --batch 2
      --steps 40 --eval-every 0 --log-every 10 --threads 1 --seed 3)

# data_sha FILE: sha256 of a safetensors file's tensor data (after the 8-byte
# size and the JSON header).
data_sha() {
  "$PY" -c "import hashlib, struct, sys
b = open(sys.argv[1], 'rb').read()
print(hashlib.sha256(b[8 + struct.unpack('<Q', b[:8])[0]:]).hexdigest())" "$1"
}
# flip FILE: flip one bit of the middle byte of the tensor data, in place.
flip() {
  "$PY" -c "import struct, sys
f = open(sys.argv[1], 'r+b'); n = struct.unpack('<Q', f.read(8))[0]
f.seek(0, 2); size = f.tell(); at = 8 + n + (size - 8 - n) // 2
f.seek(at); c = f.read(1)[0]; f.seek(at); f.write(bytes([c ^ 0x10])); f.close()" "$1"
}
# strip_checksum FILE: rewrite the header without data_xxh64, as selfsup
# wrote files before the checksum existed.
strip_checksum() {
  "$PY" -c "import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); del h['__metadata__']['data_xxh64']
t = json.dumps(h, separators=(',', ':')).encode(); t += b' ' * (-len(t) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(t)) + t + b[8 + n:])" "$1"
}
step_of() { sed -n 's/^ *"step": *\([0-9]*\),*$/\1/p' "$1/trainer_state.json"; }
# same_weights RUN: RUN's final tensor data equals the uninterrupted run's.
same_weights() { [ "$(data_sha "$1/model.safetensors")" = "$REF_SHA" ]; }

# The reference: uninterrupted, a checkpoint every 10 steps.
start=$(date +%s%N)
"$SS" pretrain "${ARGS[@]}" --save-every 10 --out "$TMP/ref" >"$TMP/ref.log" 2>&1 || bail "reference run failed: $(tail -3 "$TMP/ref.log")"
REF_NS=$(($(date +%s%N) - start))
REF_SHA=$(data_sha "$TMP/ref/model.safetensors")

# ---- corrupted tensor bytes ------------------------------------------------------
cp -a "$TMP/ref" "$TMP/c1"
flip "$TMP/c1/model.safetensors"
"$SS" eval --model "$TMP/c1" --data "$TMP/shards" --seq 16 --threads 1 >"$TMP/e1" 2>&1
check "eval of a model with one flipped bit in its tensor data fails naming the file and the checksum" \
  bash -c "[ $? -ne 0 ] && grep -q '$TMP/c1/model.safetensors: tensor data does not match its checksum' '$TMP/e1' &&
           ! grep -q 'perplexity' '$TMP/e1'"
"$SS" generate --model "$TMP/c1" -p "To be" -n 5 --threads 1 >"$TMP/e2" 2>&1
check "generate with that model fails the same way" \
  bash -c "[ $? -ne 0 ] && grep -q '$TMP/c1/model.safetensors: tensor data does not match its checksum' '$TMP/e2'"
"$SS" pretrain --resume --out "$TMP/c1" --threads 1 >"$TMP/e3" 2>&1
check "--resume with the latest model damaged falls back to .previous (step 30) and says why" \
  bash -c "[ $? -eq 0 ] && grep -q 'does not match its checksum' '$TMP/e3' && grep -q 'resumed from .*/.previous' '$TMP/e3' &&
           grep -q 'at step 30' '$TMP/e3'"
check "... and ends bit-identical to the undamaged run" same_weights "$TMP/c1"

cp -a "$TMP/ref" "$TMP/c2"
flip "$TMP/c2/optimizer.safetensors"
"$SS" pretrain --resume --out "$TMP/c2" --threads 1 >"$TMP/e4" 2>&1
check "--resume with the latest optimizer state damaged falls back to .previous ..." \
  bash -c "[ $? -eq 0 ] && grep -q 'optimizer.safetensors: tensor data does not match its checksum' '$TMP/e4' &&
           grep -q 'resumed from .*/.previous' '$TMP/e4'"
check "... and ends bit-identical to the undamaged run" same_weights "$TMP/c2"

cp -a "$TMP/ref" "$TMP/c3"
flip "$TMP/c3/model.safetensors"
flip "$TMP/c3/.previous/model.safetensors"
"$SS" pretrain --resume --out "$TMP/c3" --threads 1 >"$TMP/e5" 2>&1
check "--resume with both sets damaged fails naming the file, without training" \
  bash -c "[ $? -ne 0 ] && grep -q '$TMP/c3/model.safetensors: tensor data does not match its checksum' '$TMP/e5' &&
           ! grep -q '^step ' '$TMP/e5'"

cp -a "$TMP/ref" "$TMP/old"
strip_checksum "$TMP/old/model.safetensors"
"$SS" eval --model "$TMP/old" --data "$TMP/shards" --seq 16 --threads 1 >"$TMP/e6" 2>&1
rc=$?
"$SS" eval --model "$TMP/ref" --data "$TMP/shards" --seq 16 --threads 1 >"$TMP/e7" 2>&1
check "a model written without the checksum (before it existed) loads and evaluates as before" \
  bash -c "[ $rc -eq 0 ] && grep -q perplexity '$TMP/e6' && [ \"\$(grep perplexity '$TMP/e6')\" = \"\$(grep perplexity '$TMP/e7')\" ]"
