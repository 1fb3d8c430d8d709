/* Layer normalization over the channels of each row (eps = 1e-5). */
#include "selfsup/nn.h"

#include <math.h>

#include "nn_internal.h"

/* Channel block of the weight/bias-gradient reduction (see ss_layernorm_backward). */
#define LN_BLOCK 64

// mean = sum(x)/C;  rstd = 1/sqrt(sum((x-mean)^2)/C + eps);  out = (x-mean)*rstd*w + b
// (b NULL: no bias, a model without biases)
void ss_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C) {
    #pragma omp parallel for schedule(static) if ((size_t)N * C >= SS_NN_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *restrict x = inp + (size_t)n * C;
        float *restrict o = out + (size_t)n * C;
        float m = 0.0f;
        #pragma omp simd reduction(+:m)
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        // two-pass variance: no cancellation when |mean| >> std
        float v = 0.0f;
        #pragma omp simd reduction(+:v)
        for (int i = 0; i < C; i++) { float d = x[i] - m; v += d * d; }
        float s = 1.0f / sqrtf(v / C + 1e-5f);
        if (b) {
            #pragma omp simd
            for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i] + b[i];
        } else {
            #pragma omp simd
            for (int i = 0; i < C; i++) o[i] = (x[i] - m) * s * w[i];
        }
        mean[n] = m;
        rstd[n] = s;
    }
}

// dinp += (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) * rstd,  dnorm = dout * w
static void ln_dinp_row(float *restrict dx, const float *restrict dout,
                        const float *restrict x, const float *restrict w,
                        float m, float s, int C) {
    float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
    #pragma omp simd reduction(+:dnorm_mean, dnorm_norm_mean)
    for (int i = 0; i < C; i++) {
        float dnorm = dout[i] * w[i];
        dnorm_mean += dnorm;
        dnorm_norm_mean += dnorm * ((x[i] - m) * s);
    }
    dnorm_mean /= C;
    dnorm_norm_mean /= C;
    #pragma omp simd
    for (int i = 0; i < C; i++) {
        float norm = (x[i] - m) * s;
        dx[i] += (dout[i] * w[i] - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}

// dw[c] += sum_n dout[n,c] * norm[n,c];  db[c] += sum_n dout[n,c] (db NULL: skipped)
// One thread owns a block of channels and walks every row in order, so the
// sums are race-free and identical on any thread count.
static void ln_dparams_block(float *restrict dw, float *restrict db,
                             const float *restrict dout, const float *restrict inp,
                             const float *restrict mean, const float *restrict rstd,
                             int N, int C, int c0, int len) {
    float aw[LN_BLOCK] = {0}, ab[LN_BLOCK] = {0};
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C + c0, *x = inp + (size_t)n * C + c0;
        float m = mean[n], s = rstd[n];
        #pragma omp simd
        for (int i = 0; i < len; i++) {
            aw[i] += d[i] * ((x[i] - m) * s);
            ab[i] += d[i];
        }
    }
    for (int i = 0; i < len; i++) dw[c0 + i] += aw[i];
    if (db)
        for (int i = 0; i < len; i++) db[c0 + i] += ab[i];
}

// rows in parallel for dinp (ln_dinp_row), channel blocks in parallel for dw, db
void ss_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int N, int C) {
    int nblocks = (C + LN_BLOCK - 1) / LN_BLOCK;
    #pragma omp parallel if ((size_t)N * C >= SS_NN_PAR_MIN)
    {
        #pragma omp for schedule(static) nowait
        for (int n = 0; n < N; n++) {
            size_t off = (size_t)n * C;
            ln_dinp_row(dinp + off, dout + off, inp + off, w, mean[n], rstd[n], C);
        }
        #pragma omp for schedule(static)
        for (int blk = 0; blk < nblocks; blk++) {
            int c0 = blk * LN_BLOCK;
            int len = C - c0 < LN_BLOCK ? C - c0 : LN_BLOCK;
            ln_dparams_block(dw, db, dout, inp, mean, rstd, N, C, c0, len);
        }
    }
}
