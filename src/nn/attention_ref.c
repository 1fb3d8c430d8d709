/* Naive multi-head self-attention (reference for src/nn/attention.c): for
 * each (b, h) the full [T,T] probability matrix P is built with plain loops
 * and double accumulators, then used directly. Independent of the tiled
 * kernel on purpose: no online softmax, no lse in the backward, and the
 * softmax gradient uses rowsum(P * dP) instead of rowsum(dO * O). */
#include "selfsup/nn_ref.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const float *qkv;
    const uint8_t *valid;
    int T, C, hs, causal;
} ref_shape;

static int visible(const ref_shape *s, int b, int i, int j) {
    if (s->causal && j > i) return 0;
    return !s->valid || s->valid[(size_t)b * s->T + j];
}

static const float *qkv_row(const ref_shape *s, int b, int t, int part, int h) {
    return s->qkv + ((size_t)b * s->T + t) * 3 * s->C + (size_t)part * s->C +
           (size_t)h * s->hs;
}

/* P[T,T] for (b, h); returns nothing, lse[T] gets each row's log-sum-exp. */
static void ref_probs(float *P, float *lse, const ref_shape *s, int b, int h) {
    int T = s->T, hs = s->hs;
    double scale = 1.0 / sqrt((double)hs);
    for (int i = 0; i < T; i++) {
        float *p = P + (size_t)i * T;
        const float *q = qkv_row(s, b, i, 0, h);
        double mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < T; j++) {
            if (!visible(s, b, i, j)) { p[j] = -INFINITY; continue; }
            const float *k = qkv_row(s, b, j, 1, h);
            double dot = 0.0;
            for (int d = 0; d < hs; d++) dot += (double)q[d] * k[d];
            p[j] = (float)(dot * scale);
            if (p[j] > mx) mx = p[j];
        }
        for (int j = 0; j < T; j++) {
            double e = p[j] == -INFINITY ? 0.0 : exp((double)p[j] - mx);
            p[j] = (float)e;
            sum += e;
        }
        for (int j = 0; j < T; j++) p[j] = sum > 0 ? (float)(p[j] / sum) : 0.0f;
        lse[i] = sum > 0 ? (float)(mx + log(sum)) : -INFINITY;
    }
}

static float *alloc_per_thread(size_t n, ss_error *err) {
    float *buf = malloc((size_t)omp_get_max_threads() * n * sizeof *buf);
    if (!buf)
        ss_fail(err, SS_ERR_NOMEM, "attention reference: cannot allocate %d x %zu floats",
                omp_get_max_threads(), n);
    return buf;
}

ss_status ss_attention_forward_ref(float *out, float *lse, const float *qkv,
                                   const uint8_t *key_valid, int causal,
                                   int B, int T, int C, int NH, ss_error *err) {
    ref_shape s = {qkv, key_valid, T, C, C / NH, causal};
    size_t per = (size_t)T * T;
    float *buf = alloc_per_thread(per, err);
    if (!buf) return SS_ERR_NOMEM;
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH, hs = s.hs;
        float *P = buf + (size_t)omp_get_thread_num() * per;
        ref_probs(P, lse + (size_t)bh * T, &s, b, h);
        for (int i = 0; i < T; i++) {
            float *o = out + ((size_t)b * T + i) * C + (size_t)h * hs;
            for (int d = 0; d < hs; d++) {
                double acc = 0.0;
                for (int j = 0; j < T; j++)
                    acc += (double)P[(size_t)i * T + j] * qkv_row(&s, b, j, 2, h)[d];
                o[d] = (float)acc;
            }
        }
    }
    free(buf);
    return SS_OK;
}

/* Row i of the backward for (b, h): dP_ij = dO_i . v_j into dp[T], then
 * dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik), accumulated into dq_i, dk_j, dv_j. */
static void ref_backward_row(float *dqkv, const float *dout, const float *P,
                             double *dp, const ref_shape *s, int b, int h, int i) {
    int T = s->T, C = s->C, hs = s->hs;
    double scale = 1.0 / sqrt((double)hs), rowdot = 0.0;
    const float *p = P + (size_t)i * T;
    const float *dO = dout + ((size_t)b * T + i) * C + (size_t)h * hs;
    for (int j = 0; j < T; j++) {
        const float *v = qkv_row(s, b, j, 2, h);
        double acc = 0.0;
        for (int d = 0; d < hs; d++) acc += (double)dO[d] * v[d];
        dp[j] = acc;
        rowdot += p[j] * acc;
    }
    float *dq = dqkv + ((size_t)b * T + i) * 3 * C + (size_t)h * hs;
    const float *q = qkv_row(s, b, i, 0, h);
    for (int j = 0; j < T; j++) {
        if (p[j] == 0.0f) continue;
        double ds = p[j] * (dp[j] - rowdot) * scale;
        float *dk = dqkv + ((size_t)b * T + j) * 3 * C + C + (size_t)h * hs;
        float *dv = dk + C;
        const float *k = qkv_row(s, b, j, 1, h);
        for (int d = 0; d < hs; d++) {
            dq[d] += (float)(ds * k[d]);
            dk[d] += (float)(ds * q[d]);
            dv[d] += (float)((double)p[j] * dO[d]);
        }
    }
}

ss_status ss_attention_backward_ref(float *dqkv, const float *dout,
                                    const float *qkv, const uint8_t *key_valid,
                                    int causal, int B, int T, int C, int NH,
                                    ss_error *err) {
    ref_shape s = {qkv, key_valid, T, C, C / NH, causal};
    /* P[T,T], lse[T], dp[T] doubles; T*T + T is even, so dp is 8-aligned. */
    size_t per = (size_t)T * T + 3 * (size_t)T;
    float *buf = alloc_per_thread(per, err);
    if (!buf) return SS_ERR_NOMEM;
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < B * NH; bh++) {
        int b = bh / NH, h = bh % NH;
        float *P = buf + (size_t)omp_get_thread_num() * per;
        float *lse = P + (size_t)T * T;
        double *dp = (double *)(void *)(lse + T);
        ref_probs(P, lse, &s, b, h);
        for (int i = 0; i < T; i++) ref_backward_row(dqkv, dout, P, dp, &s, b, h, i);
    }
    free(buf);
    return SS_OK;
}
