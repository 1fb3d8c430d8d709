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
tap_plan 21
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

# ---- kill -9 ----------------------------------------------------------------------------
# Every trial runs the reference's 40 steps saving every step (so most of the
# wall time is spent in checkpoint writes), kills it with SIGKILL, then
# resumes it (killing it again when told) until it finishes. The moments are
# random; FAULT_SEED=N replays a sequence.
SEED=${FAULT_SEED:-$((RANDOM))}
RANDOM=$SEED
echo "# kill -9 trials: FAULT_SEED=$SEED"
start=$(date +%s%N)
"$SS" pretrain "${ARGS[@]}" --save-every 1 --out "$TMP/every" >"$TMP/every.log" 2>&1
EVERY_MS=$((($(date +%s%N) - start) / 1000000))
check "a run saving every step ends bit-identical to the reference (saving every 10; ${EVERY_MS} ms)" \
  same_weights "$TMP/every"

# start_run RUN [--resume]: a run in the background; PID is its process id.
start_run() {
  if [ "${2:-}" = --resume ]; then "$SS" pretrain --resume --out "$1" --save-every 1 --threads 1 >>"$1.log" 2>&1 &
  else "$SS" pretrain "${ARGS[@]}" --save-every 1 --out "$1" >>"$1.log" 2>&1 & fi
  PID=$!
}
step_now() { sed -n 's/^[[:space:]]*"step":[[:space:]]*\([0-9]*\),*$/\1/p' "$1/trainer_state.json" 2>/dev/null; }
# wait_step RUN N: until RUN's checkpoint is past step N (or the run ended).
wait_step() {
  local i s
  for ((i = 0; i < 4000; i++)); do
    s=$(step_now "$1")
    [ -n "$s" ] && [ "$s" -gt "$2" ] && return
    kill -0 "$PID" 2>/dev/null || return
    sleep 0.005
  done
}
# kill_now RUN: SIGKILL PID; KILLED=1 when it died of it (0: it had
# finished), TEMPS: the temp files left behind (a write cut short).
kill_now() {
  local rc f
  kill -9 "$PID" 2>/dev/null
  { wait "$PID"; } 2>/dev/null # (no "Killed" job message)
  rc=$?
  KILLED=$([ $rc -eq 137 ] && echo 1 || echo 0)
  f=("$1"/*.tmp.*)
  TEMPS=0
  [ -e "${f[0]}" ] && TEMPS=${#f[@]}
}
# random_ms SPAN: a random delay below SPAN ms, as seconds for sleep.
random_sleep() {
  local ms=$(((RANDOM * 32768 + RANDOM) % ($1 > 1 ? $1 : 1)))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
}
# finish RUN: resume until done; 0 when it ends cleanly.
finish() { "$SS" pretrain --resume --out "$1" --threads 1 >>"$1.log" 2>&1 && grep -q '^done' "$1.log"; }
resumed_ok() { [ "$1" -eq 0 ] && same_weights "$2"; } # RC RUN

# At a random moment: past a random step (after the first checkpoint, or
# when resumed after its first new one), then a random part of a step's time.
kill_random() { # RUN [--resume]
  local from=0 to
  [ "${2:-}" = --resume ] && from=$(step_now "$1")
  to=$((from < 37 ? from + RANDOM % (38 - from) : from))
  start_run "$1" "${2:-}"
  wait_step "$1" "$to"
  random_sleep $((EVERY_MS / 40))
  kill_now "$1"
}
for t in 1 2 3; do
  run=$TMP/kill$t
  kill_random "$run"
  note="killed=$KILLED at step $(step_now "$run"), $TEMPS temp file(s) left"
  if [ $t -eq 3 ]; then # killed again after resuming
    kill_random "$run" --resume
    note="$note; resumed, killed=$KILLED at step $(step_now "$run"), $TEMPS temp file(s) left"
  fi
  finish "$run"
  rc=$?
  check "kill -9 at a random moment ($note), resumed: bit-identical" resumed_ok $rc "$run"
done

# While a checkpoint file is being written: from a random step on, the temp
# file of a randomly chosen checkpoint file is watched for, and SIGKILL follows
# its appearance by well under a millisecond, far less than the write and its
# fsync take. Up to 5 attempts per trial to leave a temp file behind (the
# proof that a write was cut short).
CKPT=(config.json model.safetensors optimizer.safetensors trainer_state.json)
cut=0
left=0
for t in 1 2 3; do
  for a in 1 2 3 4 5; do
    run=$TMP/write$t.$a
    target=${CKPT[RANDOM % 4]}
    from=$((RANDOM % 30))
    start_run "$run"
    wait_step "$run" "$from"
    for ((i = 0; i < 200000; i++)); do
      f=("$run/$target".tmp.*)
      [ -e "${f[0]}" ] && break
      kill -0 "$PID" 2>/dev/null || break
    done
    kill_now "$run"
    [ "$KILLED" = 1 ] && [ "$TEMPS" -gt 0 ] && break
  done
  [ "$TEMPS" -gt 0 ] && cut=$((cut + 1))
  note="attempt $a: writing $target after step $(step_now "$run"), killed=$KILLED, $TEMPS temp file(s) left"
  finish "$run"
  rc=$?
  left=$((left + $(ls -A "$run" | grep -c '\.tmp\.')))
  check "kill -9 during a checkpoint write ($note), resumed: bit-identical" resumed_ok $rc "$run"
done
check "the kills cut writes short ($cut of 3 trials left a temp file); the resumed runs' saves removed them ($left left)" \
  bash -c "[ $cut -ge 2 ] && [ $left -eq 0 ]"

# A mid-run checkpoint (a run killed past step 20) with one flipped bit in its latest model.
run=$TMP/killflip
start_run "$run"
wait_step "$run" 20
kill_now "$run"
at=$(step_now "$run")
flip "$run/model.safetensors"
"$SS" pretrain --resume --out "$run" --threads 1 >"$run.resume" 2>&1
rc=$?
# Killed inside a save after .previous was linked, RUN and .previous share the
# damaged file (hard links, one inode): then nothing is left to resume from,
# and the run must say so; otherwise it resumes from .previous.
killflip_ok() {
  if [ $rc -eq 0 ]; then
    echo "# fell back to .previous"
    grep -q 'does not match its checksum' "$run.resume" && grep -q 'resumed from .*/.previous' "$run.resume" &&
      same_weights "$run"
  else
    echo "# the kill fell inside a save, after .previous was linked to the same files: no undamaged set"
    grep -q "$run/model.safetensors: tensor data does not match its checksum" "$run.resume" &&
      ! grep -q '^step ' "$run.resume"
  fi
}
check "kill -9 at step $at, then a flipped bit in the latest model: --resume falls back to .previous and ends \
bit-identical, or fails naming the file when .previous shares it" killflip_ok

# ---- a full disk -------------------------------------------------------------------------
# A tmpfs with room for the tokenizer and about 1.5 checkpoint sets: the first
# save (step 10) fits; the second needs a whole new set beside the first
# (which .previous keeps), so one of its writes fails for want of space.
set_bytes=$(($(stat -c %s "$TMP/ref/model.safetensors") + $(stat -c %s "$TMP/ref/optimizer.safetensors")))
FULL=$TMP/full
mkdir -p "$FULL"
if [ "$(id -u)" != 0 ]; then
  why="not root: mount -t tmpfs needs it"
elif ! mount -t tmpfs -o size=$(((set_bytes * 3 / 2 + 65536) / 1024))k tmpfs "$FULL" 2>"$TMP/mount.err"; then
  why="mount -t tmpfs failed: $(head -1 "$TMP/mount.err")"
else
  why=""
  trap 'umount "$FULL" 2>/dev/null; rm -rf "$TMP"' EXIT
fi
if [ -n "$why" ]; then
  echo "# disk-full cases skipped: $why"
  for c in "a checkpoint write on a full disk fails" "the last complete checkpoint survives" \
           "copied off the full disk, the run resumes" "... and ends bit-identical"; do ok "$c # SKIP $why"; done
else
  "$SS" pretrain "${ARGS[@]}" --save-every 10 --out "$FULL/run" >"$TMP/full.log" 2>&1
  rc=$?
  echo "# $(grep -i 'space' "$TMP/full.log" | head -1)"
  check "a checkpoint write on a full disk fails: exit 1, a message naming the file and 'No space left on device'" \
    bash -c "[ $rc -eq 1 ] && grep -qE '$FULL/run/[a-z_.]+: .*No space left on device' '$TMP/full.log' &&
             ! grep -q '^done' '$TMP/full.log'"
  check "the last complete checkpoint survives: the set at step 10 loads, no temp file is left" \
    bash -c "! ls -A '$FULL/run' | grep -q '\.tmp\.' && '$SS' eval --model '$FULL/run/.previous' --data '$TMP/shards' --seq 16 \
               --threads 1 >/dev/null 2>&1 && grep -qE '\"step\":[[:space:]]*10,' '$FULL/run/.previous/trainer_state.json'"
  cp -a "$FULL/run" "$TMP/full-copy"
  umount "$FULL"
  "$SS" pretrain --resume --out "$TMP/full-copy" --threads 1 >"$TMP/full-copy.log" 2>&1
  rc=$?
  check "copied off the full disk, the run resumes from its last complete checkpoint ..." \
    bash -c "[ $rc -eq 0 ] && grep -qE 'resumed .*at step 10' '$TMP/full-copy.log'"
  check "... and ends bit-identical" same_weights "$TMP/full-copy"
fi
