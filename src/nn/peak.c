/* The GEMM peak of this machine: the denominator of model FLOPs utilization.
 * Best of square 1024^3 products on the selected GEMM backend (gemm.h) with
 * the current thread count, repeated for at least 0.3 s: one product takes
 * a few ms on 2 cores, and a handful of them could all land while the
 * second core was still waking from idle or held by another process (seen:
 * 2-thread "peaks" of 150-220 GFLOP/s against ~300, so MFU above 100% in
 * long runs); the best of a longer window finds an unhindered one. */
#include "selfsup/gemm.h"

double ss_gemm_peak_gflops(void) { return ss_gemm_peak(ss_gemm_current(), 1024, 1024, 1024, 0.3); }
