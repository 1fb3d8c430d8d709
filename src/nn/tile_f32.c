/* Small fp32 products for the tiles of attention (src/nn/attention.c).
 *
 *   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C     (row-major, as ss_gemm)
 *
 * fp32 inputs, fp32 accumulation, AVX-512 FMAs. Attention issues its
 * products (64 x 64 x head size, from inside its OpenMP tasks) through here
 * with the oneDNN backends when the bf16 tile kernel does not serve them
 * (fp32, or a CPU without AVX512_BF16). oneDNN cannot (a primitive call
 * costs more than such a product, and its buffers serve one caller at a
 * time); OpenBLAS's sgemm packs both operands on every call, and on a CPU
 * its table does not know it falls back to its SSE3 "Prescott" kernels, a
 * quarter of the vector width (eval/RESULTS.md, "attention's fp32 tiles").
 *
 * Each row of C is a run of 16-lane vectors of columns; A's element (m, k)
 * is broadcast to all lanes and multiplied into row k of B:
 *   c[m][n .. n+15] += A(m, k) * B(k, n .. n+15)
 * four rows of C by up to four vectors (64 columns) at a time, sixteen
 * accumulators in registers. A is read in place whatever its layout (a
 * broadcast reads one element wherever it is). B stored [K, N] is read in
 * place (masked loads at the right edge); B stored [N, K] is transposed
 * first, 64 columns by 64 of the depth at a time, into a buffer on the
 * caller's stack (16 KB), so any number of threads may call at once.
 *
 * Each element of C sums its depth in order, k = 0, 1, ..., K - 1, in one
 * fp32 accumulator (a transposed B adds one rounding into C where each 64-deep
 * block ends): the result depends only on the inputs, whatever the thread
 * count. */
#include <immintrin.h>
#include <stdint.h>

#include "nn_internal.h"
#include "tile.h"

#define TB 64 /* columns and depth of a transposed block of B */

#define F32_TARGET __attribute__((target("avx512f")))

int ss_tile_f32_available(void) { return ss_gemv_f32_available(); }

/* C rows [mr] (mr <= 4), columns [n] (n <= 16 NV):
 *   C = alpha * sum_{k < kc} A(m, k) B(k, :) + beta * C
 * with A(m, k) at a[m * sam + k * sak] and B(k, 16 v ..) at b + k * sb + 16 v.
 * The 4 x NV accumulators are named registers (an indexed array of vectors
 * in a loop may live in memory). */
#define TILE_ROW(r, A_PTR)                                                                    \
    do {                                                                                      \
        __m512 av = _mm512_set1_ps((A_PTR)[k * sak]);                                         \
        c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                                           \
        if (NV > 1) c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1);                               \
        if (NV > 2) c##r##2 = _mm512_fmadd_ps(av, b2, c##r##2);                               \
        if (NV > 3) c##r##3 = _mm512_fmadd_ps(av, b3, c##r##3);                               \
    } while (0)

__attribute__((always_inline)) F32_TARGET static inline void
kernel(const int NV, int mr, int kc, const float *a, long sam, long sak, const float *b, long sb, float alpha,
       float beta, float *c, long ldc, int n) {
    const float *a0 = a, *a1 = mr > 1 ? a + sam : a, *a2 = mr > 2 ? a + 2 * sam : a, *a3 = mr > 3 ? a + 3 * sam : a;
    const __mmask16 m0 = ss_lanes(n), m1 = ss_lanes(n - 16), m2 = ss_lanes(n - 32), m3 = ss_lanes(n - 48);
    SS_TILE_ACCUMULATORS();
    for (int k = 0; k < kc; k++) {
        const float *bk = b + k * sb;
        __m512 b0 = _mm512_maskz_loadu_ps(m0, bk);
        __m512 b1 = NV > 1 ? _mm512_maskz_loadu_ps(m1, bk + 16) : b0;
        __m512 b2 = NV > 2 ? _mm512_maskz_loadu_ps(m2, bk + 32) : b0;
        __m512 b3 = NV > 3 ? _mm512_maskz_loadu_ps(m3, bk + 48) : b0;
        SS_TILE_EACH_ROW(TILE_ROW);
    }
    SS_TILE_STORE_ALL();
}
#undef TILE_ROW

/* C[M, nc] (nc <= 64) = alpha * A[M, :kc] B[:kc, :nc] + beta * C, B's row k
 * at b + k * sb. */
F32_TARGET static void panel(int M, int nc, int kc, const float *a, long sam, long sak, const float *b, long sb,
                             float alpha, float beta, float *c, long ldc) {
    SS_TILE_ROWS(M, nc, kc, a, sam, sak, b, sb, alpha, beta, c, ldc);
}

/* dst[k * TB + j] = x[j * ld + k] for j < n, k < kc (B stored [N, K]: its
 * rows are the columns of op(B)): sixteen rows gathered per depth index. */
F32_TARGET static void transpose(float *dst, const float *x, long ld, int n, int kc) {
    const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)ld));
    for (int j = 0; j < n; j += 16) {
        __mmask16 m = ss_lanes(n - j);
        const float *base = x + (size_t)j * ld;
        for (int k = 0; k < kc; k++)
            _mm512_mask_storeu_ps(dst + (size_t)k * TB + j, m,
                                  _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, base + k, 4));
    }
}

F32_TARGET void ss_tile_gemm_f32(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    long sam = ta ? 1 : lda, sak = ta ? lda : 1; /* A(m, k) at A[m * sam + k * sak] */
    for (int n0 = 0; n0 < N; n0 += TB) {
        int nc = N - n0 < TB ? N - n0 : TB;
        if (!tb) { /* B stored [K, N]: row k of op(B) in place */
            panel(M, nc, K, A, sam, sak, B + n0, ldb, alpha, beta, C + n0, ldc);
            continue;
        }
        _Alignas(64) float bt[TB * TB];
        for (int k0 = 0; k0 < K; k0 += TB) {
            int kc = K - k0 < TB ? K - k0 : TB;
            transpose(bt, B + (size_t)n0 * ldb + k0, ldb, nc, kc);
            panel(M, nc, kc, A + k0 * sak, sam, sak, bt, TB, alpha, k0 == 0 ? beta : 1.0f, C + n0, ldc);
        }
    }
}
