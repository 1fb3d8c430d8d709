/* ELECTRA's discriminator head on every non-padding position:
 *   z = gelu(h @ Wd^T + bd) @ wo^T + bo;  loss = BCE(z, replaced)
 * and its backward into dhidden and the head's parameters. */
#include <math.h>
#include <string.h>

#include "model_internal.h"
#include "selfsup/nn.h"

/* Count the outcome of one prediction in the stats. */
static void tally(ss_disc_stats *s, int pred, int label) {
    s->correct += pred == label;
    s->tp += pred && label;
    s->fp += pred && !label;
    s->fn += !pred && label;
    s->positives += label;
}

ss_status ss_disc_head(ss_model *m, const uint8_t *key_valid, const uint8_t *replaced, float grad_scale,
                       int want_grad, float *probs, ss_disc_stats *stats, ss_error *err) {
    size_t BT = (size_t)m->B * m->T, C = (size_t)m->cfg.d_model, n = 0;
    memset(stats, 0, sizeof *stats);
    if (m->cfg.head != SS_HEAD_DISC) return ss_fail(err, SS_ERR_ARG, "this model has no discriminator head");
    for (size_t i = 0; i < BT; i++) n += !key_valid || key_valid[i];
    if (n == 0) return SS_OK;
    /* per row: h, pre, act, d(act), d(pre), dh (C each) and the logit z */
    ss_status st = ss_head_scratch(m, n * (6 * C + 1), 2 * n, err);
    if (st) return st;
    float *h = m->head_mem, *pre = h + n * C, *act = pre + n * C, *dact = act + n * C;
    float *dpre = dact + n * C, *dh = dpre + n * C, *z = dh + n * C;
    int32_t *rows = m->head_ints;
    uint8_t *lab = (uint8_t *)(m->head_ints + n);
    for (size_t i = 0, k = 0; i < BT; i++) {
        if (key_valid && !key_valid[i]) continue;
        memcpy(h + k * C, m->a.lnf + i * C, C * sizeof(float));
        lab[k] = replaced[i] ? 1 : 0;
        rows[k++] = (int32_t)i;
    }
    int N = (int)n, Ci = (int)C;
    ss_linear_forward(pre, h, m->p.disc_dw, m->p.disc_db, N, Ci, Ci);
    ss_gelu_forward(act, pre, n * C);
    ss_linear_forward(z, act, m->p.disc_ow, m->p.disc_ob, N, Ci, 1);
    for (size_t k = 0; k < n; k++) {
        if (probs) probs[rows[k]] = 1.0f / (1.0f + expf(-z[k]));
        tally(stats, z[k] > 0, lab[k]);
    }
    stats->n = (int64_t)n;
    stats->loss_sum = ss_bce_logits_fused(z, lab, N, grad_scale); /* z becomes dz */
    if (!want_grad) return SS_OK;
    memset(dact, 0, n * C * sizeof(float));
    ss_linear_backward(dact, m->g.disc_ow, m->g.disc_ob, z, act, m->p.disc_ow, N, Ci, 1);
    memset(dpre, 0, n * C * sizeof(float));
    ss_gelu_backward(dpre, pre, dact, n * C);
    memset(dh, 0, n * C * sizeof(float));
    ss_linear_backward(dh, m->g.disc_dw, m->g.disc_db, dpre, h, m->p.disc_dw, N, Ci, Ci);
    for (size_t k = 0; k < n; k++) {
        float *dst = m->a.dhidden + (size_t)rows[k] * C;
        for (size_t j = 0; j < C; j++) dst[j] += dh[k * C + j];
    }
    return SS_OK;
}
