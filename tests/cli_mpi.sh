#!/usr/bin/env bash
# Data-parallel training with MPI (build/selfsup-mpi under mpirun, 2-4 ranks
# on this machine), printing TAP: the weights of R ranks with global batch B
# are the same bits as one process computing the batch in the same shards
# (and close to one process without shards, on the same windows); an
# interrupted and resumed 2-rank run is bit-identical to an uninterrupted
# one, also when resumed on 1 rank; on a rank count that does not divide the
# shards it continues correctly; a killed rank ends the job (no hang), the
# last checkpoint intact and resumable; fine-tuning likewise; the errors a
# user meets. Skipped (saying so) when the MPI flavour is not built.
set -u
source "$(dirname "$0")/tap.sh"
SSM=${SELFSUP_MPI:-build/selfsup-mpi}
if [ ! -x "$SSM" ] || ! command -v mpirun >/dev/null; then
  echo "1..0 # SKIP $SSM or mpirun missing: the MPI flavour is built by 'make mpi' (Debian's libopenmpi-dev openmpi-bin)"
  exit 0
fi
tap_plan 24
tap_needs tinyshakespeare input.txt cli-mpi
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# mpirun -np N, never longer than five minutes (a loaded machine is slow) (a hang fails the case, it does not stall the suite)
mpi() { local n=$1; shift; timeout -k 5 300 mpirun --oversubscribe -np "$n" "$SSM" "$@"; }
same() { cmp -s "$1/model.safetensors" "$2/model.safetensors" && cmp -s "$1/optimizer.safetensors" "$2/optimizer.safetensors"; }
# metrics.jsonl without the timing fields
metrics() { sed -E 's/,"(tokens_per_s|mfu|elapsed_s|comm_s)":[^,}]*//g' "$1/metrics.jsonl"; }
# wait (at most 30 s) for a line matching $1 in file $2
wait_for() { for _ in $(seq 600); do grep -qsE "$1" "$2" && return 0; sleep 0.05; done; return 1; }

head -c 200000 "$MIRROR/tinyshakespeare/input.txt" >"$TMP/text.txt"
"$SS" tokenizer train --vocab-size 400 --out "$TMP/tok.json" "$TMP/text.txt" >/dev/null 2>&1 &&
  "$SS" data prepare --tokenizer "$TMP/tok.json" --out "$TMP/shards" --doc-boundary blank "$TMP/text.txt" >/dev/null 2>&1 ||
  bail "could not make tokenizer and shards"

# Every run names its GEMM backend: --precision bf16 takes oneDNN's bf16
# products (or the reference path) without the timed probe, which on a busy
# machine may pick another fp32 backend for one of two runs compared bit for
# bit. (Within one run the ranks take rank 0's choice; a resumed run keeps its own.)
P=(--precision bf16)
# The checks that compare runs of other rounding within a tolerance (not bit
# for bit) run in fp32: bf16 inputs (the attention tiles' too, on CPUs with
# AVX512_BF16) turn rounding-level differences into bf16-ulp ones, which
# AdamW's normalized steps carry to whole steps on weights whose gradient is
# near 0, as a wrong window would. Either fp32 backend the probe picks keeps
# them at fp32 rounding.
PF=(--precision fp32)

# (a) 2 ranks x 1 shard against 1 process x 2 shards (build/selfsup itself):
# dropout and gradient accumulation on, batch 6 split 3 + 3.
A=(--objective clm --data "$TMP/shards" --layers 2 --d-model 32 --heads 2 --seq 32 --batch 6 --grad-accum 2 --steps 12 --lr 1e-3
   --dropout 0.1 --eval-every 6 --eval-tokens 2048 --log-every 1 --threads 1 --seed 7 "${P[@]}")
mpi 2 pretrain "${A[@]}" --out "$TMP/r2" >"$TMP/r2.out" 2>"$TMP/r2.err"
rc=$?
check "2 ranks: pretrain exits 0" [ $rc -eq 0 ]
check "the thread line shows ranks x threads, printed once (rank 0 reports)" \
  bash -c "grep -q '^threads: 2 ranks x 1 ' '$TMP/r2.err' && [ \$(grep -c '^threads:' '$TMP/r2.err') -eq 1 ] &&
           [ \$(grep -c '^done:' '$TMP/r2.out') -eq 1 ] && [ \$(grep -c '^step 12/12' '$TMP/r2.out') -eq 1 ]"
check "the log says how the batch is split (2 ranks, 2 shards of 3 windows)" \
  grep -q '^data parallel: 2 ranks (Open MPI.*2 shards of 3-3 windows, 1 per rank' "$TMP/r2.out"
"$SS" pretrain "${A[@]}" --shards 2 --out "$TMP/s2" >"$TMP/s2.log" 2>&1
check "2 ranks give bit-identical weights and AdamW moments to 1 process computing the same 2 shards" same "$TMP/r2" "$TMP/s2"
# One shard per rank with --comm-overlap: each block's gradients are summed by
# the communication thread during the backward; by default everything is
# summed after it (the case above). The sums are the same, element by element.
check "the log says the gradients are summed after the backward pass (the default)" \
  grep -q 'across the ranks after the backward pass' "$TMP/r2.out"
mpi 2 pretrain "${A[@]}" --comm-overlap --out "$TMP/r2o" >"$TMP/r2o.log" 2>&1
check "--comm-overlap: each block's gradients summed during the backward, the same bits as after it" \
  bash -c "cmp -s '$TMP/r2o/model.safetensors' '$TMP/r2/model.safetensors' &&
           cmp -s '$TMP/r2o/optimizer.safetensors' '$TMP/r2/optimizer.safetensors' &&
           grep -q 'across the ranks each block.s during the backward pass' '$TMP/r2o.log'"
diff <(metrics "$TMP/r2") <(metrics "$TMP/s2") >/dev/null
d=$?
check "... and the same logged losses, gradient norms and validation losses (rank 0 logs the reduced values)" \
  bash -c "[ $d -eq 0 ] && [ \$(grep -c val_loss '$TMP/r2/metrics.jsonl') -eq 2 ] && [ \$(grep -c grad_norm '$TMP/r2/metrics.jsonl') -eq 12 ]"

# The same windows as one process without shards: only the order of the
# gradient sums differs. The loss of step 1 (the initial weights on the
# first batch) agrees to rounding; a different batch would move it by ~1e-2.
AF=("${A[@]:0:${#A[@]}-2}" "${PF[@]}")
mpi 2 pretrain "${AF[@]}" --out "$TMP/r2f" >"$TMP/r2f.log" 2>&1
"$SS" pretrain "${AF[@]}" --out "$TMP/s1" >"$TMP/s1.log" 2>&1
# An AdamW step moves a weight by up to lr (1e-3 here) and a different batch
# moves many by about that; rounding-level gradient differences stay far
# below one step: the tolerance is lr / 10.
check "2 ranks draw the windows 1 process draws (step-1 loss equal to 1e-9; the weights after 12 steps within lr/10)" \
  /usr/bin/python3 -c "
import json, sys
sys.path.insert(0, 'tests')
import st_io, numpy as np
l = [json.loads(open('$TMP/' + d + '/metrics.jsonl').readline())['loss'] for d in ('r2f', 's1')]
assert abs(l[0] - l[1]) <= 1e-9 * abs(l[1]), l
a, b = (st_io.read('$TMP/' + d + '/model.safetensors')[0] for d in ('r2f', 's1'))
d = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
print('# max |w(2 ranks) - w(1 process, 1 shard)| after 12 steps: %.2e' % d)
assert 0 <= d < 1e-4, d"

# 3 ranks (not a power of two: tree reduction to rank 0 + broadcast) and 4
# (recursive halving over two levels) against one process with as many shards,
# with the buckets summed during the backward (--comm-overlap).
mpi 3 pretrain "${A[@]}" --steps 4 --comm-overlap --out "$TMP/r3" >"$TMP/r3.log" 2>&1 &&
  "$SS" pretrain "${A[@]}" --steps 4 --shards 3 --out "$TMP/s3" >"$TMP/s3.log" 2>&1
check "3 ranks = 1 process x 3 shards, bit for bit" same "$TMP/r3" "$TMP/s3"
mpi 4 pretrain "${A[@]}" --steps 4 --batch 8 --comm-overlap --out "$TMP/r4" >"$TMP/r4.log" 2>&1 &&
  mpi 2 pretrain "${A[@]}" --steps 4 --batch 8 --shards 4 --out "$TMP/r24" >"$TMP/r24.log" 2>&1 &&
  "$SS" pretrain "${A[@]}" --steps 4 --batch 8 --shards 4 --out "$TMP/s4" >"$TMP/s4.log" 2>&1
check "4 ranks = 2 ranks x 2 shards each = 1 process x 4 shards, bit for bit" \
  bash -c "cmp -s '$TMP/r4/model.safetensors' '$TMP/s4/model.safetensors' && cmp -s '$TMP/r24/model.safetensors' '$TMP/s4/model.safetensors'"

# mlm and rtd: masks, packing and the generator's samples are one stream
# (2 ranks with --comm-overlap: an encoder's blocks, an ELECTRA generator).
for obj in mlm rtd; do
  E=(--objective $obj --data "$TMP/shards" --layers 2 --d-model 32 --heads 2 --seq 32 --batch 4 --steps 4 --dropout 0.1
     --eval-every 4 --eval-tokens 2048 --threads 1 "${P[@]}")
  mpi 2 pretrain "${E[@]}" --comm-overlap --out "$TMP/$obj-r2" >"$TMP/$obj.log" 2>&1 &&
    "$SS" pretrain "${E[@]}" --shards 2 --out "$TMP/$obj-s2" >>"$TMP/$obj.log" 2>&1
  diff <(metrics "$TMP/$obj-r2") <(metrics "$TMP/$obj-s2") >/dev/null
  d=$?
  check "$obj: 2 ranks = 1 process x 2 shards (weights and every logged metric, evaluation included)" \
    bash -c "cmp -s '$TMP/$obj-r2/model.safetensors' '$TMP/$obj-s2/model.safetensors' && [ $d -eq 0 ] &&
             grep -q val_acc '$TMP/$obj-r2/metrics.jsonl'"
done

# (b) interrupt and resume: `kill -USR1` to mpirun (forwarded to every rank;
# mpirun answers Ctrl-C with SIGTERM, then SIGKILL a second later).
I=(--objective clm --data "$TMP/shards" --layers 2 --d-model 64 --heads 2 --seq 64 --batch 8 --steps 120
   --eval-every 0 --save-every 0 --log-every 10 --threads 1 --seed 3 "${PF[@]}")
mpi 2 pretrain "${I[@]}" --out "$TMP/full" >"$TMP/full.log" 2>&1
mpirun --oversubscribe -np 2 "$SSM" pretrain "${I[@]}" --out "$TMP/int" >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
wait_for '^step [0-9]+/' "$TMP/int.out"
kill -USR1 $pid
( sleep 60; kill -9 $pid 2>/dev/null ) & dog=$!
wait $pid
rc=$?
kill $dog 2>/dev/null
cp -r "$TMP/int" "$TMP/int1" && cp -r "$TMP/int" "$TMP/int4" # the same checkpoint, resumed on 1 and 4 ranks below
saved=$(/usr/bin/python3 -c "import json; print(json.load(open('$TMP/int/trainer_state.json'))['step'])" 2>/dev/null)
check "SIGUSR1 to mpirun: every rank stops after the same step, rank 0 saves, exit 130 (saved at step ${saved:-none} of 120)" \
  bash -c "[ $rc -eq 130 ] && grep -q 'interrupted: checkpoint saved' '$TMP/int.err' && [ '${saved:-0}' -gt 0 ] && [ '${saved:-0}' -lt 120 ]"
mpi 2 pretrain --resume --out "$TMP/int" --threads 1 >"$TMP/res.log" 2>&1
check "resumed on 2 ranks: bit-identical to the uninterrupted 2-rank run" \
  bash -c "[ $? -eq 0 ] && cmp -s '$TMP/full/model.safetensors' '$TMP/int/model.safetensors'"
"$SS" pretrain --resume --out "$TMP/int1" --threads 1 >"$TMP/res1.log" 2>&1
check "(d) resumed on 1 process (build/selfsup): it keeps the run's 2 shards and ends bit-identical too" \
  bash -c "[ $? -eq 0 ] && cmp -s '$TMP/full/model.safetensors' '$TMP/int1/model.safetensors'"

# (c) a rank killed with SIGKILL after a checkpoint: the job ends (mpirun
# kills the others), the checkpoint is intact and --resume finishes the run.
# A larger model than I's: the run must still be going when the victim is
# found (I's 160 steps take about a second with bf16 products on a fast CPU).
K=(--objective clm --data "$TMP/shards" --layers 4 --d-model 128 --heads 2 --seq 128 --batch 8 --steps 160
   --eval-every 0 --save-every 20 --log-every 10 --threads 1 --seed 3 "${P[@]}")
mpirun --oversubscribe -np 2 "$SSM" pretrain "${K[@]}" --out "$TMP/kill" >"$TMP/kill.out" 2>"$TMP/kill.err" &
pid=$!
wait_for 'saved checkpoint at step' "$TMP/kill.out"
# the ranks' pids from /proc (no pgrep: a fresh Debian has no procps)
ranks_of() { local d; for d in /proc/[0-9]*; do
  tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qE "^[^ ]*selfsup-mpi pretrain .*$1" && echo "${d#/proc/}"; done; }
victim=""
for p in $(ranks_of "$TMP/kill"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
done
[ -n "$victim" ] && kill -9 "$victim"
( sleep 30; kill -9 $pid 2>/dev/null ) & dog=$!
wait $pid
rc=$?
kill $dog 2>/dev/null
left=$(ranks_of "$TMP/kill" | tr '\n' ' ')
check "a killed rank ends the job within 30 s with mpirun's message naming it (no hang)" \
  bash -c "[ -n '$victim' ] && [ $rc -ne 0 ] && grep -q 'rank 1 .*exited on signal 9' '$TMP/kill.err' && [ -z '$left' ]"
mpi 2 pretrain --resume --out "$TMP/kill" --threads 1 >"$TMP/kres.log" 2>&1
check "the last checkpoint is intact: --resume on 2 ranks runs to the end" \
  bash -c "[ $? -eq 0 ] && grep -qE 'resumed .* at step [1-9]' '$TMP/kres.log' && grep -qE '\"step\":[[:space:]]*160,' '$TMP/kill/trainer_state.json'"

# (d) a rank count that does not divide the saved shards: 4 ranks on a
# 2-shard run continue in 4 shards (said so), correctly but not bit-identically:
# the rounding differences of the sums grow over the ~108 remaining steps
# (measured 1.5e-4 with bf16 products) but stay below half an AdamW step at
# the peak lr (1e-3); other windows or a lost step or moment would move the
# weights by whole steps.
mpi 4 pretrain --resume --out "$TMP/int4" --threads 1 >"$TMP/r4res.log" 2>&1
rc=$?
check "resumed on 4 ranks (2 saved shards): says it continues in 4 shards, not bit-identically, and finishes" \
  bash -c "[ $rc -eq 0 ] && grep -q 'continues in 4 (correct, but no longer bit-identical' '$TMP/r4res.log' &&
           grep -qE '\"shards\":[[:space:]]*4' '$TMP/int4/trainer_state.json'"
check "... correctly: after ~100 more steps its weights are within lr/2 of the uninterrupted run's (same windows, other rounding)" \
  /usr/bin/python3 -c "
import sys
sys.path.insert(0, 'tests')
import st_io, numpy as np
a, b = (st_io.read('$TMP/' + d + '/model.safetensors')[0] for d in ('full', 'int4'))
d = max(float(np.max(np.abs(a[k] - b[k]))) for k in a)
print('# max |w(resumed on 4 ranks) - w(uninterrupted, 2 ranks)|: %.2e' % d)
assert d < 5e-4, d"

# Fine-tuning through the same engine: batch 7 split 3 + 4, the epoch's last
# batch shorter, dropout, gradient accumulation, dev evaluated in parts.
SST=$MIRROR/sst2
[ -f "$SST/train.tsv" ] || [ -n "${SELFSUP_DATA_MIRROR:-}" ] || "$SS" data get sst2 --dest corpora/cache >/dev/null 2>&1
if [ -f "$SST/train.tsv" ]; then
  head -301 "$SST/train.tsv" >"$TMP/ft_train.tsv"; head -101 "$SST/dev.tsv" >"$TMP/ft_dev.tsv"
  F=(--init "$TMP/s1" --train "$TMP/ft_train.tsv" --dev "$TMP/ft_dev.tsv" --epochs 2 --batch 7 --grad-accum 2 --max-seq 32
     --dropout 0.1 --lr 1e-3 --threads 1 --seed 3 "${P[@]}")
  mpi 2 finetune "${F[@]}" --out "$TMP/f2" >"$TMP/f2.log" 2>&1 &&
    "$SS" finetune "${F[@]}" --shards 2 --out "$TMP/f1" >"$TMP/f1.log" 2>&1
  check "finetune: 2 ranks = 1 process x 2 shards (best weights, eval.json), results printed once" \
    bash -c "cmp -s '$TMP/f2/model.safetensors' '$TMP/f1/model.safetensors' && cmp -s '$TMP/f2/eval.json' '$TMP/f1/eval.json' &&
             [ \$(grep -c '^dev: accuracy' '$TMP/f2.log') -eq 1 ]"
  # Self-training (--unlabeled): every round's fine-tuning data parallel,
  # rank 0 alone labelling the pool and writing the rounds' files; two
  # teachers, their ensemble labelling round 1; gold labels on the pool.
  sed -n '1p;302,701p' "$SST/train.tsv" >"$TMP/st_pool.tsv"
  S=("${F[@]}" --epochs 4 --lr 3e-3 --unlabeled "$TMP/st_pool.tsv" --rounds 2 --threshold 0.5 --teachers 2)
  mpi 2 finetune "${S[@]}" --out "$TMP/st2" >"$TMP/st2.log" 2>&1
  rc=$?
  "$SS" finetune "${S[@]}" --shards 2 --out "$TMP/st1" >"$TMP/st1.log" 2>&1
  check "self-training on 2 ranks = 1 process x 2 shards (the pseudo-labels, the kept model, selftrain.json), the table printed once" \
    bash -c "[ $rc -eq 0 ] && cmp -s '$TMP/st2/round-1/train.jsonl' '$TMP/st1/round-1/train.jsonl' &&
             cmp -s '$TMP/st2/model.safetensors' '$TMP/st1/model.safetensors' &&
             cmp -s '$TMP/st2/selftrain.json' '$TMP/st1/selftrain.json' && grep -q '^ *1 *[1-9][0-9]* *0\.[0-9]* (n=' '$TMP/st2.log' &&
             [ \$(grep -c '^self-training (' '$TMP/st2.log') -eq 1 ] && [ \$(grep -c 'round 1: [0-9]* pseudo-labels' '$TMP/st2.log') -eq 1 ]"
  # Ctrl-C reaching one rank alone (rank 1) while the second teacher trains:
  # every rank stops alike (no rank left waiting), exit 130; the same
  # command again finishes the run with the uninterrupted one's bits.
  timeout -k 5 300 mpirun --oversubscribe -np 2 "$SSM" finetune "${S[@]}" --epochs 30 --out "$TMP/sti" >"$TMP/sti.log" 2>&1 &
  pid=$!
  wait_for 'teacher 2 of 2' "$TMP/sti.log"
  r1=$(for p in $(pgrep -f "selfsup-mpi finetune.*$TMP/sti"); do grep -qz '^OMPI_COMM_WORLD_RANK=1$' /proc/$p/environ 2>/dev/null && echo $p; done)
  [ -n "$r1" ] && kill -INT $r1
  wait $pid
  rc=$?
  mpi 2 finetune "${S[@]}" --epochs 30 --out "$TMP/sti" >"$TMP/sti2.log" 2>&1
  rc2=$?
  "$SS" finetune "${S[@]}" --epochs 30 --shards 2 --out "$TMP/stu" >"$TMP/stu.log" 2>&1
  check "self-training: SIGINT to rank 1 alone stops both ranks (exit 130, no hang); run again, it ends with the uninterrupted run's bits" \
    bash -c "[ -n '$r1' ] && [ $rc -eq 130 ] && [ $rc2 -eq 0 ] && grep -q 'finished before' '$TMP/sti2.log' &&
             cmp -s '$TMP/sti/model.safetensors' '$TMP/stu/model.safetensors' && cmp -s '$TMP/sti/selftrain.json' '$TMP/stu/selftrain.json'"
else
  notok "finetune: 2 ranks = 1 process x 2 shards" "no $SST/train.tsv (selfsup data get sst2)"
  notok "self-training on 2 ranks" "no $SST/train.tsv (selfsup data get sst2)"
  notok "self-training: SIGINT to rank 1 alone" "no $SST/train.tsv (selfsup data get sst2)"
fi

# Errors: a clear message, a nonzero exit, no rank left waiting.
mpi 2 pretrain "${A[@]}" --shards 3 --out "$TMP/e1" >"$TMP/e1.log" 2>&1
rc=$?
check "--shards 3 on 2 ranks: an error naming --shards and the ranks, the job ended (no timeout)" \
  bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -- '--shards 3: must be a multiple of the 2 ranks' '$TMP/e1.log'"
mpi 4 pretrain "${A[@]}" --batch 3 --out "$TMP/e2" >"$TMP/e2.log" 2>&1
rc=$?
check "--batch 3 on 4 ranks: an error (each shard needs a window), printed once" \
  bash -c "[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ \$(grep -c -- '--batch 3 is smaller than the 4 shards' '$TMP/e2.log') -eq 1 ]"
