/* Inverted dropout with a stateless mask: element i is kept iff a uniform
 * number derived from splitmix64(seed, i) is >= p. Forward and backward
 * recompute the same mask from (seed, i), so nothing is stored, and the mask
 * does not depend on the thread count. The _at forms number the elements
 * from i0: a slice of a larger array (a data-parallel shard of a batch)
 * gets the mask the whole array would. */
#include "selfsup/nn.h"

#include <string.h>

#include "nn_internal.h"

// h = splitmix64 output number i of the stream seeded with `seed`
static inline uint64_t mix(uint64_t seed, uint64_t i) {
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// keep(i) = (top 24 bits of h) * 2^-24 >= p,  a uniform on [0,1) with step 2^-24
static inline float keep_scale(uint64_t seed, size_t i, float p, float scale) {
    float u = (float)(mix(seed, i) >> 40) * 0x1p-24f;
    return u >= p ? scale : 0.0f;
}

// out = inp * keep(i0 + i) / (1-p)   (p <= 0: copy; p >= 1: all dropped)
void ss_dropout_forward_at(float *out, const float *inp, size_t n, float p, uint64_t seed, size_t i0) {
    if (p <= 0.0f) { if (out != inp) memmove(out, inp, n * sizeof *out); return; }
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    #pragma omp parallel for simd schedule(static) if (parallel: n >= SS_NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * keep_scale(seed, i0 + i, p, scale);
}

// dinp += dout * keep(i0 + i) / (1-p)
void ss_dropout_backward_at(float *restrict dinp, const float *restrict dout, size_t n, float p, uint64_t seed,
                            size_t i0) {
    if (p <= 0.0f) {
        #pragma omp parallel for simd schedule(static) if (parallel: n >= SS_NN_PAR_MIN)
        for (size_t i = 0; i < n; i++) dinp[i] += dout[i];
        return;
    }
    float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    #pragma omp parallel for simd schedule(static) if (parallel: n >= SS_NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * keep_scale(seed, i0 + i, p, scale);
}

void ss_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed) {
    ss_dropout_forward_at(out, inp, n, p, seed, 0);
}

void ss_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed) {
    ss_dropout_backward_at(dinp, dout, n, p, seed, 0);
}
