/* Parameter arena: one flat float array, named views into it, and the
 * table of checkpoint tensors (one per layer slice). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "selfsup/rng.h"

/* Sizes (in floats) of the 16 parameter arrays, in arena order. */
static void param_sizes(const ss_model_config *c, size_t sz[SS_N_PARAM_ARRAYS]) {
    size_t V = (size_t)c->vocab_size, C = (size_t)c->d_model, L = (size_t)c->n_layer;
    size_t F = (size_t)c->d_ff, maxT = (size_t)c->max_seq;
    size_t s[SS_N_PARAM_ARRAYS] = {V * C,     maxT * C,  L * C,     L * C,     L * 3 * C * C, L * 3 * C,
                                   L * C * C, L * C,     L * C,     L * C,     L * F * C,     L * F,
                                   L * C * F, L * C,     C,         C};
    memcpy(sz, s, sizeof s);
}

size_t ss_params_count(const ss_model_config *c) {
    size_t sz[SS_N_PARAM_ARRAYS], n = 0;
    param_sizes(c, sz);
    for (int i = 0; i < SS_N_PARAM_ARRAYS; i++) n += sz[i];
    return n;
}

void ss_params_views(ss_params *p, float *mem, const ss_model_config *c) {
    size_t sz[SS_N_PARAM_ARRAYS];
    param_sizes(c, sz);
    float **ptrs[SS_N_PARAM_ARRAYS] = {&p->wte,  &p->wpe,      &p->ln1w,     &p->ln1b, &p->qkvw, &p->qkvb,
                                       &p->attprojw, &p->attprojb, &p->ln2w, &p->ln2b, &p->fcw,  &p->fcb,
                                       &p->fcprojw,  &p->fcprojb,  &p->lnfw, &p->lnfb};
    for (int i = 0; i < SS_N_PARAM_ARRAYS; i++) {
        *ptrs[i] = mem;
        mem += sz[i];
    }
}

/* Checkpoint names of the per-layer arrays (NULL for the global ones). */
static const char *const LAYER_NAMES[SS_N_PARAM_ARRAYS] = {
    NULL, NULL, "ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias",
    "attn.proj.weight", "attn.proj.bias", "ln2.weight", "ln2.bias", "mlp.fc.weight", "mlp.fc.bias",
    "mlp.proj.weight", "mlp.proj.bias", NULL, NULL};

static void add_tensor(ss_param_info *t, const char *name, int ndim, int64_t d0, int64_t d1,
                       size_t offset, int decay) {
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 1;
    t->numel = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    t->offset = offset;
    t->decay = decay;
}

/* The tensor table in arena order: embeddings, then layer by layer within
 * each stacked array, then ln_f. Decay only on 2-D Linear weights. */
size_t ss_params_table(const ss_model_config *c, ss_param_info **out) {
    size_t sz[SS_N_PARAM_ARRAYS], L = (size_t)c->n_layer, C = (size_t)c->d_model;
    size_t F = (size_t)c->d_ff, n = 0, off = 0;
    param_sizes(c, sz);
    ss_param_info *t = calloc(4 + 12 * L, sizeof *t);
    if (!t) return 0;
    /* per-layer shapes: {rows, cols} (cols 0 = 1-D) */
    const int64_t shp[SS_N_PARAM_ARRAYS][2] = {
        {0, 0}, {0, 0}, {C, 0}, {C, 0}, {3 * C, C}, {3 * C, 0}, {C, C}, {C, 0},
        {C, 0}, {C, 0}, {F, C}, {F, 0}, {C, F}, {C, 0}, {0, 0}, {0, 0}};
    add_tensor(&t[n++], "embeddings.token.weight", 2, c->vocab_size, c->d_model, off, 0);
    off += sz[0];
    add_tensor(&t[n++], "embeddings.position.weight", 2, c->max_seq, c->d_model, off, 0);
    off += sz[1];
    for (int a = 2; a < 14; a++) {
        for (size_t l = 0; l < L; l++) {
            char name[64];
            snprintf(name, sizeof name, "blocks.%zu.%s", l, LAYER_NAMES[a]);
            int ndim = shp[a][1] ? 2 : 1;
            add_tensor(&t[n++], name, ndim, shp[a][0], shp[a][1], off + l * (sz[a] / L), ndim == 2);
        }
        off += sz[a];
    }
    add_tensor(&t[n++], "ln_f.weight", 1, c->d_model, 0, off, 0);
    off += sz[14];
    add_tensor(&t[n++], "ln_f.bias", 1, c->d_model, 0, off, 0);
    *out = t;
    return n;
}

/* GPT-2 init: N(0, 0.02); residual projections N(0, 0.02/sqrt(2L)) so the
 * residual stream's variance does not grow with depth; biases 0; LN 1, 0. */
void ss_model_init_weights(ss_model *m, uint64_t seed) {
    ss_rng rng;
    ss_rng_seed(&rng, seed);
    const ss_model_config *c = &m->cfg;
    float resid_std = 0.02f / sqrtf(2.0f * (float)c->n_layer);
    memset(m->params, 0, m->n_params * sizeof(float));
    for (size_t i = 0; i < m->n_tensors; i++) {
        const ss_param_info *t = &m->tensors[i];
        float *w = m->params + t->offset;
        const char *n = t->name;
        size_t len = strlen(n);
        int is_ln_weight = strstr(n, "ln") && len > 7 && strcmp(n + len - 7, ".weight") == 0 && t->ndim == 1;
        if (is_ln_weight) {
            for (size_t k = 0; k < t->numel; k++) w[k] = 1.0f;
        } else if (t->ndim == 2) {
            float std = (strstr(n, "attn.proj.weight") || strstr(n, "mlp.proj.weight")) ? resid_std : 0.02f;
            for (size_t k = 0; k < t->numel; k++) w[k] = std * (float)ss_rng_normal(&rng);
        }
    }
}
