/* Incremental decoding with a KV cache.
 *
 * A decoder's attention at position t only reads the keys and values of
 * positions 0..t, and those never change once computed (causal mask), so
 * they are cached per layer: kv [L, max_seq, 3C] holds the q|k|v rows of
 * every position seen (the layout of the model's own q|k|v activations; the
 * q part of a cached row is not read again). A new token then costs one row
 * through every matrix (weights read once) plus attention over t cached
 * rows: O(params + L t C) instead of a full forward pass's O(t params + L t^2 C).
 *
 * The model runs its own blocks on the new rows (ss_model_body_forward_kv):
 * a prompt as one batched pass (sgemm over all its rows), a step as the
 * same blocks on one row. The cache is allocated once, in create; the
 * rows' other activations are the model's. */
#include <stdlib.h>

#include "selfsup/generate.h"

struct ss_decoder_state {
    ss_model *m;
    int max_seq, V;
    int len;   /* positions 0..len-1 are in the cache */
    float *kv; /* [L, max_seq, 3C] */
};

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
    size_t nf = ss_model_kv_floats(c);
    if (s) s->kv = malloc(nf * sizeof(float));
    if (!s || !s->kv) {
        free(s);
        return ss_fail(err, SS_ERR_NOMEM, "out of memory for the KV cache (%zu MB)", (nf * sizeof(float)) >> 20);
    }
    s->m = m;
    s->max_seq = c->max_seq;
    s->V = c->vocab_size;
    *out = s;
    return SS_OK;
}

void ss_decoder_state_free(ss_decoder_state *s) {
    if (!s) return;
    free(s->kv);
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

/* The tokens go through the model's blocks as new rows after the cached
 * ones; the logits are those of the last row. The state is untouched on
 * an error. */
ss_status ss_decoder_prefill(ss_decoder_state *s, const int32_t *tokens, int n, float *logits, ss_error *err) {
    if (n < 1) return ss_fail(err, SS_ERR_ARG, "prefill needs at least one token (got %d)", n);
    ss_status st = check_room(s, n, err);
    for (int i = 0; !st && i < n; i++) st = check_token(s, tokens[i], s->len + i, err);
    if (!st) st = ss_model_body_forward_kv(s->m, s->kv, s->len, tokens, n, NULL, err);
    int32_t last = n - 1;
    if (!st) st = ss_lm_head_logits(s->m, &last, 1, logits, err);
    if (!st) s->len += n;
    return st;
}

ss_status ss_decoder_step(ss_decoder_state *s, int32_t token, float *logits, ss_error *err) {
    return ss_decoder_prefill(s, &token, 1, logits, err);
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
