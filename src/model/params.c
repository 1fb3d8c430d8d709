/* Parameter arena: one flat float array, named views into it, and the table
 * of checkpoint tensors (one per layer slice), all from one descriptor list
 * so sizes, views, names, weight decay and init cannot drift apart. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "selfsup/gemm.h"
#include "selfsup/rng.h"

typedef enum { INIT_NORMAL, INIT_RESID, INIT_ONES, INIT_ZEROS } init_kind;

typedef struct {
    const char *name;  /* checkpoint name; per-layer arrays get "blocks.{l}." in front */
    int per_layer;
    int64_t rows, cols; /* cols == 0: 1-D */
    int decay;          /* AdamW weight decay: 2-D Linear weights only */
    init_kind init;
    size_t view;        /* offsetof(ss_params, field) */
    int head;           /* belongs to the output head (these come last) */
} array_desc;

#define MAX_ARRAYS 32
#define V_(f) offsetof(ss_params, f)

/* The arrays of a model, in arena order. Embeddings are absent when shared
 * (an RTD generator uses the discriminator's). The head's own arrays come
 * last, so a frozen body is one prefix of the arena. */
static int describe(const ss_model_config *c, int shared_emb, array_desc d[MAX_ARRAYS]) {
    int64_t V = c->vocab_size, C = c->d_model, F = c->d_ff, T = c->max_seq;
    int64_t E = c->d_embed > 0 ? c->d_embed : C;
    int n = 0, bias = !c->no_bias; /* the body's biases (the heads keep theirs) */
#define ADD(nm, pl, r, k, dec, in, f) d[n++] = (array_desc){nm, pl, r, k, dec, in, V_(f), 0}
#define BIAS(nm, pl, r, f) do { if (bias) ADD(nm, pl, r, 0, 0, INIT_ZEROS, f); } while (0)
#define HEAD(nm, r, k, dec, in, f) d[n++] = (array_desc){nm, 0, r, k, dec, in, V_(f), 1}
    if (!shared_emb) {
        ADD("embeddings.token.weight", 0, V, E, 0, INIT_NORMAL, wte);
        ADD("embeddings.position.weight", 0, T, E, 0, INIT_NORMAL, wpe);
    }
    if (E != C) {
        ADD("embeddings.project.weight", 0, C, E, 1, INIT_NORMAL, projw);
        BIAS("embeddings.project.bias", 0, C, projb);
    }
    ADD("ln1.weight", 1, C, 0, 0, INIT_ONES, ln1w);
    BIAS("ln1.bias", 1, C, ln1b);
    ADD("attn.qkv.weight", 1, 3 * C, C, 1, INIT_NORMAL, qkvw);
    BIAS("attn.qkv.bias", 1, 3 * C, qkvb);
    ADD("attn.proj.weight", 1, C, C, 1, INIT_RESID, attprojw);
    BIAS("attn.proj.bias", 1, C, attprojb);
    ADD("ln2.weight", 1, C, 0, 0, INIT_ONES, ln2w);
    BIAS("ln2.bias", 1, C, ln2b);
    ADD("mlp.fc.weight", 1, F, C, 1, INIT_NORMAL, fcw);
    BIAS("mlp.fc.bias", 1, F, fcb);
    ADD("mlp.proj.weight", 1, C, F, 1, INIT_RESID, fcprojw);
    BIAS("mlp.proj.bias", 1, C, fcprojb);
    ADD("ln_f.weight", 0, C, 0, 0, INIT_ONES, lnfw);
    BIAS("ln_f.bias", 0, C, lnfb);
    if (c->head == SS_HEAD_MLM) {
        HEAD("mlm_head.dense.weight", E, C, 1, INIT_NORMAL, mlm_dw);
        HEAD("mlm_head.dense.bias", E, 0, 0, INIT_ZEROS, mlm_db);
        HEAD("mlm_head.ln.weight", E, 0, 0, INIT_ONES, mlm_lnw);
        HEAD("mlm_head.ln.bias", E, 0, 0, INIT_ZEROS, mlm_lnb);
        HEAD("mlm_head.bias", V, 0, 0, INIT_ZEROS, mlm_bias);
    } else if (c->head == SS_HEAD_DISC) {
        HEAD("disc_head.dense.weight", C, C, 1, INIT_NORMAL, disc_dw);
        HEAD("disc_head.dense.bias", C, 0, 0, INIT_ZEROS, disc_db);
        HEAD("disc_head.out.weight", 1, C, 1, INIT_NORMAL, disc_ow);
        HEAD("disc_head.out.bias", 1, 0, 0, INIT_ZEROS, disc_ob);
    } else if (c->head == SS_HEAD_CLS) {
        int64_t K = c->n_classes;
        if (c->pooler) {
            HEAD("cls_head.pooler.weight", C, C, 1, INIT_NORMAL, cls_pw);
            HEAD("cls_head.pooler.bias", C, 0, 0, INIT_ZEROS, cls_pb);
        }
        HEAD("cls_head.out.weight", K, C, 1, INIT_NORMAL, cls_ow);
        HEAD("cls_head.out.bias", K, 0, 0, INIT_ZEROS, cls_ob);
    }
#undef ADD
#undef BIAS
#undef HEAD
    return n;
}

static size_t numel(const array_desc *a, const ss_model_config *c) {
    size_t n = (size_t)a->rows * (size_t)(a->cols ? a->cols : 1);
    return a->per_layer ? n * (size_t)c->n_layer : n;
}

size_t ss_params_count(const ss_model_config *c, int shared_emb) {
    array_desc d[MAX_ARRAYS];
    size_t n = 0;
    int na = describe(c, shared_emb, d);
    for (int i = 0; i < na; i++) n += numel(&d[i], c);
    return n;
}

size_t ss_model_head_offset(const ss_model *m) {
    array_desc d[MAX_ARRAYS];
    size_t off = 0;
    int na = describe(&m->cfg, m->shared_emb, d);
    for (int i = 0; i < na && !d[i].head; i++) off += numel(&d[i], &m->cfg);
    return off;
}

void ss_params_views(ss_params *p, float *mem, const ss_model_config *c, int shared_emb) {
    array_desc d[MAX_ARRAYS];
    int na = describe(c, shared_emb, d);
    memset(p, 0, sizeof *p);
    for (int i = 0; i < na; i++) {
        *(float **)((char *)p + d[i].view) = mem;
        mem += numel(&d[i], c);
    }
}

/* One checkpoint tensor per array, and per layer for the stacked ones. */
size_t ss_params_table(const ss_model_config *c, int shared_emb, ss_param_info **out) {
    array_desc d[MAX_ARRAYS];
    int na = describe(c, shared_emb, d);
    size_t L = (size_t)c->n_layer, n = 0, off = 0;
    ss_param_info *t = calloc((size_t)na * L, sizeof *t);
    if (!t) return 0;
    int after_blocks = 0; /* arrays after the blocks (ln_f, heads) sit at depth L + 1 */
    for (int i = 0; i < na; i++) {
        size_t reps = d[i].per_layer ? L : 1, each = numel(&d[i], c) / reps;
        if (d[i].per_layer) after_blocks = 1;
        for (size_t l = 0; l < reps; l++, n++) {
            if (d[i].per_layer) snprintf(t[n].name, sizeof t[n].name, "blocks.%zu.%s", l, d[i].name);
            else snprintf(t[n].name, sizeof t[n].name, "%s", d[i].name);
            t[n].ndim = d[i].cols ? 2 : 1;
            t[n].shape[0] = d[i].rows;
            t[n].shape[1] = d[i].cols ? d[i].cols : 1;
            t[n].offset = off + l * each;
            t[n].numel = each;
            t[n].decay = d[i].decay;
            t[n].init = (int)d[i].init;
            t[n].depth = d[i].per_layer ? (int)l + 1 : after_blocks ? (int)L + 1 : 0;
        }
        off += numel(&d[i], c);
    }
    *out = t;
    return n;
}

/* GPT-2 init: N(0, 0.02); residual projections N(0, 0.02/sqrt(2L)) so the
 * residual stream's variance does not grow with depth; biases 0; LN 1, 0. */
void ss_model_init_weights(ss_model *m, uint64_t seed) {
    ss_rng rng;
    ss_rng_seed(&rng, seed);
    float resid_std = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layer);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ss_param_info *t = &m->tensors[i];
        float *w = m->params + t->offset;
        for (size_t k = 0; k < t->numel; k++) {
            switch ((init_kind)t->init) {
            case INIT_NORMAL: w[k] = 0.02f * (float)ss_rng_normal(&rng); break;
            case INIT_RESID: w[k] = resid_std * (float)ss_rng_normal(&rng); break;
            case INIT_ONES: w[k] = 1.0f; break;
            case INIT_ZEROS: w[k] = 0.0f; break;
            }
        }
    }
    ss_gemm_weights_changed();
}
