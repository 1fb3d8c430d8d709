/* Pooling: one vector of a sequence from its hidden states, as a weighted
 * sum over the valid (non-padding) positions t_1 < ... < t_n:
 *   cls    out = h[t_1]   (position 0, an encoder's [CLS], in what selfsup makes)
 *   last   out = h[t_n]
 *   mean   out = sum_k h[t_k] / n
 *   wmean  out = sum_k k h[t_k] / (n (n + 1) / 2)
 * wmean is the position-weighted mean of SGPT (Muennighoff 2022): in a
 * decoder a later position has seen more of the text, so it weighs more.
 * The backward adds each position's weight times d(out) to d(h). One
 * implementation for the classification head (training and classify) and
 * for embed, so a classifier's embedding is what its head reads. */
#include "selfsup/model.h"

/* The weight of the k-th valid position (k = 1..n) and the divisor. */
static double coef(ss_pooling how, int k, int n) {
    switch (how) {
    case SS_POOL_CLS: return k == 1;
    case SS_POOL_LAST: return k == n;
    case SS_POOL_MEAN: return 1.0;
    default: return (double)k;
    }
}

static double denom(ss_pooling how, int n) {
    return how == SS_POOL_MEAN ? (double)n : how == SS_POOL_WMEAN ? 0.5 * (double)n * (double)(n + 1) : 1.0;
}

static int count_valid(const uint8_t *valid, int T) {
    int n = 0;
    for (int t = 0; t < T; t++) n += !valid || valid[t];
    return n;
}

int ss_pool_forward(ss_pooling how, const float *h, const uint8_t *valid, int T, int C, float *out) {
    int n = count_valid(valid, T);
    if (n == 0) return 0;
    double d = denom(how, n);
    for (int j = 0; j < C; j++) {
        double s = 0;
        for (int t = 0, k = 0; t < T; t++) {
            if (valid && !valid[t]) continue;
            double w = coef(how, ++k, n);
            if (w != 0.0) s += w * (double)h[(size_t)t * C + j];
        }
        out[j] = (float)(s / d);
    }
    return n;
}

void ss_pool_backward(ss_pooling how, const float *dout, const uint8_t *valid, int T, int C, float *dh) {
    int n = count_valid(valid, T);
    if (n == 0) return;
    double d = denom(how, n);
    for (int t = 0, k = 0; t < T; t++) {
        if (valid && !valid[t]) continue;
        double w = coef(how, ++k, n);
        if (w == 0.0) continue;
        float s = (float)(w / d);
        float *g = dh + (size_t)t * C;
        for (int j = 0; j < C; j++) g[j] += s * dout[j];
    }
}
