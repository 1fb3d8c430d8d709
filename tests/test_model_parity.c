/* Whole-model parity with the PyTorch reference (tests/torch_ref.py): for each
 * golden case, the loss and every parameter gradient on the same batch, and
 * the parameters after 10 AdamW steps (with clipping), must match to 1e-4
 * relative; ELECTRA cases (rtd/) and classification cases (cls/) compare
 * the loss and gradients. Cases come from tests/golden/ (committed), or from
 * the directory in $SS_GOLDEN_DIR (make check-torch regenerates them there). */
#include <dirent.h>
#include <math.h>

#include <cJSON.h>

#include "testutil.h"

#include "selfsup/gemm.h"
#include "selfsup/model.h"
#include "selfsup/optim.h"
#include "selfsup/safetensors.h"

#define TOL 1e-4

typedef struct {
    ss_safetensors *f;
    ss_model *m;
    const int32_t *tokens, *targets;
    const uint8_t *key_valid;
    int B, T;
    int64_t n_targets;
} gcase;

static void open_case(gcase *c, const char *path) {
    ss_error err = {0};
    memset(c, 0, sizeof *c);
    CHECK_OK(ss_safetensors_open(&c->f, path, &err), &err);
    ss_model_config cfg;
    const char *cj = ss_safetensors_meta(c->f, "config");
    assert_non_null(cj);
    CHECK_OK(ss_config_from_json(&cfg, cj, path, &err), &err);
    CHECK_OK(ss_model_create(&c->m, &cfg, &err), &err);
    for (size_t i = 0; i < ss_model_num_tensors(c->m); i++) {
        const ss_param_info *p = ss_model_tensor(c->m, i);
        const float *d;
        CHECK_OK(ss_safetensors_get_f32(c->f, p->name, p->ndim, p->shape, &d, &err), &err);
        memcpy(ss_model_params(c->m) + p->offset, d, p->numel * sizeof(float));
    }
    const ss_st_info *tk = ss_safetensors_find(c->f, "input.tokens");
    assert_non_null(tk);
    c->B = (int)tk->shape[0];
    c->T = (int)tk->shape[1];
    int64_t shp[2] = {c->B, c->T};
    const void *p;
    CHECK_OK(ss_safetensors_get(c->f, "input.tokens", SS_I32, 2, shp, &p, &err), &err);
    c->tokens = p;
    CHECK_OK(ss_safetensors_get(c->f, "input.targets", SS_I32, 2, shp, &p, &err), &err);
    c->targets = p;
    CHECK_OK(ss_safetensors_get(c->f, "input.key_valid", SS_U8, 2, shp, &p, &err), &err);
    c->key_valid = cfg.kind == SS_ENCODER ? p : NULL;
    for (int i = 0; i < c->B * c->T; i++) c->n_targets += c->targets[i] >= 0;
}

static void close_case(gcase *c) {
    ss_model_free(c->m);
    ss_safetensors_close(c->f);
}

static double step(gcase *c) {
    ss_error err = {0};
    ss_loss_stats ls;
    ss_batch b = {c->tokens, c->targets, c->key_valid, c->B, c->T};
    ss_model_zero_grads(c->m);
    CHECK_OK(ss_model_forward_backward(c->m, &b, 1.0f / (float)c->n_targets, 0, &ls, &err), &err);
    assert_int_equal(ls.n_targets, c->n_targets);
    return ls.loss_sum / (double)ls.n_targets;
}

/* max |a-b| / max |b| over a tensor. */
static double rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

/* ||a-b||_2 / ||b||_2 over a tensor. */
static double rel_err_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The key bias has an exactly zero gradient in exact arithmetic (adding
 * q.b_k to every score of a row leaves the softmax unchanged), so after
 * AdamW, which divides by sqrt(v), its trajectory is amplified rounding noise
 * in ANY implementation. Those C entries are compared separately: each may
 * move at most lr per step (Adam's update bound) plus its weight decay. */
static double key_bias_excluded_err(gcase *c, const ss_param_info *p, const float *mine, const float *ref,
                                    double max_move) {
    size_t C = (size_t)ss_model_config_of(c->m)->d_model;
    const float *init;
    ss_error err = {0};
    CHECK_OK(ss_safetensors_get_f32(c->f, p->name, 1, p->shape, &init, &err), &err);
    double e = fmax(rel_err(mine, ref, C), rel_err(mine + 2 * C, ref + 2 * C, C));
    for (size_t k = C; k < 2 * C; k++)
        if (fabs((double)mine[k] - init[k]) > max_move) fail_msg("%s[%zu] moved more than lr*steps", p->name, k);
    return e;
}

static void compare_tensors(gcase *c, const char *prefix, const float *mine, double max_move) {
    ss_error err = {0};
    char name[128];
    double worst = 0;
    for (size_t i = 0; i < ss_model_num_tensors(c->m); i++) {
        const ss_param_info *p = ss_model_tensor(c->m, i);
        const float *ref;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        CHECK_OK(ss_safetensors_get_f32(c->f, name, p->ndim, p->shape, &ref, &err), &err);
        int key_bias = max_move > 0 && strstr(p->name, "attn.qkv.bias");
        double e = key_bias ? key_bias_excluded_err(c, p, mine + p->offset, ref, max_move)
                            : rel_err(mine + p->offset, ref, p->numel);
        if (max_move > 0 && !key_bias) {
            /* After 10 AdamW steps, an element whose gradient is near zero
             * moves by up to lr depending on rounding (Adam divides by
             * sqrt(v)), so single elements may differ by a fraction of lr:
             * the tensor must match to 1e-4 in L2 norm and every element to
             * 1e-3 of the tensor's largest value. */
            double e2 = rel_err_l2(mine + p->offset, ref, p->numel);
            if (e2 > TOL) fail_msg("%s: L2 relative error %.3g > %g", name, e2, TOL);
            if (e > 10 * TOL) fail_msg("%s: max relative error %.3g > %g", name, e, 10 * TOL);
            e = e2;
        } else if (e > TOL) fail_msg("%s: relative error %.3g > %g", name, e, TOL);
        worst = fmax(worst, e);
    }
    printf("# %s*: worst relative error %.3g over %zu tensors\n", prefix, worst, ss_model_num_tensors(c->m));
}

static void test_loss_and_grads(void **state) {
    gcase c;
    open_case(&c, *state);
    double loss = step(&c);
    const ss_st_info *el = ss_safetensors_find(c.f, "expected.loss");
    assert_non_null(el);
    double ref = ((const double *)el->data)[0];
    printf("# %s: loss %.8f vs torch %.8f\n", (const char *)*state, loss, ref);
    assert_true(fabs(loss - ref) <= TOL * fabs(ref));
    compare_tensors(&c, "grad.", ss_model_grads(c.m), 0);
    close_case(&c);
}

/* Mixed precision: the same batch's loss and gradients with every matrix
 * product on bf16-rounded inputs (fp32 accumulation; LayerNorm, softmax,
 * GELU, losses in fp32) against the fp32 ones. Each rounded product adds a
 * relative error of order u = 2^-8 (8 significant bits) to what flows
 * through it; a weight's gradient passes through at most 2(4L + 2) products
 * (4 per layer and the head, forward and backward), so every tensor's
 * gradient must agree to 2(4L + 2) u in L2 norm, the loss to u. oneDNN's
 * f32 backend must agree to fp32 tolerance (1e-4, as PyTorch). */
static void test_bf16_grads(void **state) {
    gcase c;
    open_case(&c, *state);
    ss_error err = {0};
    size_t n = ss_model_num_params(c.m);
    float *g32 = malloc(n * sizeof *g32);
    assert_non_null(g32);
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
    double loss32 = step(&c);
    memcpy(g32, ss_model_grads(c.m), n * sizeof *g32);
    double old_small = ss_gemm_set_small(0); /* the test's products are small: route them all */
    int L = ss_model_config_of(c.m)->n_layer;
    double tol = 2.0 * (4 * L + 2) * 0x1p-8;
    ss_gemm_backend bes[2] = {SS_GEMM_DNNL_F32, ss_gemm_available(SS_GEMM_DNNL_BF16) ? SS_GEMM_DNNL_BF16 : SS_GEMM_REF_BF16};
    for (int k = 0; k < 2; k++) {
        if (!ss_gemm_available(bes[k])) continue;
        CHECK_OK(ss_gemm_use(bes[k], &err), &err);
        ss_gemm_weights_changed();
        double loss = step(&c), t = k == 0 ? TOL : tol, worst = 0;
        assert_true(fabs(loss - loss32) <= (k == 0 ? TOL : 0x1p-8) * fabs(loss32));
        for (size_t i = 0; i < ss_model_num_tensors(c.m); i++) {
            const ss_param_info *p = ss_model_tensor(c.m, i);
            double e = rel_err_l2(ss_model_grads(c.m) + p->offset, g32 + p->offset, p->numel);
            if (e > t) fail_msg("%s: %s gradient differs from fp32 by %.3g (L2) > %.3g", p->name,
                                ss_gemm_backend_name(bes[k]), e, t);
            worst = fmax(worst, e);
        }
        if (k == 1) assert_true(worst > 0); /* the rounding did happen */
        printf("# %s: loss %.6f vs fp32 %.6f; worst gradient L2 difference %.3g (bound %.3g)\n",
               ss_gemm_backend_name(bes[k]), loss, loss32, worst, t);
    }
    ss_gemm_set_small(old_small);
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
    free(g32);
    close_case(&c);
}

/* Gradients of model m against "grad.<prefix><name>" in f. */
static void compare_grads(const ss_safetensors *f, ss_model *m, const char *prefix) {
    ss_error err = {0};
    char name[160];
    double worst = 0;
    for (size_t i = 0; i < ss_model_num_tensors(m); i++) {
        const ss_param_info *p = ss_model_tensor(m, i);
        const float *ref;
        snprintf(name, sizeof name, "grad.%s%s", prefix, p->name);
        CHECK_OK(ss_safetensors_get_f32(f, name, p->ndim, p->shape, &ref, &err), &err);
        double e = rel_err(ss_model_grads(m) + p->offset, ref, p->numel);
        if (e > TOL) fail_msg("%s: relative error %.3g > %g", name, e, TOL);
        worst = fmax(worst, e);
    }
    printf("# grad.%s*: worst relative error %.3g over %zu tensors\n", prefix, worst, ss_model_num_tensors(m));
}

static void load_params(const ss_safetensors *f, ss_model *m, const char *prefix) {
    ss_error err = {0};
    char name[160];
    for (size_t i = 0; i < ss_model_num_tensors(m); i++) {
        const ss_param_info *p = ss_model_tensor(m, i);
        const float *d;
        snprintf(name, sizeof name, "%s%s", prefix, p->name);
        CHECK_OK(ss_safetensors_get_f32(f, name, p->ndim, p->shape, &d, &err), &err);
        memcpy(ss_model_params(m) + p->offset, d, p->numel * sizeof(float));
    }
}

static const void *input(const ss_safetensors *f, const char *name, ss_dtype dt, const int64_t *shp) {
    ss_error err = {0};
    const void *p;
    CHECK_OK(ss_safetensors_get(f, name, dt, 2, shp, &p, &err), &err);
    return p;
}

static double expected(const ss_safetensors *f, const char *name) {
    const ss_st_info *e = ss_safetensors_find(f, name);
    assert_non_null(e);
    return ((const double *)e->data)[0];
}

/* One ELECTRA step of case f on discriminator d and generator g (their
 * gradients zeroed first): generator MLM loss + disc_weight x discriminator
 * BCE, with the masks and the generator's samples given by the reference;
 * the two losses and their weighted sum must match it. */
static void rtd_step(const ss_safetensors *f, const char *path, ss_model *d, ss_model *g) {
    ss_error err = {0};
    double w = atof(ss_safetensors_meta(f, "disc_weight"));
    const ss_st_info *mt = ss_safetensors_find(f, "input.masked_tokens");
    assert_non_null(mt);
    int B = (int)mt->shape[0], T = (int)mt->shape[1];
    int64_t shp[2] = {B, T};
    const int32_t *targets = input(f, "input.targets", SS_I32, shp), *dtok = input(f, "input.disc_tokens", SS_I32, shp);
    const uint8_t *kv = input(f, "input.key_valid", SS_U8, shp), *rep = input(f, "input.replaced", SS_U8, shp);
    int64_t nm = 0, nv = 0;
    for (int i = 0; i < B * T; i++) { nm += targets[i] >= 0; nv += kv[i]; }
    ss_model_zero_grads(d);
    ss_model_zero_grads(g);
    ss_loss_stats gs;
    ss_disc_stats ds;
    CHECK_OK(ss_model_body_forward(g, mt->data, kv, B, T, 1, 0, NULL, &err), &err);
    CHECK_OK(ss_lm_head(g, targets, 1.0f / (float)nm, 1, &gs, &err), &err);
    ss_model_body_backward(g);
    CHECK_OK(ss_model_body_forward(d, dtok, kv, B, T, 1, 0, NULL, &err), &err);
    CHECK_OK(ss_disc_head(d, kv, rep, (float)(w / (double)nv), 1, NULL, &ds, &err), &err);
    ss_model_body_backward(d);
    double gl = gs.loss_sum / (double)nm, dl = ds.loss_sum / (double)ds.n;
    printf("# %s: gen loss %.8f vs %.8f, disc loss %.8f vs %.8f\n", path, gl, expected(f, "expected.gen_loss"), dl,
           expected(f, "expected.disc_loss"));
    assert_true(fabs(gl - expected(f, "expected.gen_loss")) <= TOL * fabs(gl));
    assert_true(fabs(dl - expected(f, "expected.disc_loss")) <= TOL * fabs(dl));
    assert_true(fabs(gl + w * dl - expected(f, "expected.loss")) <= TOL * fabs(gl + w * dl));
}

/* The token and position embeddings, which an ELECTRA pair may share. */
static int is_embedding(const char *name) {
    return !strcmp(name, "embeddings.token.weight") || !strcmp(name, "embeddings.position.weight");
}

/* The pair of case `path`: discriminator d, generator g sharing its
 * embeddings (own: 0) or with its own copy of them (own: 1). */
static void rtd_pair(const ss_safetensors *f, const char *path, int own, ss_model **d, ss_model **g) {
    ss_error err = {0};
    ss_model_config dc, gc;
    CHECK_OK(ss_config_from_json(&dc, ss_safetensors_meta(f, "config"), path, &err), &err);
    CHECK_OK(ss_config_from_json(&gc, ss_safetensors_meta(f, "generator_config"), path, &err), &err);
    CHECK_OK(ss_model_create(d, &dc, &err), &err);
    load_params(f, *d, "");
    if (!own) {
        CHECK_OK(ss_model_create_shared(g, &gc, *d, &err), &err);
        load_params(f, *g, "generator.");
        return;
    }
    CHECK_OK(ss_model_create(g, &gc, &err), &err);
    char name[160];
    for (size_t i = 0; i < ss_model_num_tensors(*g); i++) { /* the body the reference's, the embeddings d's */
        const ss_param_info *p = ss_model_tensor(*g, i);
        const float *src;
        int emb = is_embedding(p->name);
        snprintf(name, sizeof name, "%s%s", emb ? "" : "generator.", p->name);
        CHECK_OK(ss_safetensors_get_f32(f, name, p->ndim, p->shape, &src, &err), &err);
        memcpy(ss_model_params(*g) + p->offset, src, p->numel * sizeof(float));
    }
}

/* ELECTRA against the reference: the loss and every gradient (the shared
 * embeddings get both models' parts). */
static void test_rtd(void **state) {
    ss_error err = {0};
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, *state, &err), &err);
    ss_model *d, *g;
    rtd_pair(f, *state, 0, &d, &g);
    rtd_step(f, *state, d, g);
    compare_grads(f, d, "");
    compare_grads(f, g, "generator.");
    ss_model_free(g);
    ss_model_free(d);
    ss_safetensors_close(f);
}

/* The same step with a generator that has embeddings of its own
 * (--gen-embeddings own), starting as a copy of the discriminator's: the
 * losses are the reference's, every other gradient too, and each model's
 * embedding gradient is its own loss's part of the shared one, so the two
 * sum to the reference's and neither is zero. */
static void test_rtd_own_embeddings(void **state) {
    ss_error err = {0};
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, *state, &err), &err);
    ss_model *d, *g;
    rtd_pair(f, *state, 1, &d, &g);
    rtd_step(f, *state, d, g);
    char name[160];
    double worst = 0;
    for (size_t i = 0; i < ss_model_num_tensors(g); i++) {
        const ss_param_info *p = ss_model_tensor(g, i);
        const ss_param_info *q = ss_model_find_tensor(d, p->name);
        int emb = is_embedding(p->name);
        const float *ref;
        snprintf(name, sizeof name, "grad.%s%s", emb ? "" : "generator.", p->name);
        CHECK_OK(ss_safetensors_get_f32(f, name, p->ndim, p->shape, &ref, &err), &err);
        float *mine = malloc(p->numel * sizeof *mine);
        assert_non_null(mine);
        memcpy(mine, ss_model_grads(g) + p->offset, p->numel * sizeof *mine);
        if (emb) {
            assert_non_null(q);
            const float *dg = ss_model_grads(d) + q->offset;
            double gn = 0, dn = 0;
            for (size_t k = 0; k < p->numel; k++) {
                gn += (double)mine[k] * mine[k];
                dn += (double)dg[k] * dg[k];
                mine[k] += dg[k];
            }
            if (!(gn > 0 && dn > 0)) fail_msg("%s: generator part %g, discriminator part %g: want both", p->name, gn, dn);
        }
        double e = rel_err(mine, ref, p->numel);
        free(mine);
        if (e > TOL) fail_msg("%s%s: relative error %.3g > %g", emb ? "generator + discriminator " : "generator ",
                              p->name, e, TOL);
        worst = fmax(worst, e);
    }
    for (size_t i = 0; i < ss_model_num_tensors(d); i++) { /* the discriminator's other gradients */
        const ss_param_info *p = ss_model_tensor(d, i);
        if (is_embedding(p->name)) continue;
        const float *ref;
        snprintf(name, sizeof name, "grad.%s", p->name);
        CHECK_OK(ss_safetensors_get_f32(f, name, p->ndim, p->shape, &ref, &err), &err);
        double e = rel_err(ss_model_grads(d) + p->offset, ref, p->numel);
        if (e > TOL) fail_msg("discriminator %s: relative error %.3g > %g", p->name, e, TOL);
        worst = fmax(worst, e);
    }
    printf("# own embeddings: worst relative error %.3g\n", worst);
    ss_model_free(g);
    ss_model_free(d);
    ss_safetensors_close(f);
}

/* Sequence classification: pooled hidden state, optional pooler, classifier
 * and the class-weighted mean cross-entropy (labels -1 ignored); the loss,
 * the softmax probabilities and every gradient compare. */
static void test_cls(void **state) {
    ss_error err = {0};
    ss_safetensors *f;
    CHECK_OK(ss_safetensors_open(&f, *state, &err), &err);
    ss_model_config c;
    CHECK_OK(ss_config_from_json(&c, ss_safetensors_meta(f, "config"), *state, &err), &err);
    assert_int_equal(c.head, SS_HEAD_CLS);
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    load_params(f, m, "");
    const ss_st_info *tk = ss_safetensors_find(f, "input.tokens");
    assert_non_null(tk);
    int B = (int)tk->shape[0], T = (int)tk->shape[1], K = c.n_classes;
    int64_t shp[2] = {B, T}, shb[1] = {B}, shk[1] = {K}, shp_probs[2] = {B, K};
    const uint8_t *kv = input(f, "input.key_valid", SS_U8, shp);
    const int32_t *labels;
    const float *w = NULL;
    const void *p;
    CHECK_OK(ss_safetensors_get(f, "input.labels", SS_I32, 1, shb, &p, &err), &err);
    labels = p;
    if (ss_safetensors_find(f, "input.class_weights"))
        CHECK_OK(ss_safetensors_get_f32(f, "input.class_weights", 1, shk, &w, &err), &err);
    double wsum = 0;
    for (int b = 0; b < B; b++)
        if (labels[b] >= 0) wsum += w ? w[labels[b]] : 1.0;
    CHECK_OK(ss_safetensors_get(f, "expected.probs", SS_F64, 2, shp_probs, &p, &err), &err);
    const double *ref_probs = p;
    float *probs = malloc((size_t)B * K * sizeof *probs);
    assert_non_null(probs);
    ss_cls_stats s;
    ss_model_zero_grads(m);
    CHECK_OK(ss_model_body_forward(m, tk->data, kv, B, T, 1, 0, NULL, &err), &err);
    CHECK_OK(ss_cls_head(m, kv, labels, w, (float)(1.0 / wsum), 1, probs, &s, &err), &err);
    ss_model_body_backward(m);
    double loss = s.loss_sum / s.weight_sum, ref = expected(f, "expected.loss");
    printf("# %s: loss %.8f vs torch %.8f\n", (const char *)*state, loss, ref);
    assert_true(fabs(s.weight_sum - wsum) <= 1e-6 * wsum);
    assert_true(fabs(loss - ref) <= TOL * fabs(ref));
    for (int i = 0; i < B * K; i++)
        if (fabs(probs[i] - ref_probs[i]) > TOL) fail_msg("probs[%d] %.8f vs torch %.8f", i, probs[i], ref_probs[i]);
    compare_grads(f, m, "");
    free(probs);
    ss_model_free(m);
    ss_safetensors_close(f);
}

static double meta_num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_adamw_steps(void **state) {
    gcase c;
    ss_error err = {0};
    open_case(&c, *state);
    cJSON *h = cJSON_Parse(ss_safetensors_meta(c.f, "adamw"));
    assert_non_null(h);
    ss_adamw_hparams hp = {(float)meta_num(h, "lr"), (float)meta_num(h, "beta1"), (float)meta_num(h, "beta2"),
                           (float)meta_num(h, "eps"), (float)meta_num(h, "weight_decay"), 1.0f, 0};
    double clip = meta_num(h, "clip");
    int steps = (int)meta_num(h, "steps");
    cJSON_Delete(h);
    const ss_st_info *lref = ss_safetensors_find(c.f, "adamw.losses");
    assert_non_null(lref);
    ss_adamw opt;
    CHECK_OK(ss_adamw_init(&opt, ss_model_num_params(c.m), &err), &err);
    int clipped = 0;
    for (int s = 0; s < steps; s++) {
        double loss = step(&c), ref = ((const double *)lref->data)[s];
        if (fabs(loss - ref) > TOL * fabs(ref)) fail_msg("step %d: loss %.8f vs torch %.8f", s, loss, ref);
        clipped += ss_clip_grad_norm(ss_model_grads(c.m), ss_model_num_params(c.m), clip) > clip;
        ss_adamw_step(&opt, c.m, ss_model_params(c.m), ss_model_grads(c.m), &hp);
    }
    printf("# %s: %d of %d steps clipped\n", (const char *)*state, clipped, steps);
    compare_tensors(&c, "adamw.", ss_model_params(c.m), 1.01 * hp.lr * steps);
    ss_adamw_free(&opt);
    close_case(&c);
}

/* Add one test per *.safetensors file of dir (kind: 0 LM/MLM, 1 rtd, 2 cls). */
static size_t add_cases(const char *dir, int kind, struct CMUnitTest *tests, size_t n, char (*paths)[512],
                        char (*names)[300], size_t *nc) {
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && *nc < 64) {
        size_t len = strlen(e->d_name);
        if (len < 12 || strcmp(e->d_name + len - 12, ".safetensors") != 0) continue;
        snprintf(paths[*nc], 512, "%s/%s", dir, e->d_name);
        if (kind == 1) {
            snprintf(names[3 * *nc], 300, "rtd %s: losses and gradients", e->d_name);
            tests[n++] = (struct CMUnitTest){names[3 * *nc], test_rtd, NULL, NULL, paths[*nc]};
            snprintf(names[3 * *nc + 1], 300, "rtd %s: a generator with its own embeddings", e->d_name);
            tests[n++] = (struct CMUnitTest){names[3 * *nc + 1], test_rtd_own_embeddings, NULL, NULL, paths[*nc]};
        } else if (kind == 2) {
            snprintf(names[3 * *nc], 300, "cls %s: loss, probabilities and gradients", e->d_name);
            tests[n++] = (struct CMUnitTest){names[3 * *nc], test_cls, NULL, NULL, paths[*nc]};
        } else {
            snprintf(names[3 * *nc], 300, "%s: loss and gradients", e->d_name);
            snprintf(names[3 * *nc + 1], 300, "%s: 10 AdamW steps", e->d_name);
            tests[n++] = (struct CMUnitTest){names[3 * *nc], test_loss_and_grads, NULL, NULL, paths[*nc]};
            tests[n++] = (struct CMUnitTest){names[3 * *nc + 1], test_adamw_steps, NULL, NULL, paths[*nc]};
            snprintf(names[3 * *nc + 2], 300, "%s: bf16 and oneDNN f32 gradients against fp32", e->d_name);
            tests[n++] = (struct CMUnitTest){names[3 * *nc + 2], test_bf16_grads, NULL, NULL, paths[*nc]};
        }
        (*nc)++;
    }
    if (d) closedir(d);
    return n;
}

int main(void) {
    const char *dir = getenv("SS_GOLDEN_DIR");
    if (!dir || !*dir) dir = "tests/golden";
    static char paths[64][512], names[192][300], rtd_dir[600], cls_dir[600];
    struct CMUnitTest tests[192];
    size_t nc = 0, n = add_cases(dir, 0, tests, 0, paths, names, &nc), plain = nc;
    snprintf(rtd_dir, sizeof rtd_dir, "%s/rtd", dir);
    snprintf(cls_dir, sizeof cls_dir, "%s/cls", dir);
    n = add_cases(rtd_dir, 1, tests, n, paths, names, &nc);
    size_t rtd = nc - plain;
    n = add_cases(cls_dir, 2, tests, n, paths, names, &nc);
    if (plain == 0 || rtd == 0 || nc == plain + rtd) {
        fprintf(stderr, "golden cases missing: need *.safetensors in %s, %s and %s\n", dir, rtd_dir, cls_dir);
        return 1;
    }
    return _cmocka_run_group_tests("model parity", tests, n, NULL, NULL);
}
