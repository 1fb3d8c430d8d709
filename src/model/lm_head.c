/* Tied LM head with softmax cross-entropy, only on positions that have a
 * target: rows are gathered first, then processed in chunks so the logits of
 * at most one chunk ([rows, V]) exist at a time:
 *   logits = h @ wte^T;  loss = logsumexp(logits) - logits[target]
 *   dh += dlogits @ wte;  dwte += dlogits^T @ h                          */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "selfsup/nn.h"

/* Rows per chunk: keep the logits chunk around 8 MB (L2/L3-friendly sgemm
 * output, small peak memory) but at least 32 rows for sgemm efficiency. */
static size_t chunk_rows(int V) {
    size_t r = ((size_t)1 << 21) / (size_t)V;
    return r < 32 ? 32 : r;
}

size_t ss_lm_head_bytes(const ss_model_config *c, size_t rows) {
    size_t chunk = chunk_rows(c->vocab_size);
    return rows * (2 * (size_t)c->d_model * sizeof(float) + 2 * sizeof(int32_t)) +
           chunk * ((size_t)c->vocab_size + 1) * sizeof(float);
}

static ss_status ensure_head(ss_model *m, size_t rows, ss_error *err) {
    size_t C = (size_t)m->cfg.d_model, V = (size_t)m->cfg.vocab_size;
    size_t chunk = chunk_rows((int)V);
    if (rows <= m->head_cap_rows && m->head_logits) return SS_OK;
    free(m->head_h); free(m->head_dh); free(m->head_targets); free(m->head_rows);
    free(m->head_logits); free(m->head_loss);
    m->head_h = malloc(rows * C * sizeof(float));
    m->head_dh = malloc(rows * C * sizeof(float));
    m->head_targets = malloc(rows * sizeof(int32_t));
    m->head_rows = malloc(rows * sizeof(int32_t));
    m->head_logits = malloc(chunk * V * sizeof(float));
    m->head_loss = malloc(chunk * sizeof(float));
    if (!m->head_h || !m->head_dh || !m->head_targets || !m->head_rows || !m->head_logits || !m->head_loss) {
        m->head_cap_rows = 0;
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for the LM head (%zu rows)", rows);
    }
    m->head_cap_rows = rows;
    return SS_OK;
}

ss_status ss_lm_head(ss_model *m, const int32_t *targets, float grad_scale, int want_grad,
                     ss_loss_stats *stats, ss_error *err) {
    size_t BT = (size_t)m->B * m->T, C = (size_t)m->cfg.d_model;
    int V = m->cfg.vocab_size;
    size_t nv = 0;
    for (size_t i = 0; i < BT; i++) {
        if (targets[i] >= V)
            return ss_fail(err, SS_ERR_RANGE, "target id %d at position %zu is outside the vocabulary (size %d)",
                           targets[i], i, V);
        nv += targets[i] >= 0;
    }
    memset(stats, 0, sizeof *stats);
    if (nv == 0) return SS_OK;
    ss_status st = ensure_head(m, nv, err);
    if (st) return st;
    for (size_t i = 0, k = 0; i < BT; i++) {
        if (targets[i] < 0) continue;
        memcpy(m->head_h + k * C, m->a.lnf + i * C, C * sizeof(float));
        m->head_targets[k] = targets[i];
        m->head_rows[k++] = (int32_t)i;
    }
    if (want_grad) memset(m->head_dh, 0, nv * C * sizeof(float));
    size_t chunk = chunk_rows(V);
    for (size_t r0 = 0; r0 < nv; r0 += chunk) {
        int R = (int)(nv - r0 < chunk ? nv - r0 : chunk);
        const float *h = m->head_h + r0 * C;
        ss_linear_forward(m->head_logits, h, m->p.wte, NULL, R, (int)C, V);
        int64_t correct = 0;
        stats->loss_sum += ss_crossentropy_fused(m->head_logits, m->head_loss, m->head_targets + r0, R, V,
                                                 grad_scale, &correct);
        stats->n_correct += correct;
        if (want_grad)
            ss_linear_backward(m->head_dh + r0 * C, m->g.wte, NULL, m->head_logits, h, m->p.wte, R, (int)C, V);
    }
    stats->n_targets = (int64_t)nv;
    if (want_grad) {
        for (size_t k = 0; k < nv; k++) {
            float *dst = m->a.dhidden + (size_t)m->head_rows[k] * C;
            const float *src = m->head_dh + k * C;
            for (size_t j = 0; j < C; j++) dst[j] += src[j];
        }
    }
    return SS_OK;
}

ss_status ss_model_forward_backward(ss_model *m, const ss_batch *b, float grad_scale,
                                    uint64_t dropout_seed, ss_loss_stats *stats, ss_error *err) {
    int train = grad_scale != 0.0f;
    ss_status st = ss_model_body_forward(m, b->tokens, b->key_valid, b->B, b->T, train, dropout_seed, NULL, err);
    if (!st) st = ss_lm_head(m, b->targets, grad_scale, train, stats, err);
    if (!st && train) ss_model_body_backward(m);
    return st;
}

ss_status ss_model_eval_loss(ss_model *m, const ss_batch *b, ss_loss_stats *stats, ss_error *err) {
    return ss_model_forward_backward(m, b, 0.0f, 0, stats, err);
}
