/* Incremental decoding with a KV cache.
 *
 * A decoder's attention at position t only reads the keys and values of
 * positions 0..t, and those never change once computed (causal mask), so
 * they are cached per layer: key_cache/value_cache [L, max_seq, C]. A new
 * token then costs one row through every matrix (weights read once) plus
 * attention over t cached rows: O(params + L t C) instead of a full
 * forward pass's O(t params + L t^2 C).
 *
 * The prompt goes through the batched training forward (sgemm over all its
 * rows); its k and v rows are copied out of the model's q|k|v activations.
 * Every buffer of the step path is allocated once, in create. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "selfsup/generate.h"
#include "selfsup/nn.h"

struct ss_decoder_state {
    ss_model *m;
    int L, C, E, F, NH, V, max_seq, mlm;
    int len;                /* positions 0..len-1 are in the cache */
    float *mem;             /* the one allocation: caches, then row scratch */
    float *kc, *vc;         /* [L, max_seq, C] */
    float *emb, *x, *ln, *qkv, *att, *tmp, *fc, *fcg; /* one row each */
    float *pre, *act, *u;   /* MLM head transform rows [E] */
    float *scores;          /* [max_seq] one head's attention probabilities */
    float mean, rstd;
};

/* Floats of the one allocation, in the order views() carves it. */
static size_t state_floats(const ss_model_config *c) {
    size_t L = (size_t)c->n_layer, C = (size_t)c->d_model, T = (size_t)c->max_seq;
    size_t E = (size_t)ss_model_embed_width(c), F = (size_t)c->d_ff;
    return 2 * L * T * C + E + C + C + 3 * C + C + C + F + F + 3 * E + T;
}

static void views(ss_decoder_state *s) {
    size_t LTC = (size_t)s->L * s->max_seq * s->C, C = (size_t)s->C, E = (size_t)s->E, F = (size_t)s->F;
    float *p = s->mem;
    s->kc = p; p += LTC;
    s->vc = p; p += LTC;
    s->emb = p; p += E;
    s->x = p; p += C;
    s->ln = p; p += C;
    s->qkv = p; p += 3 * C;
    s->att = p; p += C;
    s->tmp = p; p += C;
    s->fc = p; p += F;
    s->fcg = p; p += F;
    s->pre = p; p += E;
    s->act = p; p += E;
    s->u = p; p += E;
    s->scores = p;
}

/* Models that can generate: a decoder with a token-predicting head. */
static ss_status check_model(const ss_model *m, ss_error *err) {
    const ss_model_config *c = ss_model_config_of(m);
    if (c->kind != SS_DECODER)
        return ss_fail(err, SS_ERR_ARG, "generation needs a decoder; use fill-mask for an encoder");
    if (c->head == SS_HEAD_DISC || c->head == SS_HEAD_CLS)
        return ss_fail(err, SS_ERR_ARG, "generation needs an LM head; this model has a %s head",
                       c->head == SS_HEAD_CLS ? "classification ('selfsup classify' runs it)" : "discriminator");
    return SS_OK;
}

ss_status ss_decoder_state_create(ss_decoder_state **out, ss_model *m, ss_error *err) {
    ss_status st = check_model(m, err);
    if (st) return st;
    const ss_model_config *c = ss_model_config_of(m);
    ss_decoder_state *s = calloc(1, sizeof *s);
    size_t nf = state_floats(c);
    if (s) s->mem = malloc(nf * sizeof(float));
    if (!s || !s->mem) {
        free(s);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for the KV cache (%zu MB)", (nf * sizeof(float)) >> 20);
    }
    s->m = m;
    s->L = c->n_layer;
    s->C = c->d_model;
    s->E = ss_model_embed_width(c);
    s->F = c->d_ff;
    s->NH = c->n_head;
    s->V = c->vocab_size;
    s->max_seq = c->max_seq;
    s->mlm = c->head == SS_HEAD_MLM;
    views(s);
    *out = s;
    return SS_OK;
}

void ss_decoder_state_free(ss_decoder_state *s) {
    if (!s) return;
    free(s->mem);
    free(s);
}

void ss_decoder_state_reset(ss_decoder_state *s) { s->len = 0; }
int ss_decoder_state_length(const ss_decoder_state *s) { return s->len; }

static ss_status check_room(const ss_decoder_state *s, int n, ss_error *err) {
    if (n > s->max_seq - s->len)
        return ss_fail(err, SS_ERR_RANGE,
                       "sequence too long: %d tokens + %d new exceed the model's max_seq %d "
                       "(its position embeddings end there)", s->len, n, s->max_seq);
    return SS_OK;
}

static ss_status check_token(const ss_decoder_state *s, int32_t tok, int pos, ss_error *err) {
    if (tok < 0 || tok >= s->V)
        return ss_fail(err, SS_ERR_RANGE, "token id %d at position %d is outside the vocabulary (size %d)",
                       tok, pos, s->V);
    return SS_OK;
}

/* One query row of head h against cached rows 0..n-1:
 * out = sum_j softmax_j(q.k_j / sqrt(hs)) v_j, max-subtracted for stability. */
static void attend_head(const ss_decoder_state *s, int l, int h, int n) {
    int C = s->C, hs = C / s->NH;
    size_t base = (size_t)l * s->max_seq * C + (size_t)h * hs;
    const float *q = s->qkv + (size_t)h * hs, *K = s->kc + base, *Vc = s->vc + base;
    float *sc = s->scores, *out = s->att + (size_t)h * hs;
    float scale = 1.0f / sqrtf((float)hs), mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        const float *k = K + (size_t)j * C;
        float d = 0.0f;
        #pragma omp simd reduction(+ : d)
        for (int i = 0; i < hs; i++) d += q[i] * k[i];
        sc[j] = d * scale;
        mx = fmaxf(mx, sc[j]);
    }
    float sum = 0.0f;
    for (int j = 0; j < n; j++) sum += (sc[j] = expf(sc[j] - mx));
    float inv = 1.0f / sum;
    memset(out, 0, (size_t)hs * sizeof(float));
    for (int j = 0; j < n; j++) {
        const float *v = Vc + (size_t)j * C;
        float p = sc[j] * inv;
        #pragma omp simd
        for (int i = 0; i < hs; i++) out[i] += p * v[i];
    }
}

/* Heads run one after another: per token this is O(t C) work, a fraction of
 * the weight-streaming matrix-vector products, and an OpenMP fork per layer
 * measured slower (far slower when the cores are shared). */
static void attend(ss_decoder_state *s, int l, int n) {
    for (int h = 0; h < s->NH; h++) attend_head(s, l, h, n);
}

/* out[OC] = w[OC,C] x[C] + b (b may be NULL): the one-row case of
 * ss_linear_forward as a matrix-vector product. sgemm with one row would
 * pack (copy) the whole weight matrix on every call; sgemv streams it once
 * (measured: 1.4 vs 2.4 ms per token for config "small" on one thread). */
static void row_linear(float *out, const float *x, const float *w, const float *b, int C, int OC) {
    /* seed out explicitly: beta = 0 may still multiply what is there by 0,
     * and 0 * NaN of an uninitialised caller buffer is NaN in some BLAS */
    if (b) memcpy(out, b, (size_t)OC * sizeof(float));
    else memset(out, 0, (size_t)OC * sizeof(float));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, w, C, x, 1, 1.0f, out, 1);
}

/* One block on the row s->x at position t (cached rows 0..t-1 exist). */
static void block_step(ss_decoder_state *s, int l, int t) {
    const ss_params *p = ss_model_param_views(s->m);
    int C = s->C, F = s->F;
    size_t lc = (size_t)l * C, row = ((size_t)l * s->max_seq + t) * C;
    ss_layernorm_forward(s->ln, &s->mean, &s->rstd, s->x, p->ln1w + lc, p->ln1b + lc, 1, C);
    row_linear(s->qkv, s->ln, p->qkvw + 3 * lc * C, p->qkvb + 3 * lc, C, 3 * C);
    memcpy(s->kc + row, s->qkv + C, (size_t)C * sizeof(float));
    memcpy(s->vc + row, s->qkv + 2 * C, (size_t)C * sizeof(float));
    attend(s, l, t + 1);
    row_linear(s->tmp, s->att, p->attprojw + lc * C, p->attprojb + lc, C, C);
    for (int i = 0; i < C; i++) s->x[i] += s->tmp[i];
    ss_layernorm_forward(s->ln, &s->mean, &s->rstd, s->x, p->ln2w + lc, p->ln2b + lc, 1, C);
    row_linear(s->fc, s->ln, p->fcw + (size_t)l * F * C, p->fcb + (size_t)l * F, C, F);
    ss_gelu_forward(s->fcg, s->fc, (size_t)F);
    row_linear(s->tmp, s->fcg, p->fcprojw + (size_t)l * C * F, p->fcprojb + lc, F, C);
    for (int i = 0; i < C; i++) s->x[i] += s->tmp[i];
}

/* Final LayerNorm and the head on the row s->x (as ss_lm_head_logits). */
static void head_step(ss_decoder_state *s, float *logits) {
    const ss_params *p = ss_model_param_views(s->m);
    int C = s->C, E = s->E;
    ss_layernorm_forward(s->ln, &s->mean, &s->rstd, s->x, p->lnfw, p->lnfb, 1, C);
    if (!s->mlm) {
        row_linear(logits, s->ln, p->wte, NULL, C, s->V);
        return;
    }
    row_linear(s->pre, s->ln, p->mlm_dw, p->mlm_db, C, E);
    ss_gelu_forward(s->act, s->pre, (size_t)E);
    ss_layernorm_forward(s->u, &s->mean, &s->rstd, s->act, p->mlm_lnw, p->mlm_lnb, 1, E);
    row_linear(logits, s->u, p->wte, p->mlm_bias, E, s->V);
}

ss_status ss_decoder_step(ss_decoder_state *s, int32_t token, float *logits, ss_error *err) {
    ss_status st = check_room(s, 1, err);
    if (!st) st = check_token(s, token, s->len, err);
    if (st) return st;
    const ss_params *p = ss_model_param_views(s->m);
    int t = s->len, C = s->C, E = s->E;
    float *e = E != C ? s->emb : s->x;
    const float *wte = p->wte + (size_t)token * E, *wpe = p->wpe + (size_t)t * E;
    for (int i = 0; i < E; i++) e[i] = wte[i] + wpe[i];
    if (E != C) row_linear(s->x, s->emb, p->projw, p->projb, E, C);
    for (int l = 0; l < s->L; l++) block_step(s, l, t);
    head_step(s, logits);
    s->len = t + 1;
    return SS_OK;
}

/* Copy the k and v rows of every layer out of the last batched forward
 * (B = 1, T = n; each q|k|v row is [q | k | v], C channels each). */
static void fill_cache(ss_decoder_state *s, int n) {
    int C = s->C;
    for (int l = 0; l < s->L; l++) {
        const float *qkv = ss_model_layer_qkv(s->m, l);
        float *K = s->kc + (size_t)l * s->max_seq * C, *Vc = s->vc + (size_t)l * s->max_seq * C;
        for (int i = 0; i < n; i++) {
            memcpy(K + (size_t)i * C, qkv + (size_t)i * 3 * C + C, (size_t)C * sizeof(float));
            memcpy(Vc + (size_t)i * C, qkv + (size_t)i * 3 * C + 2 * C, (size_t)C * sizeof(float));
        }
    }
}

/* An empty state takes the batched path (it overwrites the model's
 * activations of any earlier forward); a non-empty one appends the tokens
 * one step at a time (the batched forward has no way to start at a cached
 * prefix), which gives the same logits. */
ss_status ss_decoder_prefill(ss_decoder_state *s, const int32_t *tokens, int n, float *logits, ss_error *err) {
    if (n < 1) return ss_fail(err, SS_ERR_ARG, "prefill needs at least one token (got %d)", n);
    ss_status st = check_room(s, n, err);
    for (int i = 0; !st && i < n; i++) st = check_token(s, tokens[i], s->len + i, err);
    if (st) return st;
    if (s->len > 0) {
        for (int i = 0; !st && i < n; i++) st = ss_decoder_step(s, tokens[i], logits, err);
        return st;
    }
    st = ss_model_body_forward(s->m, tokens, NULL, 1, n, 0, 0, NULL, err);
    int32_t last = n - 1;
    if (!st) st = ss_lm_head_logits(s->m, &last, 1, logits, err);
    if (st) return st;
    fill_cache(s, n);
    s->len = n;
    return SS_OK;
}

ss_status ss_decoder_full_logits(ss_model *m, const int32_t *tokens, int n, float *logits, ss_error *err) {
    ss_status st = check_model(m, err);
    if (st) return st;
    int max_seq = ss_model_config_of(m)->max_seq;
    if (n < 1) return ss_fail(err, SS_ERR_ARG, "need at least one token (got %d)", n);
    if (n > max_seq)
        return ss_fail(err, SS_ERR_RANGE, "sequence too long: %d tokens exceed the model's max_seq %d", n, max_seq);
    st = ss_model_body_forward(m, tokens, NULL, 1, n, 0, 0, NULL, err);
    int32_t last = n - 1;
    if (!st) st = ss_lm_head_logits(m, &last, 1, logits, err);
    return st;
}
