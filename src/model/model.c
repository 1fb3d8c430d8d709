/* Transformer body: create/free, activation arena, forward and backward.
 * The forward pass reads top to bottom like the math:
 *   x = drop(wte[tok] + wpe[t])
 *   per block: x = x + drop(proj(attn(ln1(x))));  x = x + drop(proj2(gelu(fc(ln2(x)))))
 *   hidden = ln_f(x)
 * One forward serves training (B sequences of T rows, attention over the
 * batch's own q|k|v) and a KV-cached decoder (T new rows at positions
 * t0.. of one sequence, attention over the q|k|v rows of the cache).       */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "selfsup/gemm.h"
#include "selfsup/nn.h"

int ss_model_embed_width(const ss_model_config *c) { return c->d_embed > 0 ? c->d_embed : c->d_model; }

static ss_status create(ss_model **out, const ss_model_config *c, ss_model *owner, ss_error *err) {
    ss_status st = ss_config_validate(c, err);
    if (st) return st;
    ss_model *m = calloc(1, sizeof *m);
    if (!m) return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    m->cfg = *c;
    m->causal = c->kind == SS_DECODER && !c->bidirectional;
    m->shared_emb = owner != NULL;
    m->n_params = ss_params_count(c, m->shared_emb);
    m->params = calloc(m->n_params, sizeof(float));
    m->grads = calloc(m->n_params, sizeof(float));
    m->n_tensors = ss_params_table(c, m->shared_emb, &m->tensors);
    if (!m->params || !m->grads || !m->n_tensors) {
        ss_model_free(m);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory allocating %zu parameters",
                       ss_params_count(c, owner != NULL));
    }
    ss_params_views(&m->p, m->params, c, m->shared_emb);
    ss_params_views(&m->g, m->grads, c, m->shared_emb);
    if (owner) {
        m->p.wte = owner->p.wte; m->g.wte = owner->g.wte;
        m->p.wpe = owner->p.wpe; m->g.wpe = owner->g.wpe;
    }
    *out = m;
    return SS_OK;
}

ss_status ss_model_create(ss_model **out, const ss_model_config *c, ss_error *err) {
    return create(out, c, NULL, err);
}

ss_status ss_model_create_shared(ss_model **out, const ss_model_config *c, ss_model *owner, ss_error *err) {
    const ss_model_config *o = &owner->cfg;
    if (ss_model_embed_width(c) != ss_model_embed_width(o) || c->vocab_size != o->vocab_size ||
        c->max_seq > o->max_seq || owner->shared_emb)
        return ss_fail(err, SS_ERR_ARG, "cannot share embeddings: widths %d/%d, vocab %d/%d, max_seq %d/%d",
                       ss_model_embed_width(c), ss_model_embed_width(o), c->vocab_size, o->vocab_size,
                       c->max_seq, o->max_seq);
    return create(out, c, owner, err);
}

void ss_model_free(ss_model *m) {
    if (!m) return;
    ss_gemm_weights_forget(m->params, m->n_params);
    free(m->params); free(m->grads); free(m->tensors); free(m->acts_mem);
    free(m->head_mem); free(m->head_ints);
    free(m);
}

const ss_model_config *ss_model_config_of(const ss_model *m) { return &m->cfg; }
size_t ss_model_num_params(const ss_model *m) { return m->n_params; }
int ss_model_shares_embeddings(const ss_model *m) { return m->shared_emb; }
float *ss_model_params(ss_model *m) { return m->params; }
float *ss_model_grads(ss_model *m) { return m->grads; }
const ss_params *ss_model_param_views(const ss_model *m) { return &m->p; }
const ss_params *ss_model_grad_views(const ss_model *m) { return &m->g; }
size_t ss_model_num_tensors(const ss_model *m) { return m->n_tensors; }
const ss_param_info *ss_model_tensor(const ss_model *m, size_t i) { return i < m->n_tensors ? &m->tensors[i] : NULL; }
const ss_param_info *ss_model_find_tensor(const ss_model *m, const char *name) {
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}
void ss_model_zero_grads(ss_model *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }
void ss_model_set_row_offset(ss_model *m, size_t row0) { m->row0 = row0; }

void ss_model_set_causal(ss_model *m, int causal) {
    m->causal = (m->cfg.kind == SS_DECODER && !m->cfg.bidirectional) || causal;
}
float *ss_model_dhidden(ss_model *m) { return m->a.dhidden; }

/* Activation sizes in floats, in arena order (must match acts_views). */
#define N_ACTS 26
static void act_sizes(const ss_model_config *c, int B, int T, size_t s[N_ACTS]) {
    size_t BT = (size_t)B * T, C = (size_t)c->d_model, L = (size_t)c->n_layer, F = (size_t)c->d_ff;
    size_t NH = (size_t)c->n_head, E = (size_t)ss_model_embed_width(c), EP = E != C ? BT * E : 0;
    size_t v[N_ACTS] = {EP, BT * C,                               /* emb, encoded */
                        L * BT * C, L * BT, L * BT,               /* ln1 */
                        L * BT * 3 * C, L * BT * C, L * NH * BT,  /* qkv, atty, lse */
                        L * BT * C,                               /* res2 */
                        L * BT * C, L * BT, L * BT,               /* ln2 */
                        L * BT * F, L * BT * F, L * BT * C,       /* fch, fch_gelu, res3 */
                        BT * C, BT, BT, BT * C,                   /* lnf, tmp */
                        BT * C, BT * C, BT * C, BT * C,           /* dres dhidden dtmp dbuf */
                        BT * 3 * C, EP, BT * F * 2};              /* dqkv, demb, dfch + dfch_gelu */
    memcpy(s, v, sizeof v);
}

/* Bytes of the activation arena (the LM head's scratch is separate). */
static size_t arena_bytes(const ss_model_config *c, int B, int T) {
    size_t s[N_ACTS], n = 0;
    act_sizes(c, B, T, s);
    for (int i = 0; i < N_ACTS; i++) n += s[i];
    return n * sizeof(float);
}

size_t ss_model_activation_bytes(const ss_model_config *c, int B, int T) {
    return arena_bytes(c, B, T) + ss_lm_head_bytes(c, (size_t)B * T);
}

static void acts_views(ss_acts *a, float *mem, const ss_model_config *c, int B, int T) {
    size_t s[N_ACTS];
    act_sizes(c, B, T, s);
    float **v[N_ACTS] = {&a->emb, &a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty,
                         &a->att_lse, &a->res2, &a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->fch,
                         &a->fch_gelu, &a->res3, &a->lnf, &a->lnf_mean, &a->lnf_rstd, &a->tmp,
                         &a->dres, &a->dhidden, &a->dtmp, &a->dbuf, &a->dqkv, &a->demb, &a->dfch};
    for (int i = 0; i < N_ACTS; i++) { *v[i] = mem; mem += s[i]; }
    a->dfch_gelu = a->dfch + (size_t)B * T * c->d_ff;
}

/* (Re)allocate activations when the batch grows past the arena (its size is
 * linear in B*T rows); smaller batches reuse it. The first arena is exact (a
 * training run's one shape); a later growth takes at least 1.5x the rows, so
 * batches of growing lengths (classify's length-sorted ones) reallocate a
 * few times, not at every batch (each new arena is page faults to fill). */
static ss_status ensure_acts(ss_model *m, int B, int T, ss_error *err) {
    if (T > m->cfg.max_seq)
        return ss_fail(err, SS_ERR_ARG, "sequence length %d exceeds the model's max_seq %d", T, m->cfg.max_seq);
    if (B < 1 || T < 1) return ss_fail(err, SS_ERR_ARG, "empty batch (B=%d, T=%d)", B, T);
    size_t rows = (size_t)B * T;
    if (rows > (size_t)INT_MAX / 2)
        return ss_fail(err, SS_ERR_RANGE, "batch of %d x %d positions: too large for one activation arena", B, T);
    if (rows > m->acts_cap_rows) {
        if (m->acts_cap_rows && rows < m->acts_cap_rows + m->acts_cap_rows / 2)
            rows = m->acts_cap_rows + m->acts_cap_rows / 2;
        free(m->acts_mem);
        m->acts_mem = malloc(arena_bytes(&m->cfg, 1, (int)rows));
        if (!m->acts_mem) {
            m->acts_cap_rows = 0;
            return ss_fail(err, SS_ERR_NOMEM, "out of memory for activations (%zu MB)",
                           arena_bytes(&m->cfg, 1, (int)rows) >> 20);
        }
        m->acts_cap_rows = rows;
    }
    m->B = B;
    m->T = T;
    acts_views(&m->a, m->acts_mem, &m->cfg, B, T);
    return SS_OK;
}

/* Layer l's slice of a stacked array, or NULL when the model has no such
 * array (a model without biases: the kernels take NULL as no bias). */
#define AT(base, off) ((base) ? (base) + (off) : NULL)

/* One block forward: x (input residual) -> res2 -> res3 of layer l, on the
 * B*T rows of the current shape. qkv is where the layer's q|k|v rows live:
 * the activations (t0 = 0), or a KV cache of one sequence (B = 1) whose rows
 * 0..t0-1 are earlier positions; the block writes rows t0..t0+T-1 and its
 * attention reads rows 0..t0+T-1. */
static void block_forward(ss_model *m, int l, const float *x, float *qkv, int t0) {
    const ss_model_config *c = &m->cfg;
    const ss_params *p = &m->p;
    ss_acts *a = &m->a;
    int B = m->B, T = m->T, C = c->d_model, F = c->d_ff, NH = c->n_head, BT = B * T;
    size_t lc = (size_t)l * BT * C, lr = (size_t)l * BT, lf = (size_t)l * BT * F;
    float drop = m->train ? c->dropout : 0.0f;
    float *ln1 = a->ln1 + lc, *atty = a->atty + lc;
    float *res2 = a->res2 + lc, *ln2 = a->ln2 + lc, *res3 = a->res3 + lc;
    float *fch = a->fch + lf, *fchg = a->fch_gelu + lf;

    ss_layernorm_forward(ln1, a->ln1_mean + lr, a->ln1_rstd + lr, x, p->ln1w + l * C, AT(p->ln1b, l * C), BT, C);
    ss_linear_forward(qkv + (size_t)t0 * 3 * C, ln1, p->qkvw + (size_t)l * 3 * C * C, AT(p->qkvb, l * 3 * C), BT, C,
                      3 * C);
    if (t0 == 0)
        ss_attention_forward(atty, a->att_lse + (size_t)l * NH * BT, qkv, m->key_valid,
                             m->causal, B, T, C, NH);
    else
        ss_attention_forward_rows(atty, qkv, t0, t0 + T, C, NH);
    ss_linear_forward(a->tmp, atty, p->attprojw + (size_t)l * C * C, AT(p->attprojb, l * C), BT, C, C);
    ss_dropout_forward_at(a->tmp, a->tmp, (size_t)BT * C, drop, ss_dropout_site_seed(m->dropout_seed, 1 + 2 * l),
                          m->row0 * T * C);
    ss_residual_forward(res2, x, a->tmp, (size_t)BT * C);
    ss_layernorm_forward(ln2, a->ln2_mean + lr, a->ln2_rstd + lr, res2, p->ln2w + l * C, AT(p->ln2b, l * C), BT, C);
    ss_linear_forward(fch, ln2, p->fcw + (size_t)l * F * C, NULL, BT, C, F);
    /* training keeps gelu'(fc) in fch instead of fc itself: all the backward needs */
    if (m->train) ss_bias_gelu_forward_grad(fchg, fch, AT(p->fcb, (size_t)l * F), BT, F);
    else ss_bias_gelu_forward(fchg, fch, AT(p->fcb, (size_t)l * F), BT, F);
    ss_linear_forward(a->tmp, fchg, p->fcprojw + (size_t)l * C * F, AT(p->fcprojb, l * C), BT, F, C);
    ss_dropout_forward_at(a->tmp, a->tmp, (size_t)BT * C, drop, ss_dropout_site_seed(m->dropout_seed, 2 + 2 * l),
                          m->row0 * T * C);
    ss_residual_forward(res3, res2, a->tmp, (size_t)BT * C);
}

/* The forward on B sequences of T rows at positions t0..t0+T-1: kv NULL
 * keeps q|k|v in the activations (t0 = 0), else kv [L, max_seq, 3C] is the
 * KV cache of one sequence (B = 1). */
static ss_status body_forward(ss_model *m, const int32_t *tokens, const uint8_t *key_valid, int B, int T,
                              int train, uint64_t dropout_seed, float *kv, int t0, ss_error *err) {
    const ss_model_config *c = &m->cfg;
    ss_status st = ensure_acts(m, B, T, err);
    if (st) return st;
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return ss_fail(err, SS_ERR_RANGE, "token id %d at position %zu is outside the vocabulary (size %d)",
                           tokens[i], i, c->vocab_size);
    m->tokens = tokens;
    m->key_valid = key_valid;
    m->train = train;
    m->dropout_seed = dropout_seed;
    int C = c->d_model, BT = B * T;
    ss_acts *a = &m->a;
    int E = ss_model_embed_width(c);
    float *emb = E != C ? a->emb : a->encoded;
    ss_embedding_forward(emb, tokens, m->p.wte, m->p.wpe + (size_t)t0 * E, B, T, E);
    ss_dropout_forward_at(emb, emb, (size_t)BT * E, train ? c->dropout : 0.0f, ss_dropout_site_seed(dropout_seed, 0),
                          m->row0 * T * E);
    if (E != C) ss_linear_forward(a->encoded, emb, m->p.projw, m->p.projb, BT, E, C);
    const float *x = a->encoded;
    for (int l = 0; l < c->n_layer; l++) {
        float *qkv = kv ? kv + (size_t)l * c->max_seq * 3 * C : a->qkv + (size_t)l * BT * 3 * C;
        block_forward(m, l, x, qkv, t0);
        x = a->res3 + (size_t)l * BT * C;
    }
    ss_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, m->p.lnfw, m->p.lnfb, BT, C);
    if (train) memset(a->dhidden, 0, (size_t)BT * C * sizeof(float));
    return SS_OK;
}

ss_status ss_model_body_forward(ss_model *m, const int32_t *tokens, const uint8_t *key_valid,
                                int B, int T, int train, uint64_t dropout_seed,
                                const float **hidden, ss_error *err) {
    ss_status st = body_forward(m, tokens, key_valid, B, T, train, dropout_seed, NULL, 0, err);
    if (!st && hidden) *hidden = m->a.lnf;
    return st;
}

size_t ss_model_kv_floats(const ss_model_config *c) { return (size_t)c->n_layer * c->max_seq * 3 * c->d_model; }

ss_status ss_model_body_forward_kv(ss_model *m, float *kv, int t0, const int32_t *tokens, int T,
                                   const float **hidden, ss_error *err) {
    if (m->cfg.kind != SS_DECODER || !m->causal)
        return ss_fail(err, SS_ERR_ARG, "a KV cache needs a decoder with causal attention");
    if (t0 < 0 || T < 1 || T > m->cfg.max_seq - t0)
        return ss_fail(err, SS_ERR_RANGE, "positions %d..%d are outside the model's max_seq %d", t0, t0 + T - 1,
                       m->cfg.max_seq);
    ss_status st = body_forward(m, tokens, NULL, 1, T, 0, 0, kv, t0, err);
    if (!st && hidden) *hidden = m->a.lnf;
    return st;
}

/* d(drop(v)) for a residual branch: without dropout the gradient passes
 * unchanged, so return dres itself and skip the copy. */
static const float *branch_grad(ss_model *m, const float *dres, int site) {
    float p = m->train ? m->cfg.dropout : 0.0f;
    size_t n = (size_t)m->B * m->T * m->cfg.d_model;
    if (p == 0.0f) return dres;
    memset(m->a.dtmp, 0, n * sizeof(float));
    ss_dropout_backward_at(m->a.dtmp, dres, n, p, ss_dropout_site_seed(m->dropout_seed, site),
                           m->row0 * m->T * m->cfg.d_model);
    return m->a.dtmp;
}

/* One block backward: a->dres holds d(res3_l) on entry and d(x_l) on exit. */
static void block_backward(ss_model *m, int l, const float *x) {
    const ss_model_config *c = &m->cfg;
    const ss_params *p = &m->p, *g = &m->g;
    ss_acts *a = &m->a;
    int B = m->B, T = m->T, C = c->d_model, F = c->d_ff, NH = c->n_head, BT = B * T;
    size_t lc = (size_t)l * BT * C, lr = (size_t)l * BT, lf = (size_t)l * BT * F, n = (size_t)BT * C;

    /* MLP branch: res3 = res2 + drop(proj2(gelu(fc(ln2(res2))))) */
    const float *dout = branch_grad(m, a->dres, 2 + 2 * l);
    ss_linear_backward_set(a->dfch_gelu, g->fcprojw + (size_t)l * C * F, AT(g->fcprojb, l * C), dout,
                       a->fch_gelu + lf, p->fcprojw + (size_t)l * C * F, BT, F, C);
    /* fch holds gelu'(fc) after a training forward; fc's bias gradient is summed in the same pass */
    ss_gelu_backward_grad_bias(a->dfch, AT(g->fcb, (size_t)l * F), a->fch + lf, a->dfch_gelu, BT, F);
    ss_linear_backward_set(a->dbuf, g->fcw + (size_t)l * F * C, NULL, a->dfch,
                       a->ln2 + lc, p->fcw + (size_t)l * F * C, BT, C, F);
    ss_layernorm_backward(a->dres, g->ln2w + l * C, AT(g->ln2b, l * C), a->dbuf, a->res2 + lc,
                          p->ln2w + l * C, a->ln2_mean + lr, a->ln2_rstd + lr, BT, C);

    /* attention branch: res2 = x + drop(proj(attn(ln1(x)))) */
    dout = branch_grad(m, a->dres, 1 + 2 * l);
    ss_linear_backward_set(a->dbuf, g->attprojw + (size_t)l * C * C, AT(g->attprojb, l * C), dout,
                       a->atty + lc, p->attprojw + (size_t)l * C * C, BT, C, C);
    memset(a->dqkv, 0, 3 * n * sizeof(float));
    ss_attention_backward(a->dqkv, a->dbuf, a->atty + lc, a->att_lse + (size_t)l * NH * BT,
                          a->qkv + 3 * lc, m->key_valid, m->causal, B, T, C, NH);
    ss_linear_backward_set(a->dbuf, g->qkvw + (size_t)l * 3 * C * C, AT(g->qkvb, l * 3 * C), a->dqkv,
                       a->ln1 + lc, p->qkvw + (size_t)l * 3 * C * C, BT, C, 3 * C);
    ss_layernorm_backward(a->dres, g->ln1w + l * C, AT(g->ln1b, l * C), a->dbuf, x,
                          p->ln1w + l * C, a->ln1_mean + lr, a->ln1_rstd + lr, BT, C);
}

void ss_model_set_block_hook(ss_model *m, ss_block_grads_fn fn, void *ctx) {
    m->block_hook = fn;
    m->block_hook_ctx = ctx;
}

void ss_model_body_backward(ss_model *m) { ss_model_body_backward_to(m, 0); }

void ss_model_body_backward_to(ss_model *m, int min_depth) {
    const ss_model_config *c = &m->cfg;
    ss_acts *a = &m->a;
    int C = c->d_model, BT = m->B * m->T, L = c->n_layer;
    size_t n = (size_t)BT * C;
    if (min_depth > L + 1) return;
    memset(a->dres, 0, n * sizeof(float));
    ss_layernorm_backward(a->dres, m->g.lnfw, m->g.lnfb, a->dhidden, a->res3 + (size_t)(L - 1) * n,
                          m->p.lnfw, a->lnf_mean, a->lnf_rstd, BT, C);
    for (int l = L - 1; l >= 0 && l + 1 >= min_depth; l--) { /* block l is at depth l + 1 */
        block_backward(m, l, l == 0 ? a->encoded : a->res3 + (size_t)(l - 1) * n);
        if (m->block_hook) m->block_hook(m->block_hook_ctx, l);
    }
    if (min_depth > 0) return;
    int E = ss_model_embed_width(c);
    const float *dx = a->dres;
    if (E != C) { /* encoded = emb @ projw^T + projb */
        ss_linear_backward_set(a->demb, m->g.projw, m->g.projb, a->dres, a->emb, m->p.projw, BT, E, C);
        dx = a->demb;
    }
    float p = m->train ? c->dropout : 0.0f;
    if (p > 0.0f) {
        /* Dropout is diagonal, so its backward is its forward applied to the
         * gradient (same mask, same 1/(1-p) scale); demb is private and can
         * be scaled in place, dres (E == C) goes to the free dtmp buffer. */
        float *d = dx == a->demb ? a->demb : a->dtmp;
        ss_dropout_forward_at(d, dx, (size_t)BT * E, p, ss_dropout_site_seed(m->dropout_seed, 0), m->row0 * m->T * E);
        dx = d;
    }
    ss_embedding_backward(m->g.wte, m->g.wpe, dx, m->tokens, m->B, m->T, E);
}

/* The whole model on a batch: body, LM head, and the backward when training. */
ss_status ss_model_forward_backward(ss_model *m, const ss_batch *b, float grad_scale,
                                    uint64_t dropout_seed, ss_loss_stats *stats, ss_error *err) {
    int train = grad_scale != 0.0f;
    ss_status st = ss_need_lm_head(m, err);
    if (!st) st = ss_model_body_forward(m, b->tokens, b->key_valid, b->B, b->T, train, dropout_seed, NULL, err);
    if (!st) st = ss_lm_head(m, b->targets, grad_scale, train, stats, err);
    if (!st && train) ss_model_body_backward(m);
    return st;
}

ss_status ss_model_eval_loss(ss_model *m, const ss_batch *b, ss_loss_stats *stats, ss_error *err) {
    return ss_model_forward_backward(m, b, 0.0f, 0, stats, err);
}
