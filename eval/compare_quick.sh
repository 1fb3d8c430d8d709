#!/usr/bin/env bash
# The before/after figures of the consolidation in RESULTS.md: generation (warm, 256 tokens, greedy) and
# config-S training, the build of 8b21161 (/work/wt-old/build) against this one, alternating, 3 runs.
# Needs eval/work/compare/run from eval/compare_binaries.sh.
cd "$(dirname "$0")/.."
W=eval/work/compare; D=../shared/data/tinyshakespeare
prompt=$(head -c 60 $D/input.txt)
gen() { "$1/selfsup" generate -m $W/run -p "$prompt" -n 256 --temperature 0 --num-samples 2 --stats -t $2 2>&1 >/dev/null | grep -o 'generated: [0-9]* tokens in [0-9.]* s ([0-9.]*' | tail -1 | grep -o '[0-9.]*$'; }
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-); $(uptime)"
for th in 1 2; do o=(); n=(); for r in 1 2 3; do o+=("$(gen /work/wt-old/build $th)"); n+=("$(gen build $th)"); done; echo "generate $th threads tokens/s: old ${o[*]} | new ${n[*]}"; done
for obj in clm mlm; do o=(); n=(); f=(); for r in 1 2 3; do
 o+=("$(/work/wt-old/build/bench_train S --objective $obj --steps 6 --threads 2 | grep -o '"tokens_per_s":[0-9.]*' | cut -d: -f2)")
 n+=("$(build/bench_train S --objective $obj --steps 6 --threads 2 --gemm openblas-f32 | grep -o '"tokens_per_s":[0-9.]*' | cut -d: -f2)")
 f+=("$(build/bench_train S --objective $obj --steps 6 --threads 2 --precision fp32 | grep -o '"tokens_per_s":[0-9.]*' | cut -d: -f2)")
done; echo "train $obj S tokens/s: old ${o[*]} | new openblas-f32 ${n[*]} | new --precision fp32 (onednn-f32) ${f[*]}"; done
