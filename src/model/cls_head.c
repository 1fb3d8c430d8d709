/* Sequence-classification head: one vector per sequence, then a classifier.
 *   p_b = pool(h[b])      cls: h[b,0]; last: h[b,t] at the last valid t;
 *                         mean: sum over valid t of h[b,t] / n_valid;
 *                         wmean: the position-weighted mean (src/model/pool.c)
 *   a_b = pooler ? tanh(p_b Wp^T + bp) : p_b
 *   u_b = dropout(a_b)    (training only, its own dropout site)
 *   z_b = u_b Wo^T + bo   [K logits]
 *   loss_b = w[y_b] * (logsumexp(z_b) - z_b[y_b])
 * The backward runs the same layers in reverse: dz_b = w[y_b] * scale *
 * (softmax(z_b) - onehot(y_b)), and d(p_b) goes back to the pooled positions
 * of dhidden, each with its pooling weight (mean: 1 / n_valid). */
#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "selfsup/nn.h"

/* Views of the head scratch for B sequences of width C and K classes. */
typedef struct {
    float *pooled, *act, *u, *z, *loss; /* [B,C] x3, [B,K], [B] */
    float *du, *dd, *dpre, *dp;         /* [B,C] each */
    int32_t *targets;                   /* [B] target or -1 */
} cls_bufs;

static ss_status scratch(ss_model *m, cls_bufs *b, ss_error *err) {
    size_t B = (size_t)m->B, C = (size_t)m->cfg.d_model, K = (size_t)m->cfg.n_classes;
    ss_status st = ss_head_scratch(m, 7 * B * C + B * K + B, B, err);
    if (st) return st;
    float *p = m->head_mem;
    b->pooled = p; p += B * C;
    b->act = p; p += B * C;
    b->u = p; p += B * C;
    b->du = p; p += B * C;
    b->dd = p; p += B * C;
    b->dpre = p; p += B * C;
    b->dp = p; p += B * C;
    b->z = p; p += B * K;
    b->loss = p;
    b->targets = m->head_ints;
    return SS_OK;
}

/* pooled[b] from the hidden states of the last forward. */
static ss_status pool(ss_model *m, const uint8_t *kv, cls_bufs *b, ss_error *err) {
    int B = m->B, T = m->T, C = m->cfg.d_model;
    for (int r = 0; r < B; r++) {
        const uint8_t *v = kv ? kv + (size_t)r * T : NULL;
        if (m->cfg.pooling == SS_POOL_CLS && v && !v[0])
            return ss_fail(err, SS_ERR_ARG, "sequence %d: position 0 (read by 'cls' pooling) is padding", r);
        if (!ss_pool_forward(m->cfg.pooling, m->a.lnf + (size_t)r * T * C, v, T, C, b->pooled + (size_t)r * C))
            return ss_fail(err, SS_ERR_ARG, "sequence %d of the batch has no valid position to pool", r);
    }
    return SS_OK;
}

/* dhidden at the pooled positions += their weight x dp. */
static void unpool(ss_model *m, const uint8_t *kv, const cls_bufs *b) {
    int B = m->B, T = m->T, C = m->cfg.d_model;
    for (int r = 0; r < B; r++)
        ss_pool_backward(m->cfg.pooling, b->dp + (size_t)r * C, kv ? kv + (size_t)r * T : NULL, T, C,
                         m->a.dhidden + (size_t)r * T * C);
}

static void softmax_rows(float *probs, const float *z, int B, int K) {
    for (int r = 0; r < B; r++) {
        const float *x = z + (size_t)r * K;
        float *p = probs + (size_t)r * K, mx = x[0];
        for (int k = 1; k < K; k++) mx = fmaxf(mx, x[k]);
        double sum = 0;
        for (int k = 0; k < K; k++) sum += (double)(p[k] = expf(x[k] - mx));
        for (int k = 0; k < K; k++) p[k] = (float)(p[k] / sum);
    }
}

static ss_status check_inputs(const ss_model *m, const int32_t *labels, const float *cw, int want_grad,
                              ss_error *err) {
    int K = m->cfg.n_classes;
    if (m->cfg.head != SS_HEAD_CLS) return ss_fail(err, SS_ERR_ARG, "this model has no classification head");
    if (m->B < 1) return ss_fail(err, SS_ERR_ARG, "the classification head needs a body forward first");
    if (want_grad && !m->train)
        return ss_fail(err, SS_ERR_ARG, "classification head gradients need a training body forward (train != 0)");
    for (int r = 0; labels && r < m->B; r++)
        if (labels[r] >= K)
            return ss_fail(err, SS_ERR_RANGE, "label %d of sequence %d is outside the %d classes", labels[r], r, K);
    for (int k = 0; cw && k < K; k++)
        if (!(cw[k] >= 0.0f && isfinite(cw[k])))
            return ss_fail(err, SS_ERR_ARG, "class weight %d is %g: weights must be finite and >= 0", k,
                           (double)cw[k]);
    return SS_OK;
}

ss_status ss_cls_head(ss_model *m, const uint8_t *key_valid, const int32_t *labels, const float *class_weights,
                      float grad_scale, int want_grad, float *probs, ss_cls_stats *stats, ss_error *err) {
    memset(stats, 0, sizeof *stats);
    ss_status st = check_inputs(m, labels, class_weights, want_grad, err);
    cls_bufs b;
    if (!st) st = scratch(m, &b, err);
    if (!st) st = pool(m, key_valid, &b, err);
    if (st) return st;
    const ss_params *p = &m->p, *g = &m->g;
    int B = m->B, C = m->cfg.d_model, K = m->cfg.n_classes;
    size_t BC = (size_t)B * C;
    float drop = m->train ? m->cfg.dropout : 0.0f;
    uint64_t seed = ss_dropout_site_seed(m->dropout_seed, 2 * m->cfg.n_layer + 1);

    const float *a = b.pooled, *u;
    if (m->cfg.pooler) {
        ss_linear_forward(b.act, b.pooled, p->cls_pw, p->cls_pb, B, C, C);
        ss_tanh_forward(b.act, b.act, BC);
        a = b.act;
    }
    u = a;
    if (drop > 0.0f) {
        ss_dropout_forward_at(b.u, a, BC, drop, seed, m->row0 * C);
        u = b.u;
    }
    ss_linear_forward(b.z, u, p->cls_ow, p->cls_ob, B, C, K);
    if (probs) softmax_rows(probs, b.z, B, K);

    /* dz = (softmax - onehot) * grad_scale per labelled row, then * w[y] */
    for (int r = 0; r < B; r++) b.targets[r] = labels && labels[r] >= 0 ? labels[r] : -1;
    ss_crossentropy_fused(b.z, b.loss, b.targets, B, K, grad_scale, &stats->correct);
    for (int r = 0; r < B; r++) {
        if (b.targets[r] < 0) continue;
        float w = class_weights ? class_weights[b.targets[r]] : 1.0f;
        stats->loss_sum += (double)w * b.loss[r];
        stats->weight_sum += w;
        stats->n++;
        for (int k = 0; k < K; k++) b.z[(size_t)r * K + k] *= w;
    }
    if (!want_grad) return SS_OK;

    ss_linear_backward_set(b.du, g->cls_ow, g->cls_ob, b.z, u, p->cls_ow, B, C, K);
    const float *dd = b.du;
    if (drop > 0.0f) {
        memset(b.dd, 0, BC * sizeof(float));
        ss_dropout_backward_at(b.dd, b.du, BC, drop, seed, m->row0 * C);
        dd = b.dd;
    }
    if (m->cfg.pooler) {
        memset(b.dpre, 0, BC * sizeof(float));
        ss_tanh_backward(b.dpre, b.act, dd, BC);
        ss_linear_backward_set(b.dp, g->cls_pw, g->cls_pb, b.dpre, b.pooled, p->cls_pw, B, C, C);
    } else {
        memcpy(b.dp, dd, BC * sizeof(float));
    }
    unpool(m, key_valid, &b);
    return SS_OK;
}
