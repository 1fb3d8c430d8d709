/* Internals shared by the model's source files. */
#ifndef SELFSUP_MODEL_INTERNAL_H
#define SELFSUP_MODEL_INTERNAL_H

#include "selfsup/model.h"
#include "selfsup/rng.h"

/* Activation views for one batch shape; per-layer buffers are stacked [L, ...]. */
typedef struct {
    float *emb;                           /* [BT, E] embeddings before projection (E != C) */
    float *encoded;                       /* [BT, C] embeddings (after dropout, projection) */
    float *ln1, *ln1_mean, *ln1_rstd;     /* [L,BT,C], [L,BT], [L,BT] */
    float *qkv;                           /* [L,BT,3C] */
    float *atty;                          /* [L,BT,C] attention output (pre-projection) */
    float *att_lse;                       /* [L,B,NH,T] */
    float *res2;                          /* [L,BT,C] residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd;     /* [L,BT,C], [L,BT], [L,BT] */
    float *fch, *fch_gelu;                /* [L,BT,F]; after a training forward fch holds
                                             gelu'(pre-activation), all the backward needs */
    float *res3;                          /* [L,BT,C] block output */
    float *lnf, *lnf_mean, *lnf_rstd;     /* [BT,C], [BT], [BT] hidden states */
    float *tmp;                           /* [BT,C] projection output before dropout */
    /* backward */
    float *dres, *dhidden, *dtmp, *dbuf;  /* [BT,C] each */
    float *dqkv;                          /* [BT,3C] */
    float *demb;                          /* [BT, E] (E != C) */
    float *dfch, *dfch_gelu;              /* [BT,F] */
} ss_acts;

struct ss_model {
    ss_model_config cfg;
    int shared_emb; /* embeddings are views into another model's arena */
    size_t n_params;
    float *params, *grads;
    ss_params p, g;
    size_t n_tensors;
    ss_param_info *tensors;
    /* activations for the current batch shape */
    int B, T;
    size_t acts_cap_rows; /* rows (B*T) the activation arena holds */
    float *acts_mem;
    ss_acts a;
    /* last forward's inputs, needed by the backward */
    const int32_t *tokens;
    const uint8_t *key_valid;
    int train;
    int causal; /* attention masks keys after the query: a decoder's, or an encoder's causal steps (ss_model_set_causal) */
    uint64_t dropout_seed;
    ss_block_grads_fn block_hook; /* ss_model_set_block_hook */
    void *block_hook_ctx;
    size_t row0; /* the batch's first sequence in a larger batch (ss_model_set_row_offset): dropout masks */
    /* head scratch (src/model/lm_head.c, disc_head.c, cls_head.c): one block of floats
     * for gathered rows and a logits chunk, one of ints */
    size_t head_cap_floats, head_cap_ints;
    float *head_mem;
    int32_t *head_ints;
};

size_t ss_params_count(const ss_model_config *c, int shared_emb);
/* Grow the head scratch to at least nf floats and ni ints. */
ss_status ss_head_scratch(ss_model *m, size_t nf, size_t ni, ss_error *err);
/* SS_ERR_ARG unless the model has an LM or MLM head (src/model/lm_head.c). */
ss_status ss_need_lm_head(const ss_model *m, ss_error *err);
/* Scratch of the LM head for `rows` target positions (src/model/lm_head.c). */
size_t ss_lm_head_bytes(const ss_model_config *c, size_t rows);
void ss_params_views(ss_params *p, float *mem, const ss_model_config *c, int shared_emb);
size_t ss_params_table(const ss_model_config *c, int shared_emb, ss_param_info **out);

/* Seed of dropout site `site` (0: embeddings, 1+2l: attention, 2+2l: MLP,
 * 2L+1: the classification head's pooled vector). */
static inline uint64_t ss_dropout_site_seed(uint64_t seed, int site) {
    return seed * 0x9E3779B97F4A7C15ull + (uint64_t)site * 0xD1B54A32D192ED03ull + 1;
}

#endif
