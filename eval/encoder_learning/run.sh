#!/usr/bin/env bash
# Reproduces eval/encoder_learning/README.md: is slow encoder learning at
# small scale a selfsup bug or the dynamics of MLM/ELECTRA at this size?
#   bash eval/encoder_learning/run.sh [WORKDIR]     (from /work/main; ~10 min on a quiet 2-core box)
# Needs build/ (or B=...) with libselfsup.a and selfsup, and /usr/bin/python3 with torch.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=${B:-$ROOT/build}
W=${1:-/tmp/encoder_learning}
EL=$ROOT/eval/encoder_learning
PY=/usr/bin/python3
export OMP_NUM_THREADS=1
mkdir -p "$W/sw"
cd "$W"
cflags="-O2 -march=native -std=c11 -D_GNU_SOURCE -fopenmp -I$ROOT/include"
libs="$B/libselfsup.a $(pkg-config --libs libutf8proc libzstd libcjson) -L/usr/lib/$(gcc -print-multiarch)/openblas-openmp -Wl,-rpath,/usr/lib/$(gcc -print-multiarch)/openblas-openmp -lopenblas -lm"
gcc $cflags -o dump_mlm "$EL/dump_mlm.c" $libs
gcc $cflags -o rtd_harness "$EL/rtd_harness.c" $libs
S=$B/selfsup

# the data of tests/test_train_encoder.c: 200 KB of tinyshakespeare, BPE 512, blank-line documents
head -c 200000 "${SELFSUP_DATA_MIRROR:-$ROOT/../shared/data}/tinyshakespeare/input.txt" > slice.txt
$S tokenizer train --vocab-size 512 --threads 1 --out tok.json slice.txt
$S data prepare --tokenizer tok.json --out shards --doc-boundary blank --val-fraction 0.1 --threads 1 slice.txt

model="--layers 2 --d-model 64 --heads 2 --d-ff 128 --max-seq 64 --seq 64"
run() { # NAME OBJ STEPS ARGS...: a selfsup run, val metrics printed
  local name=$1 obj=$2 steps=$3; shift 3
  $S pretrain --objective "$obj" --data shards --out "sw/$name" $model --steps "$steps" --eval-tokens 16384 \
     --save-every 0 --seed 11 --threads 1 --overwrite "$@" > "sw/$name.log" 2>&1
  echo "$name: $(grep val_ "sw/$name/metrics.jsonl" | tr '\n' ' ')"
}

# (1) MLM: selfsup's exact batches + init replayed in PyTorch, step by step
./dump_mlm shards dump 800 11 8 64 2 64 2 128
run mlm_test mlm 800 --batch 8 --lr 3e-3 --warmup 10 --eval-every 100 --log-every 1
$PY "$EL/replay_torch.py" dump sw/mlm_test replay_mlm.tsv --steps 800 --lr 3e-3 --warmup 10

# (1b) RTD: the harness reproduces the trainer bit for bit, PyTorch replays its batches and samples
./rtd_harness shards h_rtd 800 11 8 64 2 64 2 128 0.5 3e-3 10 50
run rtd_test rtd 800 --batch 8 --lr 3e-3 --warmup 10 --gen-size 0.5 --eval-every 800 --log-every 1
$PY - <<'EOF'
import json
c = [json.loads(l) for l in open("sw/rtd_test/metrics.jsonl") if '"loss"' in l]
h = [l.split("\t") for l in open("h_rtd/rtd_loss.tsv").read().split("\n")[1:] if l]
print("harness == trainer (total and generator loss, bitwise):",
      sum(a["loss"] == float(b[1]) and a["gen_loss"] == float(b[2]) for a, b in zip(c, h)), "of", len(c), "steps")
EOF
$PY "$EL/replay_rtd_torch.py" h_rtd --exact --steps 800 --lr 3e-3 --warmup 10 --eval-every 100 --out replay_rtd.tsv
./dump_mlm shards dump_rtd 800 11 8 64 2 64 2 128 rtd 0.5
$PY "$EL/replay_rtd_torch.py" dump_rtd --steps 800 --lr 3e-3 --warmup 10 --eval-every 200

# (1c) an independent PyTorch ELECTRA (own model, masking and sampling) at the rtd test's settings
$PY "$EL/torch_rtd.py" dump --steps 1000
$PY "$EL/torch_rtd.py" dump --steps 3000 --eval-every 750
run rtd_b32_3000 rtd 3000 --batch 32 --lr 1e-3 --warmup 100 --gen-size 0.5 --mask-prob 0.3 --eval-every 750

# (2) an independent PyTorch MLM (nn.TransformerEncoder, own sampling and masking), same size
$PY "$EL/torch_mlm.py" dump --steps 800 --lr 3e-3
$PY "$EL/torch_mlm.py" dump --steps 2000 --lr 3e-3 --eval-every 500
$PY "$EL/torch_mlm.py" dump --steps 2000 --lr 1e-3 --eval-every 500

# (3) learning-rate / batch / mask-rate sweep in selfsup
run lr3e-3 mlm 2000 --batch 8 --lr 3e-3 --warmup 10 --eval-every 500
run lr1e-3 mlm 2000 --batch 8 --lr 1e-3 --warmup 10 --eval-every 500
run lr1e-2 mlm 2000 --batch 8 --lr 1e-2 --warmup 50 --eval-every 500
run b32_lr2e-3_mp3 mlm 600 --batch 32 --lr 2e-3 --warmup 50 --mask-prob 0.3 --eval-every 200
run rtd_b32_lr1e-3_mp3 rtd 1000 --batch 32 --lr 1e-3 --warmup 100 --gen-size 0.5 --mask-prob 0.3 --eval-every 500
