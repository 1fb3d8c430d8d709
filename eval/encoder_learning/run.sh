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
run() { # NAME OBJ STEPS ARGS...: a selfsup run (on $DATA, default shards), val metrics printed
  local name=$1 obj=$2 steps=$3; shift 3
  $S pretrain --objective "$obj" --data "${DATA:-shards}" --out "sw/$name" $model --steps "$steps" --eval-tokens 16384 \
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

# (4) ELECTRA variants (README section 4): rtd test settings with one change each
rtd_test=(--batch 32 --lr 1e-3 --warmup 100 --gen-size 0.5 --mask-prob 0.3 --eval-every 250)
run rtd_lr3e-3 rtd 1000 "${rtd_test[@]}" --lr 3e-3
run rtd_dw10 rtd 1000 "${rtd_test[@]}" --disc-weight 10
run rtd_g25 rtd 1000 "${rtd_test[@]}" --gen-size 0.25
run rtd_m15 rtd 1000 "${rtd_test[@]}" --mask-prob 0.15
# ... on the whole of tinyshakespeare (5.7x the text)
$S tokenizer train --vocab-size 512 --threads 1 --out full_tok.json "${SELFSUP_DATA_MIRROR:-$ROOT/../shared/data}/tinyshakespeare/input.txt"
$S data prepare --tokenizer full_tok.json --out full_shards --doc-boundary blank --val-fraction 0.1 --threads 1 \
  "${SELFSUP_DATA_MIRROR:-$ROOT/../shared/data}/tinyshakespeare/input.txt"
DATA=full_shards run rtd_full rtd 1000 "${rtd_test[@]}"
DATA=full_shards run rtd_full_m15 rtd 1000 "${rtd_test[@]}" --mask-prob 0.15

# (5) a synthetic text whose masked words are fixed by their neighbours: 3,000
# documents counting cyclically through the NATO alphabet from a random start
$PY - <<'PY'
import random
r = random.Random(5)
w = ("alfa bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa "
     "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()
with open("syn.txt", "w") as f:
    for _ in range(3000):
        s, n = r.randrange(26), r.randrange(20, 50)
        f.write(" ".join(w[(s + i) % 26] for i in range(n)) + "\n\n")
PY
$S tokenizer train --vocab-size 512 --threads 1 --out syn_tok.json syn.txt
$S data prepare --tokenizer syn_tok.json --out syn_shards --doc-boundary blank --val-fraction 0.1 --threads 1 syn.txt
syn=(--batch 32 --lr 1e-3 --warmup 100 --mask-prob 0.15 --eval-every 300)
DATA=syn_shards run syn_mlm mlm 1500 "${syn[@]}"
DATA=syn_shards run syn_rtd rtd 1500 "${syn[@]}" --gen-size 0.5
DATA=syn_shards run syn_rtd_dw1 rtd 1500 "${syn[@]}" --gen-size 0.5 --disc-weight 1
./dump_mlm syn_shards dump_syn 10 11 8 64 2 64 2 128
$PY "$EL/torch_rtd.py" dump_syn --steps 1500 --eval-every 300 --mask-prob 0.15

# (6) the counting text with 30% masking, the rest as in the rtd test: the
# discriminator's accuracy clears its base rate (val_disc_base in metrics.jsonl);
# tests/test_train_encoder.c (test_rtd_beats_base_rate) runs the 1,500-step case
syn30=(--batch 32 --lr 1e-3 --warmup 100 --mask-prob 0.3 --gen-size 0.5 --eval-every 250)
for seed in 11 12 13; do DATA=syn_shards run syn_rtd_m30_s$seed rtd 1500 "${syn30[@]}" --seed $seed; done
DATA=syn_shards run syn_rtd_m30_1000 rtd 1000 "${syn30[@]}"
DATA=syn_shards run syn_rtd_m30_6000 rtd 6000 "${syn30[@]}" --eval-every 500
