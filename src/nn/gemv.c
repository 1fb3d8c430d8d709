/* One-row products: a decoding step's matrix-vector products.
 *
 *   c[n] = alpha * sum_k a[k] B[n,k] + beta * c[n]      n < N, k < K
 *
 * B is a weight stored [N, K] row-major (a linear layer's [OC, C] matrix, the
 * tied [V, D] embedding of the LM head), so every output is the dot product
 * of one contiguous row of B with a. Generating one token reads every weight
 * once and does two FLOPs per weight read: the product is bound by memory
 * bandwidth, not arithmetic, and what matters is streaming B at full speed.
 *
 * Kernels, chosen per call from what the CPU has (never from how selfsup was
 * compiled):
 *   f32   AVX-512F: four rows at a time, two 16-wide accumulators per row
 *         (eight independent FMA chains); K's tail by a masked load.
 *   bf16  AVX512_BF16: B as its cached bf16 copy (half the bytes to read) and
 *         a rounded once to bf16; vdpbf16ps multiplies pairs of bf16 and
 *         accumulates in fp32. These are the numerics of the bf16 GEMM
 *         backend (both inputs rounded to nearest even, fp32 accumulation).
 * Without AVX-512 the caller uses OpenBLAS's sgemv.
 *
 * Rows are split over the OpenMP threads in blocks of four; each output is
 * one thread's sum in a fixed order, so the result does not depend on the
 * thread count. */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

#include "nn_internal.h"

/* Below this many weights one thread does the whole product. */
#define GEMV_PAR_MIN 65536

int ss_gemv_f32_available(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx512f") != 0;
    }
    return have;
}

int ss_gemv_bf16_available(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512bf16");
    }
    return have;
}

static inline float finish(float dot, float alpha, float beta, const float *c) {
    return beta == 0.0f ? alpha * dot : alpha * dot + beta * *c;
}

/* ---- f32 ------------------------------------------------------------------------ */

/* The four rows' accumulators are named registers, not arrays: indexed
 * arrays of vectors in a loop the compiler does not unroll live in memory,
 * and every FMA then waits for a store to forward (measured: half the speed
 * of OpenBLAS's sgemv on an AMD EPYC). */
#define ROWS4_F32_STEP(k, x0, x1)                                                        \
    do {                                                                                 \
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + (k)), x0, a0);                         \
        b0 = _mm512_fmadd_ps(_mm512_loadu_ps(r0 + (k) + 16), x1, b0);                    \
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + (k)), x0, a1);                         \
        b1 = _mm512_fmadd_ps(_mm512_loadu_ps(r1 + (k) + 16), x1, b1);                    \
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + (k)), x0, a2);                         \
        b2 = _mm512_fmadd_ps(_mm512_loadu_ps(r2 + (k) + 16), x1, b2);                    \
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + (k)), x0, a3);                         \
        b3 = _mm512_fmadd_ps(_mm512_loadu_ps(r3 + (k) + 16), x1, b3);                    \
    } while (0)

__attribute__((target("avx512f"))) static void rows4_f32(int n0, int rows, int K, float alpha, const float *a,
                                                          const float *B, int ldb, float beta, float *c) {
    const float *r0 = B + (size_t)n0 * ldb, *r1 = rows > 1 ? r0 + ldb : r0, *r2 = rows > 2 ? r0 + 2 * (size_t)ldb : r0,
                *r3 = rows > 3 ? r0 + 3 * (size_t)ldb : r0;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512 x0 = _mm512_loadu_ps(a + k), x1 = _mm512_loadu_ps(a + k + 16);
        ROWS4_F32_STEP(k, x0, x1);
    }
    for (; k < K; k += 16) {
        __mmask16 m = K - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (K - k)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, a + k);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r0 + k), x, a0);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r1 + k), x, a1);
        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r2 + k), x, a2);
        a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, r3 + k), x, a3);
    }
    float d[4] = {_mm512_reduce_add_ps(_mm512_add_ps(a0, b0)), _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)),
                  _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)), _mm512_reduce_add_ps(_mm512_add_ps(a3, b3))};
    for (int i = 0; i < rows; i++) c[n0 + i] = finish(d[i], alpha, beta, c + n0 + i);
}
#undef ROWS4_F32_STEP

void ss_gemv_f32(int N, int K, float alpha, const float *a, const float *B, int ldb, float beta, float *c) {
    int blocks = (N + 3) / 4;
    #pragma omp parallel for schedule(static) if ((size_t)N * K >= GEMV_PAR_MIN && !omp_in_parallel())
    for (int b = 0; b < blocks; b++) {
        int n0 = 4 * b;
        rows4_f32(n0, N - n0 < 4 ? N - n0 : 4, K, alpha, a, B, ldb, beta, c);
    }
}

/* ---- bf16 ----------------------------------------------------------------------- */

/* Rows of B16 are packed ([N, K], leading dimension K); a16 holds a rounded
 * and zero-padded to a multiple of 32 elements. */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void rows4_bf16(int n0, int rows, int K, float alpha,
                                                                      const uint16_t *a16, const uint16_t *B16,
                                                                      float beta, float *c) {
    const uint16_t *r0 = B16 + (size_t)n0 * K, *r1 = rows > 1 ? r0 + K : r0, *r2 = rows > 2 ? r0 + 2 * (size_t)K : r0,
                   *r3 = rows > 3 ? r0 + 3 * (size_t)K : r0;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int k = 0; k < K; k += 32) {
        __mmask32 m = K - k >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << (K - k)) - 1);
        __m512bh x = (__m512bh)_mm512_loadu_si512(a16 + k);
        s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_maskz_loadu_epi16(m, r0 + k), x);
        s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_maskz_loadu_epi16(m, r1 + k), x);
        s2 = _mm512_dpbf16_ps(s2, (__m512bh)_mm512_maskz_loadu_epi16(m, r2 + k), x);
        s3 = _mm512_dpbf16_ps(s3, (__m512bh)_mm512_maskz_loadu_epi16(m, r3 + k), x);
    }
    float d[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1), _mm512_reduce_add_ps(s2),
                  _mm512_reduce_add_ps(s3)};
    for (int i = 0; i < rows; i++) c[n0 + i] = finish(d[i], alpha, beta, c + n0 + i);
}

void ss_gemv_bf16(int N, int K, float alpha, const uint16_t *a16, const uint16_t *B16, float beta, float *c) {
    int blocks = (N + 3) / 4;
    #pragma omp parallel for schedule(static) if ((size_t)N * K >= GEMV_PAR_MIN && !omp_in_parallel())
    for (int b = 0; b < blocks; b++) {
        int n0 = 4 * b;
        rows4_bf16(n0, N - n0 < 4 ? N - n0 : 4, K, alpha, a16, B16, beta, c);
    }
}
