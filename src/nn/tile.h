/* What attention's two tile kernels share (src/nn/tile_bf16.c, tile_f32.c).
 * Each keeps a block of C of up to 4 rows by NV (up to 4) vectors of 16
 * columns in named registers c<row><vector> (an indexed array of vectors in
 * a loop may live in memory) and stores it, masked to the block's n
 * columns, as
 *   C = alpha * accumulator + beta * C      (beta 0: C is not read)
 * The macros expand inside the kernels (functions compiled for AVX-512),
 * where mr (rows of the block), n, c, ldc, alpha, beta and NV are in scope. */
#ifndef SELFSUP_NN_TILE_H
#define SELFSUP_NN_TILE_H

#include <immintrin.h>

/* lanes [0, n) of a 16-lane vector; none for n <= 0 */
static inline __mmask16 ss_lanes(int n) {
    return n <= 0 ? (__mmask16)0 : n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/* The sixteen accumulators c00 .. c33 of a kernel, zeroed. */
#define SS_TILE_ACCUMULATORS()                                                                \
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, \
           c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00

/* One depth step of the kernel's four rows: ROW(r, a<r>), the kernel's own
 * multiply-add of row r (rows past mr read row 0 and are never stored). */
#define SS_TILE_EACH_ROW(ROW)                                                                 \
    do {                                                                                      \
        ROW(0, a0);                                                                           \
        ROW(1, a1);                                                                           \
        ROW(2, a2);                                                                           \
        ROW(3, a3);                                                                           \
    } while (0)

#define SS_TILE_STORE1(r, v)                                                                  \
    do {                                                                                      \
        if (r < mr && 16 * (v) < n) {                                                         \
            __mmask16 m = ss_lanes(n - 16 * (v));                                             \
            float *cp = c + (size_t)(r) * ldc + 16 * (v);                                     \
            __m512 res = _mm512_mul_ps(_mm512_set1_ps(alpha), c##r##v);                       \
            if (beta != 0.0f) res = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m, cp), res); \
            _mm512_mask_storeu_ps(cp, m, res);                                                \
        }                                                                                     \
    } while (0)

#define SS_TILE_STORE(r)                                                                      \
    do {                                                                                      \
        SS_TILE_STORE1(r, 0);                                                                 \
        if (NV > 1) SS_TILE_STORE1(r, 1);                                                     \
        if (NV > 2) SS_TILE_STORE1(r, 2);                                                     \
        if (NV > 3) SS_TILE_STORE1(r, 3);                                                     \
    } while (0)

/* The kernel's four rows of C stored (rows past mr are skipped). */
#define SS_TILE_STORE_ALL()                                                                   \
    do {                                                                                      \
        SS_TILE_STORE(0);                                                                     \
        SS_TILE_STORE(1);                                                                     \
        SS_TILE_STORE(2);                                                                     \
        SS_TILE_STORE(3);                                                                     \
    } while (0)

/* The rows of C[M, nc] four at a time through
 *   kernel(NV, mr, depth, a + r0 sam, sam, sak, b, sb, alpha, beta, c + r0 ldc, ldc, nc)
 * with NV, the 16-column vectors of the nc <= 64 columns, a constant in
 * each call (the kernel inlines per NV; registers stay named). */
#define SS_TILE_ROWS(M, nc, depth, a, sam, sak, b, sb, alpha, beta, c, ldc)                  \
    for (int r0 = 0; r0 < (M); r0 += 4) {                                                     \
        int mr = (M) - r0 < 4 ? (M) - r0 : 4;                                                 \
        switch (((nc) + 15) / 16) {                                                           \
        case 1: kernel(1, mr, depth, (a) + r0 * (sam), sam, sak, b, sb, alpha, beta, (c) + (size_t)r0 * (ldc), ldc, nc); break; \
        case 2: kernel(2, mr, depth, (a) + r0 * (sam), sam, sak, b, sb, alpha, beta, (c) + (size_t)r0 * (ldc), ldc, nc); break; \
        case 3: kernel(3, mr, depth, (a) + r0 * (sam), sam, sak, b, sb, alpha, beta, (c) + (size_t)r0 * (ldc), ldc, nc); break; \
        default: kernel(4, mr, depth, (a) + r0 * (sam), sam, sak, b, sb, alpha, beta, (c) + (size_t)r0 * (ldc), ldc, nc); break; \
        }                                                                                     \
    }

#endif
