/* Private helpers shared by the element-wise kernels in src/nn/. */
#ifndef SELFSUP_NN_INTERNAL_H
#define SELFSUP_NN_INTERNAL_H

#include <omp.h>
#include <stdint.h>
#include <string.h>

/* Below this many elements a kernel runs on one thread: forking a team costs
 * a few microseconds, more than the work itself. */
#define SS_NN_PAR_MIN 32768

/* Column sums (bias gradients) run over column blocks of at most this many
 * channels: one thread owns a block and walks all rows in order, so each
 * column is summed in row order whatever the blocking or thread count, and
 * the block's accumulators (on the stack) stay in L1. */
#define SS_COLSUM_MAX 512

/* The column-block width for F columns of N rows: one block per thread
 * (so each thread's row segments are long, which the prefetcher likes), but
 * none wider than SS_COLSUM_MAX; a multiple of 16 columns when split. */
static inline int ss_colsum_width(int N, int F) {
    int nb = (size_t)N * F >= SS_NN_PAR_MIN ? omp_get_max_threads() : 1;
    if (nb > F / 16) nb = F / 16;
    if (nb < 1) nb = 1;
    int width = (F + nb - 1) / nb;
    if (nb > 1) width = (width + 15) / 16 * 16;
    return width < SS_COLSUM_MAX ? width : SS_COLSUM_MAX;
}

/* One-row products c[n] = alpha a . B[n,:] + beta c[n] with B [N, K]
 * row-major (src/nn/gemv.c): selfsup's own AVX-512 kernels for a decoding
 * step, used by the GEMM layer when the CPU has the instructions (the
 * *_available checks). The bf16 one takes a rounded to bf16 and zero-padded
 * to a multiple of 32, and B packed in bf16 with leading dimension K. */
int ss_gemv_f32_available(void);
int ss_gemv_bf16_available(void);
void ss_gemv_f32(int N, int K, float alpha, const float *a, const float *B, int ldb, float beta, float *c);
void ss_gemv_bf16(int N, int K, float alpha, const uint16_t *a16, const uint16_t *B16, float beta, float *c);

/* Products of attention's tiles in bf16 numerics (src/nn/tile_bf16.c):
 * the arguments of ss_gemm; inputs rounded to bf16, fp32 accumulation,
 * packed on the caller's stack (any number of threads at once), the same
 * bits whatever the thread count. Only on CPUs where available says so
 * (AVX-512 with AVX512_BF16). */
int ss_tile_bf16_available(void);
void ss_tile_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc);

/* Products of attention's tiles in fp32 (src/nn/tile_f32.c): the arguments
 * of ss_gemm, fp32 FMAs, any number of threads at once, each element's depth
 * summed in order (the same bits whatever the thread count). Only on CPUs
 * where available says so (AVX-512F). */
int ss_tile_f32_available(void);
void ss_tile_gemm_f32(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc);

/* exp(x) in fp32, written so that `#pragma omp simd` loops vectorize it
 * (glibc's expf only vectorizes under -ffast-math):
 *   x = n ln2 + r, |r| <= ln2/2;  e^r ~ 1 + r + r^2 P(r)  (Cephes expf
 *   polynomial);  2^n is built in the exponent bits.
 * Relative error ~2 ulp. x is clamped to [-87, 88] so the result is always a
 * finite normal float: callers rely on exp(-large) being a tiny positive
 * number, never inf or a denormal. A NaN x gives NaN. */
static inline float ss_vexpf(float x) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float n = (x * 1.44269504088896341f + shifter) - shifter;
    float r = x - n * 0.693359375f;   /* ln2 split in two for exact range reduction */
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float er = p * r * r + r + 1.0f;
    n = n == n ? n : 0.0f; /* NaN in, NaN out (through er), without converting NaN to an int (undefined) */
    int32_t bits = ((int32_t)n + 127) * (1 << 23);
    float two_n;
    memcpy(&two_n, &bits, sizeof two_n);
    return er * two_n;
}

#endif
