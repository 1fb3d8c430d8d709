#!/usr/bin/env bash
# make bench-bias: training steps of a model with and without the body's
# biases (pretrain --no-bias, Cramming's lever), side by side in one run
# (eval/bench_ab.sh): bench_train --bias 0 vs --bias 1 (the ratio: without
# / with), everything else the same (the GEMM backend by the probe,
# selfsup's own tiles). Configs S (T 128) and M (T 256) of make
# bench-train, the clm decoder and the mlm encoder.
cd "$(dirname "$0")/.."
exec eval/bench_ab.sh bias --bias 0 1 S M
