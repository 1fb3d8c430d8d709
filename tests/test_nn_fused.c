/* Fused training kernels against the unfused ones they replace:
 *   - the GELU pair that keeps gelu'(x) from the forward and sums the bias
 *     gradient in its backward pass, vs ss_bias_gelu_forward +
 *     ss_gelu_backward_set + ss_linear_backward's bias sum;
 *   - column sums (bias gradients) give the same bits on 1 and 2 threads;
 *   - AdamW with the clipping factor folded in, vs ss_scale_grads +
 *     ss_adamw_step, and both vs a scalar transcription of torch's update;
 *   - AdamW's layer-wise learning-rate decay (each tensor's depth and rate);
 *   - the clipping factor and the gradient norm;
 *   - NULL biases (a model without them) give what zero biases give.
 * (Finite-difference checks of the GELU pair are in test_nn_gradcheck.c.) */
#include "testutil.h"

#include <math.h>
#include <omp.h>

#include "selfsup/model.h"
#include "selfsup/nn.h"
#include "selfsup/optim.h"

static float frand(uint64_t *s, float a) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return a * ((float)(*s >> 40) / (float)(1u << 24) * 2.0f - 1.0f);
}

static float *rand_vec(size_t n, float a, uint64_t seed) {
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = frand(&seed, a);
    return v;
}

static float *copy_vec(const float *x, size_t n) {
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    memcpy(v, x, n * sizeof *v);
    return v;
}

static void assert_same_bits(const float *a, const float *b, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            fail_msg("%s[%zu]: %.9g vs %.9g (not bit-identical)", what, i, (double)a[i], (double)b[i]);
}

/* Sizes big enough to take the parallel path (N * F >= 32768) with a column
 * count that is not a multiple of the vector width. */
enum { GN = 67, GF = 1000 };

static void test_gelu_grad_pair_vs_unfused(void **state) {
    (void)state;
    size_t n = (size_t)GN * GF;
    float *x = rand_vec(n, 5.0f, 1), *b = rand_vec(GF, 1.0f, 2), *dout = rand_vec(n, 1.0f, 3);
    float *x_old = copy_vec(x, n), *x_new = copy_vec(x, n);
    float *out_old = malloc(n * sizeof(float)), *out_new = malloc(n * sizeof(float));
    float *d_old = malloc(n * sizeof(float)), *d_new = malloc(n * sizeof(float));
    float *db_new = rand_vec(GF, 1.0f, 4), *db_ref = copy_vec(db_new, GF);
    assert_true(out_old && out_new && d_old && d_new);

    ss_bias_gelu_forward(out_old, x_old, b, GN, GF);      /* x_old: x + b */
    ss_bias_gelu_forward_grad(out_new, x_new, b, GN, GF); /* x_new: gelu'(x + b) */
    assert_same_bits(out_new, out_old, n, "gelu output");

    ss_gelu_backward_set(d_old, x_old, dout, n);
    ss_gelu_backward_grad_bias(d_new, db_new, x_new, dout, GN, GF);
    /* the derivative comes from the forward's exp instead of a recomputed one:
     * equal up to a few float roundings of its terms s and 2 v u' s^2 e, each
     * at most ~|v| in size (they cancel where gelu' is small, for v < 0) */
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(d_new[i] - d_old[i]) <= 4e-7f * fabsf(dout[i]) * (1.0f + fabsf(x_old[i]))))
            fail_msg("dinp[%zu]: %.9g vs %.9g", i, (double)d_new[i], (double)d_old[i]);
    /* the fused bias gradient is the same row-order column sum as the linear layer's */
    ss_linear_backward(NULL, NULL, db_ref, d_new, NULL, NULL, GN, 0, GF);
    assert_same_bits(db_new, db_ref, GF, "fused bias gradient");

    free(x); free(b); free(dout); free(x_old); free(x_new); free(out_old); free(out_new);
    free(d_old); free(d_new); free(db_new); free(db_ref);
}

/* The column sums walk the rows in order in every column block, so the bits
 * do not depend on how many threads split the columns. */
/* A NaN activation (a diverged step, which the non-finite policy must see)
 * stays NaN through GELU's vectorized exp. (The undefined NaN-to-int
 * conversion that ss_vexpf had was reported by UBSan in test_train's
 * test_nonfinite_training_stops under ASan, not by this vectorized path.) */
/* A model without biases passes NULL for them (pretrain --no-bias): each
 * kernel must give what a zero bias gives, bit for bit, and leave out the
 * bias gradient. */
static void test_null_bias_is_zero_bias(void **state) {
    (void)state;
    size_t n = (size_t)GN * GF;
    float *x = rand_vec(n, 3.0f, 11), *w = rand_vec(GF, 1.0f, 12), *dout = rand_vec(n, 1.0f, 13);
    float *zero = calloc(GF, sizeof(float)), *db = calloc(GF, sizeof(float));
    float *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float));
    float *m1 = malloc(GN * sizeof(float)), *r1 = malloc(GN * sizeof(float));
    float *m2 = malloc(GN * sizeof(float)), *r2 = malloc(GN * sizeof(float));
    assert_true(zero && db && o1 && o2 && m1 && r1 && m2 && r2);

    ss_layernorm_forward(o1, m1, r1, x, w, zero, GN, GF);
    ss_layernorm_forward(o2, m2, r2, x, w, NULL, GN, GF);
    assert_same_bits(o1, o2, n, "layernorm out");
    float *dx1 = calloc(n, sizeof(float)), *dx2 = calloc(n, sizeof(float));
    float *dw1 = calloc(GF, sizeof(float)), *dw2 = calloc(GF, sizeof(float));
    assert_true(dx1 && dx2 && dw1 && dw2);
    ss_layernorm_backward(dx1, dw1, db, dout, x, w, m1, r1, GN, GF);
    ss_layernorm_backward(dx2, dw2, NULL, dout, x, w, m2, r2, GN, GF);
    assert_same_bits(dx1, dx2, n, "layernorm dinp");
    assert_same_bits(dw1, dw2, GF, "layernorm dw");

    float *x1 = copy_vec(x, n), *x2 = copy_vec(x, n);
    for (int grad = 0; grad < 2; grad++) {
        memcpy(x1, x, n * sizeof(float));
        memcpy(x2, x, n * sizeof(float));
        if (grad) {
            ss_bias_gelu_forward_grad(o1, x1, zero, GN, GF);
            ss_bias_gelu_forward_grad(o2, x2, NULL, GN, GF);
        } else {
            ss_bias_gelu_forward(o1, x1, zero, GN, GF);
            ss_bias_gelu_forward(o2, x2, NULL, GN, GF);
        }
        assert_same_bits(o1, o2, n, grad ? "bias_gelu_grad out" : "bias_gelu out");
        assert_same_bits(x1, x2, n, grad ? "bias_gelu_grad gelu'" : "bias_gelu x");
    }
    ss_gelu_backward_grad_bias(dx1, db, x1, dout, GN, GF);
    ss_gelu_backward_grad_bias(dx2, NULL, x2, dout, GN, GF);
    assert_same_bits(dx1, dx2, n, "gelu backward dinp");
    free(x); free(w); free(dout); free(zero); free(db); free(o1); free(o2);
    free(m1); free(r1); free(m2); free(r2); free(dx1); free(dx2); free(dw1); free(dw2); free(x1); free(x2);
}

static void test_gelu_nan_propagates(void **state) {
    (void)state;
    float in[4] = {NAN, 1.0f, -INFINITY, 0.5f}, out[4];
    ss_gelu_forward(out, in, 4);
    assert_true(isnan(out[0]));
    assert_true(isfinite(out[1]) && isfinite(out[3]));
}

static void test_bias_grads_thread_invariant(void **state) {
    (void)state;
    const int widths[] = {GF, 8192, 256, 48, 3};
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        int F = widths[w], N = (int)(70000 / (size_t)F) + 1;
        size_t n = (size_t)N * F;
        float *dout = rand_vec(n, 1.0f, 10 + w), *g = rand_vec(n, 2.0f, 20 + w);
        float *db[2], *dbl[2], *d[2];
        for (int t = 0; t < 2; t++) {
            omp_set_num_threads(t + 1);
            db[t] = calloc((size_t)F, sizeof(float));
            dbl[t] = calloc((size_t)F, sizeof(float));
            d[t] = malloc(n * sizeof(float));
            assert_true(db[t] && dbl[t] && d[t]);
            ss_gelu_backward_grad_bias(d[t], db[t], g, dout, N, F);
            ss_linear_backward(NULL, NULL, dbl[t], dout, NULL, NULL, N, 0, F);
        }
        omp_set_num_threads(2);
        assert_same_bits(db[1], db[0], (size_t)F, "fused bias gradient, 2 vs 1 threads");
        assert_same_bits(dbl[1], dbl[0], (size_t)F, "linear bias gradient, 2 vs 1 threads");
        /* and the column sum itself is right (double reference) */
        for (int f = 0; f < F; f++) {
            double s = 0, sa = 0;
            for (int r = 0; r < N; r++) {
                s += (double)dout[(size_t)r * F + f];
                sa += fabs((double)dout[(size_t)r * F + f]);
            }
            if (fabs(dbl[0][f] - s) > 1e-6 * sa + 1e-6) fail_msg("column %d of %d: %g vs %g", f, F, dbl[0][f], s);
        }
        for (int t = 0; t < 2; t++) { free(db[t]); free(dbl[t]); free(d[t]); }
        free(dout); free(g);
    }
}

/* ---- AdamW with clipping folded in ---------------------------------------------------- */

static ss_model *small_model(void) {
    /* d_model 20, d_ff 36: tensor sizes that are not multiples of 16, so
     * the vector loop and its scalar tail both run */
    ss_model_config c = {SS_ENCODER, 53, 2, 20, 2, 36, 16, 0.0f, 0, SS_HEAD_MLM, 0, 0, 0, SS_TEXT_NORM_NONE, 0, 0};
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, 7);
    return m;
}

/* torch.optim.AdamW's update in float, one element at a time. */
static void adamw_ref(float *p, const float *g, float *m, float *v, const ss_model *model,
                      const ss_adamw_hparams *h, int64_t t, float gs) {
    double bc1 = 1.0 - pow(h->beta1, (double)t), bc2s = sqrt(1.0 - pow(h->beta2, (double)t));
    for (size_t k = 0; k < ss_model_num_tensors(model); k++) {
        const ss_param_info *ti = ss_model_tensor(model, k);
        float keep = (float)(1.0 - (double)h->lr * (ti->decay ? h->weight_decay : 0.0f));
        float step = (float)(h->lr / bc1), bc2 = (float)bc2s;
        for (size_t i = ti->offset; i < ti->offset + ti->numel; i++) {
            float gi = g[i] * gs;
            float pi = p[i] * keep;
            m[i] = h->beta1 * m[i] + (1.0f - h->beta1) * gi;
            v[i] = h->beta2 * v[i] + (1.0f - h->beta2) * gi * gi;
            p[i] = pi - step * (m[i] / (sqrtf(v[i]) / bc2 + h->eps));
        }
    }
}

static void test_adamw_scaled(void **state) {
    (void)state;
    ss_model *model = small_model();
    size_t n = ss_model_num_params(model);
    const float *p0 = ss_model_params(model);
    float *pa = copy_vec(p0, n), *pb = copy_vec(p0, n), *pr = copy_vec(p0, n);
    float *mr = calloc(2 * n, sizeof(float));
    assert_non_null(mr);
    ss_error err = {0};
    ss_adamw a, b;
    CHECK_OK(ss_adamw_init(&a, n, &err), &err);
    CHECK_OK(ss_adamw_init(&b, n, &err), &err);
    ss_adamw_hparams h = {3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0};
    double clip = 1.0;
    for (int s = 0; s < 4; s++) {
        /* gradients whose norm is above the clip on even steps, below on odd ones */
        float *g = rand_vec(n, s % 2 ? 1e-4f : 0.5f, 100 + s), *ga = copy_vec(g, n), *gb = copy_vec(g, n);
        double norm = ss_grad_norm(g, n);
        assert_true(s % 2 ? norm < clip : norm > clip);
        float gs = ss_clip_factor(norm, clip);
        /* unfused: scale the gradients, then step */
        assert_true(ss_clip_grad_norm(ga, n, clip) == norm);
        ss_adamw_step(&a, model, pa, ga, &h);
        /* fused */
        ss_adamw_step_scaled(&b, model, pb, gb, &h, 0, gs);
        assert_same_bits(gb, g, n, "gradients (left unscaled by the fused step)");
        adamw_ref(pr, g, mr, mr + n, model, &h, s + 1, gs);
        assert_same_bits(pb, pa, n, "params fused vs unfused");
        assert_same_bits(b.m, a.m, n, "m fused vs unfused");
        assert_same_bits(b.v, a.v, n, "v fused vs unfused");
        assert_same_bits(pb, pr, n, "params vs scalar reference");
        assert_same_bits(b.m, mr, n, "m vs scalar reference");
        assert_same_bits(b.v, mr + n, n, "v vs scalar reference");
        free(g); free(ga); free(gb);
    }
    ss_adamw_free(&a); ss_adamw_free(&b);
    free(pa); free(pb); free(pr); free(mr);
    ss_model_free(model);
}

/* Layer-wise lr decay: every tensor steps with lr * D^(L + 1 - depth), its
 * depth 0 for the embeddings, l + 1 for block l, L + 1 for ln_f and the head.
 * On the first step AdamW moves each weight by lr_t * g / (|g| + eps), so
 * the move itself shows each tensor's rate, whatever the implementation. */
static void test_adamw_layer_decay(void **state) {
    (void)state;
    ss_model *model = small_model();
    const int L = ss_model_config_of(model)->n_layer;
    size_t n = ss_model_num_params(model);
    for (size_t k = 0; k < ss_model_num_tensors(model); k++) {
        const ss_param_info *t = ss_model_tensor(model, k);
        int want = !strncmp(t->name, "embeddings.", 11) ? 0 : !strncmp(t->name, "blocks.", 7) ? atoi(t->name + 7) + 1 : L + 1;
        if (t->depth != want) fail_msg("%s: depth %d, want %d", t->name, t->depth, want);
    }
    float *p = copy_vec(ss_model_params(model), n), *g = rand_vec(n, 0.5f, 11);
    ss_error err = {0};
    ss_adamw a;
    CHECK_OK(ss_adamw_init(&a, n, &err), &err);
    const float D = 0.5f;
    ss_adamw_hparams h = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, D, 0};
    ss_adamw_step(&a, model, p, g, &h);
    const float *p0 = ss_model_params(model);
    for (size_t k = 0; k < ss_model_num_tensors(model); k++) {
        const ss_param_info *t = ss_model_tensor(model, k);
        double want = 1e-3 * pow(D, L + 1 - t->depth);
        for (size_t i = t->offset; i < t->offset + t->numel; i++) {
            double moved = (double)p0[i] - p[i], expect = want * g[i] / (fabs(g[i]) + 1e-8);
            if (fabs(moved - expect) > 1e-4 * want + 1e-7)
                fail_msg("%s[%zu]: moved %g, expected %g (lr %g at depth %d)", t->name, i - t->offset, moved, expect,
                         want, t->depth);
        }
    }
    /* D = 1 is off: the same bits as no decay at all */
    float *pa = copy_vec(p0, n), *pb = copy_vec(p0, n);
    ss_adamw b, c;
    CHECK_OK(ss_adamw_init(&b, n, &err), &err);
    CHECK_OK(ss_adamw_init(&c, n, &err), &err);
    ss_adamw_hparams one = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 0}, none = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.0f, 0};
    ss_adamw_step(&b, model, pa, g, &one);
    ss_adamw_step(&c, model, pb, g, &none);
    assert_same_bits(pa, pb, n, "layer_decay 1 vs 0");
    ss_adamw_free(&a); ss_adamw_free(&b); ss_adamw_free(&c);
    free(p); free(g); free(pa); free(pb);
    ss_model_free(model);
}

static void test_clip_factor_and_norm(void **state) {
    (void)state;
    assert_true(ss_clip_factor(2.0, 1.0) == (float)(1.0 / (2.0 + 1e-6)));
    assert_true(ss_clip_factor(0.5, 1.0) == 1.0f);
    assert_true(ss_clip_factor(1.0, 1.0) == 1.0f);
    assert_true(ss_clip_factor(5.0, 0.0) == 1.0f); /* clip 0: off */
    size_t n = 100003;
    float *g = rand_vec(n, 3.0f, 5);
    double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
    ref = sqrt(ref);
    omp_set_num_threads(1);
    double n1 = ss_grad_norm(g, n);
    omp_set_num_threads(2);
    double n2 = ss_grad_norm(g, n);
    assert_true(n1 == n2);
    assert_true(fabs(n1 - ref) <= 1e-12 * ref);
    free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gelu_grad_pair_vs_unfused),
        cmocka_unit_test(test_null_bias_is_zero_bias),
        cmocka_unit_test(test_gelu_nan_propagates),
        cmocka_unit_test(test_bias_grads_thread_invariant),
        cmocka_unit_test(test_adamw_scaled),
        cmocka_unit_test(test_adamw_layer_decay),
        cmocka_unit_test(test_clip_factor_and_norm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
