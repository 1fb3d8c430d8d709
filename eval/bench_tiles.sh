#!/usr/bin/env bash
# make bench-tiles: attention's fp32 tiles (the 64 x 64 x head-size products
# inside attention's OpenMP tasks) through selfsup's own AVX-512 kernel
# (src/nn/tile_f32.c) against OpenBLAS's sgemm, side by side in one run
# (eval/bench_ab.sh): bench_train's training steps in fp32 (the faster f32
# GEMM backend by the probe) with --tiles own vs --tiles openblas. Configs S
# (T 128) and M (T 256) of make bench-train, and M at T 1024 (batch 2),
# where attention's share of a step is larger; the clm decoder and the mlm
# encoder. On a CPU its table does not know, OpenBLAS runs its SSE3
# "Prescott" kernels.
cd "$(dirname "$0")/.."
PRECISION=${PRECISION:-fp32} exec eval/bench_ab.sh tiles --tiles own openblas "S" "M" "M --seq 1024 --batch 2"
