/* LM heads with softmax cross-entropy, only on positions that have a
 * target: rows are gathered first, then processed in chunks so the logits of
 * at most one chunk ([rows, V]) exist at a time.
 *   LM  (decoder):  logits = h @ wte^T
 *   MLM (BERT):     u = LN(gelu(h @ Wd^T + bd));  logits = u @ wte^T + b
 * loss = logsumexp(logits) - logits[target]; backward chains through the
 * same steps (dh += ..., dwte += dlogits^T @ u, db += colsum(dlogits)). */
#include <math.h>
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

/* Floats of per-row scratch: h, dh (C each) and, for MLM, pre-GELU, GELU
 * and LN outputs plus two gradient buffers (E each) and mean/rstd. */
static size_t row_floats(const ss_model_config *c) {
    size_t C = (size_t)c->d_model, E = (size_t)ss_model_embed_width(c);
    return 2 * C + (c->head == SS_HEAD_MLM ? 5 * E + 2 : 0);
}

size_t ss_lm_head_bytes(const ss_model_config *c, size_t rows) {
    size_t chunk = chunk_rows(c->vocab_size);
    return rows * (row_floats(c) * sizeof(float) + 2 * sizeof(int32_t)) +
           chunk * ((size_t)c->vocab_size + 1) * sizeof(float);
}

ss_status ss_head_scratch(ss_model *m, size_t nf, size_t ni, ss_error *err) {
    if (nf > m->head_cap_floats) {
        free(m->head_mem);
        m->head_cap_floats = 0;
        if (!(m->head_mem = malloc(nf * sizeof(float))))
            return ss_fail(err, SS_ERR_NOMEM, "out of memory for a model head (%zu MB)", (nf * 4) >> 20);
        m->head_cap_floats = nf;
    }
    if (ni > m->head_cap_ints) {
        free(m->head_ints);
        m->head_cap_ints = 0;
        if (!(m->head_ints = malloc(ni * sizeof(int32_t))))
            return ss_fail(err, SS_ERR_NOMEM, "out of memory for a model head");
        m->head_cap_ints = ni;
    }
    return SS_OK;
}

static ss_status ensure_head(ss_model *m, size_t rows, ss_error *err) {
    size_t V = (size_t)m->cfg.vocab_size, chunk = chunk_rows((int)V);
    return ss_head_scratch(m, rows * row_floats(&m->cfg) + chunk * (V + 1), rows * 2, err);
}

/* Views of the head scratch for nv rows. */
typedef struct {
    float *h, *dh, *pre, *act, *u, *du, *dact, *mean, *rstd, *logits, *loss;
    int32_t *targets, *rows;
} head_bufs;

static head_bufs views(ss_model *m, size_t nv) {
    size_t C = (size_t)m->cfg.d_model, E = (size_t)ss_model_embed_width(&m->cfg);
    head_bufs b = {0};
    float *p = m->head_mem;
    b.h = p; p += nv * C;
    b.dh = p; p += nv * C;
    if (m->cfg.head == SS_HEAD_MLM) {
        b.pre = p; p += nv * E;
        b.act = p; p += nv * E;
        b.u = p; p += nv * E;
        b.du = p; p += nv * E;
        b.dact = p; p += nv * E;
        b.mean = p; p += nv;
        b.rstd = p; p += nv;
    }
    b.logits = p; p += chunk_rows(m->cfg.vocab_size) * (size_t)m->cfg.vocab_size;
    b.loss = p;
    b.targets = m->head_ints;
    b.rows = m->head_ints + nv;
    return b;
}

/* Only LM and MLM heads predict tokens (a DISC or CLS model's wte is an
 * input table, not an output projection). */
ss_status ss_need_lm_head(const ss_model *m, ss_error *err) {
    if (m->cfg.head == SS_HEAD_DISC)
        return ss_fail(err, SS_ERR_ARG, "this model has a discriminator head, not an LM head");
    if (m->cfg.head == SS_HEAD_CLS)
        return ss_fail(err, SS_ERR_ARG, "this model has a classification head, not an LM head");
    return SS_OK;
}

/* Draw one token from softmax(z / temp) with a uniform from rng. */
static int32_t sample_row(const float *z, int V, double temp, ss_rng *rng) {
    float mx = z[0];
    for (int v = 1; v < V; v++) mx = fmaxf(mx, z[v]);
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)(z[v] - mx) / temp);
    double u = ss_rng_uniform_double(rng) * sum, acc = 0;
    for (int v = 0; v < V; v++) {
        acc += exp((double)(z[v] - mx) / temp);
        if (acc > u) return v;
    }
    return V - 1;
}

/* MLM transform forward on nv gathered rows: u = LN(gelu(h Wd^T + bd)). */
static void transform_forward(ss_model *m, head_bufs *b, int nv) {
    int C = m->cfg.d_model, E = ss_model_embed_width(&m->cfg);
    ss_linear_forward(b->pre, b->h, m->p.mlm_dw, m->p.mlm_db, nv, C, E);
    ss_gelu_forward(b->act, b->pre, (size_t)nv * E);
    ss_layernorm_forward(b->u, b->mean, b->rstd, b->act, m->p.mlm_lnw, m->p.mlm_lnb, nv, E);
}

static void transform_backward(ss_model *m, head_bufs *b, int nv) {
    int C = m->cfg.d_model, E = ss_model_embed_width(&m->cfg);
    memset(b->dact, 0, (size_t)nv * E * sizeof(float));
    ss_layernorm_backward(b->dact, m->g.mlm_lnw, m->g.mlm_lnb, b->du, b->act, m->p.mlm_lnw, b->mean, b->rstd, nv, E);
    memset(b->du, 0, (size_t)nv * E * sizeof(float)); /* reused as d(pre) */
    ss_gelu_backward(b->du, b->pre, b->dact, (size_t)nv * E);
    ss_linear_backward(b->dh, m->g.mlm_dw, m->g.mlm_db, b->du, b->h, m->p.mlm_dw, nv, C, E);
}

ss_status ss_lm_head_sample(ss_model *m, const int32_t *targets, float grad_scale, int want_grad,
                            ss_rng *rng, float temperature, int32_t *samples, ss_loss_stats *stats,
                            ss_error *err) {
    size_t BT = (size_t)m->B * m->T, C = (size_t)m->cfg.d_model;
    int V = m->cfg.vocab_size, E = ss_model_embed_width(&m->cfg), mlm = m->cfg.head == SS_HEAD_MLM;
    size_t nv = 0;
    memset(stats, 0, sizeof *stats);
    ss_status st = ss_need_lm_head(m, err);
    if (st) return st;
    if (samples && !(temperature > 0.0f))
        return ss_fail(err, SS_ERR_ARG, "sampling temperature %g must be positive", (double)temperature);
    for (size_t i = 0; i < BT; i++) {
        if (targets[i] >= V)
            return ss_fail(err, SS_ERR_RANGE, "target id %d at position %zu is outside the vocabulary (size %d)",
                           targets[i], i, V);
        nv += targets[i] >= 0;
    }
    if (nv == 0) return SS_OK;
    st = ensure_head(m, nv, err);
    if (st) return st;
    head_bufs b = views(m, nv);
    for (size_t i = 0, k = 0; i < BT; i++) {
        if (targets[i] < 0) continue;
        memcpy(b.h + k * C, m->a.lnf + i * C, C * sizeof(float));
        b.targets[k] = targets[i];
        b.rows[k++] = (int32_t)i;
    }
    if (mlm) transform_forward(m, &b, (int)nv);
    const float *x = mlm ? b.u : b.h;
    float *dx = mlm ? b.du : b.dh;
    int D = mlm ? E : (int)C;
    if (want_grad) memset(dx, 0, nv * (size_t)D * sizeof(float));
    size_t chunk = chunk_rows(V);
    for (size_t r0 = 0; r0 < nv; r0 += chunk) {
        int R = (int)(nv - r0 < chunk ? nv - r0 : chunk);
        const float *xr = x + r0 * D;
        ss_linear_forward(b.logits, xr, m->p.wte, mlm ? m->p.mlm_bias : NULL, R, D, V);
        if (samples)
            for (int r = 0; r < R; r++)
                samples[b.rows[r0 + r]] = sample_row(b.logits + (size_t)r * V, V, temperature, rng);
        int64_t correct = 0;
        stats->loss_sum += ss_crossentropy_fused(b.logits, b.loss, b.targets + r0, R, V, grad_scale, &correct);
        stats->n_correct += correct;
        if (want_grad)
            ss_linear_backward(dx + r0 * D, m->g.wte, mlm ? m->g.mlm_bias : NULL, b.logits, xr, m->p.wte, R, D, V);
    }
    stats->n_targets = (int64_t)nv;
    if (!want_grad) return SS_OK;
    if (mlm) {
        memset(b.dh, 0, nv * C * sizeof(float));
        transform_backward(m, &b, (int)nv);
    }
    for (size_t k = 0; k < nv; k++) {
        float *dst = m->a.dhidden + (size_t)b.rows[k] * C;
        const float *src = b.dh + k * C;
        for (size_t j = 0; j < C; j++) dst[j] += src[j];
    }
    return SS_OK;
}

ss_status ss_lm_head_logits(ss_model *m, const int32_t *positions, int n, float *logits, ss_error *err) {
    size_t C = (size_t)m->cfg.d_model, BT = (size_t)m->B * m->T;
    int V = m->cfg.vocab_size, E = ss_model_embed_width(&m->cfg), mlm = m->cfg.head == SS_HEAD_MLM;
    ss_status st = ss_need_lm_head(m, err);
    if (!st) st = ensure_head(m, (size_t)n, err);
    if (st) return st;
    head_bufs b = views(m, (size_t)n);
    for (int k = 0; k < n; k++) {
        if (positions[k] < 0 || (size_t)positions[k] >= BT)
            return ss_fail(err, SS_ERR_RANGE, "position %d is outside the last batch", positions[k]);
        memcpy(b.h + (size_t)k * C, m->a.lnf + (size_t)positions[k] * C, C * sizeof(float));
    }
    if (mlm) transform_forward(m, &b, n);
    ss_linear_forward(logits, mlm ? b.u : b.h, m->p.wte, mlm ? m->p.mlm_bias : NULL, n, mlm ? E : (int)C, V);
    return SS_OK;
}

ss_status ss_lm_head(ss_model *m, const int32_t *targets, float grad_scale, int want_grad,
                     ss_loss_stats *stats, ss_error *err) {
    return ss_lm_head_sample(m, targets, grad_scale, want_grad, NULL, 1.0f, NULL, stats, err);
}

/* ---- Verbalizer head (prompt-based classification) ----------------------------
 * The LM/MLM head on one position per sequence, restricted to the W tokens
 * of the verbalizer's words: only their rows of the tied embedding take
 * part, so the products are [n, D] x [D, W], not [n, D] x [D, V].
 *   x_i = h[pos_i] (LM) or u_i = LN(gelu(h[pos_i] Wd^T + bd)) (MLM)
 *   E = wte[ids] [W, D],  c = mlm_bias[ids] [W] (MLM; else 0)
 *   z_i = x_i E^T + c;    s_ik = logsumexp_{j of class k} z_ij
 *   loss_i = w[y_i] (logsumexp(s_i) - s_i[y_i])
 * backward: ds_i = w[y_i] scale (softmax(s_i) - onehot(y_i));
 *   dz_ij = ds_i[label_j] q_ij,  q_ij = exp(z_ij - s_i[label_j]) (the word's
 *   share of its class; 1 for a class of one word, where s = z exactly);
 *   dx = dz E;  dwte[ids[j]] += (dz^T x)[j];  dmlm_bias[ids[j]] += sum_i dz[i,j];
 *   MLM: dh from dx through the transform's backward (as ss_lm_head);
 *   dhidden[pos_i] += dh_i. */
typedef struct {
    head_bufs t;                              /* h, dh and the MLM transform's buffers */
    float *w, *c, *z, *s, *loss, *dw, *dc;    /* [W,D], [W], [n,W], [n,K], [n], [W,D], [W] */
} verb_bufs;

static ss_status verb_scratch(ss_model *m, int n, int W, int K, verb_bufs *b, ss_error *err) {
    size_t C = (size_t)m->cfg.d_model, E = (size_t)ss_model_embed_width(&m->cfg), N = (size_t)n, w = (size_t)W;
    int mlm = m->cfg.head == SS_HEAD_MLM;
    size_t D = mlm ? E : C;
    ss_status st = ss_head_scratch(m, N * row_floats(&m->cfg) + 2 * w * D + 2 * w + N * w + N * (size_t)K + N, N, err);
    if (st) return st;
    memset(b, 0, sizeof *b);
    float *p = m->head_mem;
    b->t.h = p; p += N * C;
    b->t.dh = p; p += N * C;
    if (mlm) {
        b->t.pre = p; p += N * E;
        b->t.act = p; p += N * E;
        b->t.u = p; p += N * E;
        b->t.du = p; p += N * E;
        b->t.dact = p; p += N * E;
        b->t.mean = p; p += N;
        b->t.rstd = p; p += N;
    }
    b->w = p; p += w * D;
    b->dw = p; p += w * D;
    b->c = p; p += w;
    b->dc = p; p += w;
    b->z = p; p += N * w;
    b->s = p; p += N * (size_t)K;
    b->loss = p;
    b->t.targets = m->head_ints;
    return SS_OK;
}

static int word_class(const ss_verbalizer_tokens *v, int j) { return v->label ? v->label[j] : j; }

static ss_status verb_check_words(const ss_model *m, const ss_verbalizer_tokens *v, ss_error *err) {
    int W = v->n_words, K = v->n_classes;
    if (K < 2) return ss_fail(err, SS_ERR_ARG, "the verbalizer head needs >= 2 classes (%d)", K);
    if (!v->label && W != K)
        return ss_fail(err, SS_ERR_ARG, "the verbalizer has %d words for %d classes and no class for each word", W, K);
    if (W < K)
        return ss_fail(err, SS_ERR_ARG, "the verbalizer has %d words for %d classes: every class needs a word", W, K);
    for (int j = 0; j < W; j++) {
        if (v->ids[j] < 0 || v->ids[j] >= m->cfg.vocab_size)
            return ss_fail(err, SS_ERR_RANGE, "verbalizer token %d is outside the vocabulary (size %d)", v->ids[j],
                           m->cfg.vocab_size);
        if (word_class(v, j) < 0 || word_class(v, j) >= K)
            return ss_fail(err, SS_ERR_RANGE, "verbalizer word %d's class %d is outside the %d classes", j,
                           word_class(v, j), K);
        for (int i = 0; i < j; i++)
            if (v->ids[i] == v->ids[j])
                return ss_fail(err, SS_ERR_ARG, "verbalizer words %d and %d (classes %d and %d) have the same token %d",
                               i, j, word_class(v, i), word_class(v, j), v->ids[j]);
    }
    for (int k = 0; k < K; k++) {
        int has = 0;
        for (int j = 0; j < W && !has; j++) has = word_class(v, j) == k;
        if (!has) return ss_fail(err, SS_ERR_ARG, "class %d has no verbalizer word", k);
    }
    return SS_OK;
}

static ss_status verb_check(const ss_model *m, const int32_t *positions, int n, const ss_verbalizer_tokens *v,
                            const int32_t *labels, const float *cw, int want_grad, ss_error *err) {
    ss_status st = ss_need_lm_head(m, err);
    if (st) return st;
    size_t BT = (size_t)m->B * m->T;
    int K = v->n_classes;
    if (m->B < 1) return ss_fail(err, SS_ERR_ARG, "the verbalizer head needs a body forward first");
    if (n < 1) return ss_fail(err, SS_ERR_ARG, "the verbalizer head needs rows (%d)", n);
    if (want_grad && !m->train)
        return ss_fail(err, SS_ERR_ARG, "verbalizer head gradients need a training body forward (train != 0)");
    for (int i = 0; i < n; i++)
        if (positions[i] < 0 || (size_t)positions[i] >= BT)
            return ss_fail(err, SS_ERR_RANGE, "position %d is outside the last batch", positions[i]);
    if ((st = verb_check_words(m, v, err))) return st;
    for (int i = 0; labels && i < n; i++)
        if (labels[i] >= K)
            return ss_fail(err, SS_ERR_RANGE, "label %d of row %d is outside the %d classes", labels[i], i, K);
    for (int k = 0; cw && k < K; k++)
        if (!(cw[k] >= 0.0f && isfinite(cw[k])))
            return ss_fail(err, SS_ERR_ARG, "class weight %d is %g: weights must be finite and >= 0", k,
                           (double)cw[k]);
    return SS_OK;
}

/* s_i = the class scores of row i (logsumexp of each class's word logits),
 * and z_i becomes q_i, each word's share of its class (without labels each
 * word is its own class: s_i = z_i and q = 1). */
static void class_scores(const ss_verbalizer_tokens *v, float *z, float *s, int n) {
    int W = v->n_words, K = v->n_classes;
    for (int i = 0; i < n; i++) {
        float *zi = z + (size_t)i * W, *si = s + (size_t)i * K;
        if (v->label) {
            ss_logsumexp_groups(zi, v->label, W, K, si, zi);
            continue;
        }
        for (int j = 0; j < W; j++) {
            si[j] = zi[j];
            zi[j] = 1.0f;
        }
    }
}

ss_status ss_verbalizer_head(ss_model *m, const int32_t *positions, int n, const ss_verbalizer_tokens *v,
                             const int32_t *labels, const float *class_weights, float grad_scale, int want_grad,
                             float *probs, ss_cls_stats *stats, ss_error *err) {
    memset(stats, 0, sizeof *stats);
    verb_bufs b;
    ss_status st = verb_check(m, positions, n, v, labels, class_weights, want_grad, err);
    if (!st) st = verb_scratch(m, n, v->n_words, v->n_classes, &b, err);
    if (st) return st;
    size_t C = (size_t)m->cfg.d_model;
    int mlm = m->cfg.head == SS_HEAD_MLM, D = mlm ? ss_model_embed_width(&m->cfg) : (int)C;
    int W = v->n_words, K = v->n_classes;
    for (int i = 0; i < n; i++)
        memcpy(b.t.h + (size_t)i * C, m->a.lnf + (size_t)positions[i] * C, C * sizeof(float));
    if (mlm) transform_forward(m, &b.t, n);
    const float *x = mlm ? b.t.u : b.t.h;
    for (int j = 0; j < W; j++) {
        memcpy(b.w + (size_t)j * D, m->p.wte + (size_t)v->ids[j] * D, (size_t)D * sizeof(float));
        b.c[j] = mlm ? m->p.mlm_bias[v->ids[j]] : 0.0f;
    }
    ss_linear_forward(b.z, x, b.w, mlm ? b.c : NULL, n, D, W);
    class_scores(v, b.z, b.s, n);
    if (probs)
        for (int i = 0; i < n; i++) {
            const float *s = b.s + (size_t)i * K;
            float *p = probs + (size_t)i * K, mx = s[0];
            for (int k = 1; k < K; k++) mx = fmaxf(mx, s[k]);
            double sum = 0;
            for (int k = 0; k < K; k++) sum += (double)(p[k] = expf(s[k] - mx));
            for (int k = 0; k < K; k++) p[k] = (float)(p[k] / sum);
        }

    /* ds = (softmax - onehot) * grad_scale * w[y] per labelled row, then dz = ds[label] q */
    for (int i = 0; i < n; i++) b.t.targets[i] = labels && labels[i] >= 0 ? labels[i] : -1;
    ss_crossentropy_fused(b.s, b.loss, b.t.targets, n, K, grad_scale, &stats->correct);
    for (int i = 0; i < n; i++) {
        float w = 0.0f;
        if (b.t.targets[i] >= 0) {
            w = class_weights ? class_weights[b.t.targets[i]] : 1.0f;
            stats->loss_sum += (double)w * b.loss[i];
            stats->weight_sum += w;
            stats->n++;
        }
        for (int j = 0; j < W; j++) b.z[(size_t)i * W + j] *= b.s[(size_t)i * K + word_class(v, j)] * w;
    }
    if (!want_grad) return SS_OK;

    float *dx = mlm ? b.t.du : b.t.dh;
    memset(b.dw, 0, (size_t)W * D * sizeof(float));
    memset(b.dc, 0, (size_t)W * sizeof(float));
    ss_linear_backward_set(dx, b.dw, b.dc, b.z, x, b.w, n, D, W);
    for (int k = 0; k < W; k++) {
        float *g = m->g.wte + (size_t)v->ids[k] * D;
        const float *d = b.dw + (size_t)k * D;
        for (int j = 0; j < D; j++) g[j] += d[j];
        if (mlm) m->g.mlm_bias[v->ids[k]] += b.dc[k];
    }
    if (mlm) {
        memset(b.t.dh, 0, (size_t)n * C * sizeof(float));
        transform_backward(m, &b.t, n);
    }
    for (int i = 0; i < n; i++) {
        float *dst = m->a.dhidden + (size_t)positions[i] * C;
        const float *src = b.t.dh + (size_t)i * C;
        for (size_t j = 0; j < C; j++) dst[j] += src[j];
    }
    return SS_OK;
}
