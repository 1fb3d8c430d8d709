/* Small bf16 products for the tiles of attention (src/nn/attention.c).
 *
 *   C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C     (row-major, as ss_gemm)
 *
 * with both inputs rounded to bf16 (round to nearest even) and the products
 * accumulated in fp32: the numerics of the bf16 GEMM backend. Attention
 * issues its products (64 x 64 x head size, from inside its OpenMP tasks)
 * through here when the bf16 backend is selected on a CPU with AVX512_BF16;
 * oneDNN cannot serve them (a primitive call costs more than such a product,
 * and its buffers serve one caller at a time) and OpenBLAS computes them in
 * fp32 at a third of the speed.
 *
 * vdpbf16ps multiplies pairs of bf16 and adds both products to one fp32 lane:
 *   c[n] += a[2k] b[2k][n] + a[2k+1] b[2k+1][n]      (16 lanes n)
 * so B is packed "pair-interleaved": for each pair kk of the depth, the 16
 * columns' two values side by side (Bp[kk][n][2]), and A's pair (m, kk) is
 * broadcast to all lanes. The operands are packed in blocks of 64 x 64 into
 * buffers on the caller's stack (16 KB), so any number of threads may call
 * at once, and the result depends only on the inputs: each element of C
 * sums its depth in a fixed order (pairs in order within a block, blocks in
 * order), whatever the thread count.
 *
 * Packing, from fp32 to bf16, by where the depth index k runs in memory:
 *   rows   X[r][k] contiguous in k:  pair (r, kk) = the 32 bits at 2kk of row r
 *   pairs  X[k][r] contiguous in r:  rows 2kk and 2kk+1 interleaved
 * B stored [K, N] (not transposed) packs by "pairs"; B stored [N, K] packs
 * by "rows" and is then transposed as 32-bit pairs (a gather per 16). A
 * stored [M, K] packs by "rows", A stored [K, M] by "pairs"; the kernel
 * reads A's pairs with either layout through two strides. Odd depths are
 * padded with a zero. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "nn_internal.h"
#include "tile.h"

#define TB 64 /* block of the packed operands: rows, columns and depth */
#define TP (TB / 2)

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

int ss_tile_bf16_available(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = ss_gemv_bf16_available() && __builtin_cpu_supports("avx512vl");
    }
    return have;
}

/* Row r (r < rows) of X (element (r, k) at x[r * ld + k], k < kc) as bf16
 * pairs: dst[r * dstride + kk], kk < (kc + 1) / 2, an odd depth's last pair
 * padded with zero. */
BF16_TARGET static void pack_rows(uint32_t *dst, int dstride, const float *x, long ld, int rows, int kc) {
    for (int r = 0; r < rows; r++) {
        const float *s = x + r * ld;
        uint16_t *d = (uint16_t *)(dst + (size_t)r * dstride);
        for (int k = 0; k < kc; k += 16) {
            __mmask16 m = ss_lanes(kc - k);
            __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + k));
            /* the pad lane of an odd depth: the zero the masked load gave */
            __mmask16 st = ss_lanes(kc - k + 1 < 16 ? kc - k + 1 : 16);
            _mm256_mask_storeu_epi16(d + k, st, (__m256i)h);
        }
    }
}

/* Rows 2kk and 2kk+1 of X (element (k, r) at x[k * ld + r], k < kc, r < n)
 * interleaved: dst[kk * dstride + r] holds (X[2kk][r], X[2kk+1][r]); columns
 * n .. round_up(n, 16) are zero. */
BF16_TARGET static void pack_pairs(uint32_t *dst, int dstride, const float *x, long ld, int kc, int n) {
    /* cvtne2ps(hi, lo) gives lo's 16 values then hi's; interleave them */
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                         22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int kk = 0; 2 * kk < kc; kk++) {
        const float *lo = x + 2 * kk * ld, *hi = lo + ld;
        int has_hi = 2 * kk + 1 < kc;
        for (int r = 0; r < n; r += 16) {
            __mmask16 m = ss_lanes(n - r);
            __m512 l = _mm512_maskz_loadu_ps(m, lo + r);
            __m512 h = has_hi ? _mm512_maskz_loadu_ps(m, hi + r) : _mm512_setzero_ps();
            __m512i v = (__m512i)_mm512_cvtne2ps_pbh(h, l);
            _mm512_storeu_si512(dst + (size_t)kk * dstride + r, _mm512_permutexvar_epi16(idx, v));
        }
    }
}

/* B stored [N, K] (element (k, n) at x[n * ld + k]): rows packed, then the
 * 32-bit pairs transposed into dst[kk * dstride + n] (columns n .. round_up
 * (n, 16) zero). */
BF16_TARGET static void pack_pairs_t(uint32_t *dst, int dstride, const float *x, long ld, int kc, int n) {
    _Alignas(64) uint32_t rows[TB * TP];
    int kp = (kc + 1) / 2;
    pack_rows(rows, TP, x, ld, n, kc);
    const __m512i step = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(TP));
    for (int r = 0; r < n; r += 16) {
        __mmask16 m = ss_lanes(n - r);
        const uint32_t *base = rows + (size_t)r * TP;
        for (int kk = 0; kk < kp; kk++) {
            __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, step, base + kk, 4);
            _mm512_storeu_si512(dst + (size_t)kk * dstride + r, v);
        }
    }
}

/* C rows [mr] (mr <= 4), columns [16 NV] masked to n, of
 *   alpha * sum_kk A(m, kk) . Bp[kk] + beta * C
 * A's pair (m, kk) at a[m * sam + kk * sak], Bp[kk] at b + kk * sb (16 NV
 * pairs). The 4 x NV accumulators are named registers (an indexed array of
 * vectors in a loop may live in memory). */
#define TILE_ROW(r, A_PTR)                                                                    \
    do {                                                                                      \
        __m512bh av = (__m512bh)_mm512_set1_epi32((int)(A_PTR)[kk * sak]);                    \
        c##r##0 = _mm512_dpbf16_ps(c##r##0, av, b0);                                          \
        if (NV > 1) c##r##1 = _mm512_dpbf16_ps(c##r##1, av, b1);                              \
        if (NV > 2) c##r##2 = _mm512_dpbf16_ps(c##r##2, av, b2);                              \
        if (NV > 3) c##r##3 = _mm512_dpbf16_ps(c##r##3, av, b3);                              \
    } while (0)

__attribute__((always_inline)) BF16_TARGET static inline void
kernel(const int NV, int mr, int kp, const uint32_t *a, long sam, long sak, const uint32_t *b, long sb, float alpha,
       float beta, float *c, long ldc, int n) {
    const uint32_t *a0 = a, *a1 = mr > 1 ? a + sam : a, *a2 = mr > 2 ? a + 2 * sam : a, *a3 = mr > 3 ? a + 3 * sam : a;
    SS_TILE_ACCUMULATORS();
    for (int kk = 0; kk < kp; kk++) {
        const uint32_t *bk = b + kk * sb;
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(bk);
        __m512bh b1 = NV > 1 ? (__m512bh)_mm512_loadu_si512(bk + 16) : b0;
        __m512bh b2 = NV > 2 ? (__m512bh)_mm512_loadu_si512(bk + 32) : b0;
        __m512bh b3 = NV > 3 ? (__m512bh)_mm512_loadu_si512(bk + 48) : b0;
        SS_TILE_EACH_ROW(TILE_ROW);
    }
    SS_TILE_STORE_ALL();
}
#undef TILE_ROW

/* One block: C[mc, nc] (+)= over a depth block of kp pairs. */
BF16_TARGET static void block(int mc, int nc, int kp, const uint32_t *a, long sam, long sak, const uint32_t *b,
                              long sb, float alpha, float beta, float *c, long ldc) {
    SS_TILE_ROWS(mc, nc, kp, a, sam, sak, b, sb, alpha, beta, c, ldc);
}

BF16_TARGET void ss_tile_gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                                   const float *B, int ldb, float beta, float *C, int ldc) {
    _Alignas(64) uint32_t ap[TB * TP], bp[TP * TB];
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    for (int m0 = 0; m0 < M; m0 += TB) {
        int mc = M - m0 < TB ? M - m0 : TB;
        for (int n0 = 0; n0 < N; n0 += TB) {
            int nc = N - n0 < TB ? N - n0 : TB, sb = (nc + 15) / 16 * 16;
            for (int k0 = 0; k0 < K; k0 += TB) {
                int kc = K - k0 < TB ? K - k0 : TB, kp = (kc + 1) / 2;
                long sam, sak;
                if (ta) { /* A stored [K, M] */
                    pack_pairs(ap, TB, A + (size_t)k0 * lda + m0, lda, kc, mc);
                    sam = 1, sak = TB;
                } else {
                    pack_rows(ap, TP, A + (size_t)m0 * lda + k0, lda, mc, kc);
                    sam = TP, sak = 1;
                }
                if (tb) /* B stored [N, K] */
                    pack_pairs_t(bp, sb, B + (size_t)n0 * ldb + k0, ldb, kc, nc);
                else
                    pack_pairs(bp, sb, B + (size_t)k0 * ldb + n0, ldb, kc, nc);
                block(mc, nc, kp, ap, sam, sak, bp, sb, alpha, k0 == 0 ? beta : 1.0f, C + (size_t)m0 * ldc + n0, ldc);
            }
        }
    }
}
