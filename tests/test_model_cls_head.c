/* The sequence-classification head (SS_HEAD_CLS): config and config.json,
 * parameter layout and head offset, finite-difference gradient checks of the
 * whole model (head and body through ss_model_body_backward) for a tiny
 * encoder and a tiny decoder with every pooling, with and without the
 * pooler, with class weights, padding and ignored labels; probabilities,
 * statistics and input errors; right-padded decoders; loading a pretrained
 * body; save/load of a classifier.
 *
 * Gradient check: the model runs in fp32, so the loss L(theta) carries
 * ~1e-7 relative rounding. The numeric derivative is the 5-point stencil
 * (-L(+2h) + 8 L(+h) - 8 L(-h) + L(-2h)) / 12h with h = 1e-2 (truncation
 * O(h^4) ~ 1e-8), whose rounding noise is ~1e-5 absolute. Each tensor passes
 * when |analytic - numeric| <= RTOL * max(|a|, |n|) + ATOL * gmax elementwise,
 * gmax the largest |numeric| of the whole model. RTOL = ATOL = 2e-4 leave
 * the fp32 noise (up to ~7e-5 here) a margin of 3 and are far below what a
 * wrong formula gives, which the sanity test shows with a 1% scaled gradient
 * and with the gradient of the wrong pooling. */
#include "fill_params.h"
#include "testutil.h"

#include <math.h>
#include <omp.h>

#include <cJSON.h>

#include "selfsup/io.h"
#include "selfsup/model.h"

enum { V = 13, L = 2, C = 8, NH = 2, F = 12, MAXT = 8, B = 4, T = 6, K = 3 };

#define FD_H 1e-2f
#define RTOL 2e-4
#define ATOL 2e-4

static ss_model_config cls_config(ss_model_kind kind, ss_pooling pool, int pooler) {
    ss_model_config c = {kind, V, L, C, NH, F, MAXT, 0.0f, 0, SS_HEAD_CLS, K, pool, pooler, SS_TEXT_NORM_NONE, 0, 0};
    return c;
}

static uint64_t rng_state;
static float urand(void) { return fill_urand(&rng_state); } /* uniform in [-1, 1) */

static ss_model *new_model(ss_model_config c, uint64_t seed) {
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    fill_params(m, seed);
    return m;
}

/* ---- the batch ------------------------------------------------------------------------ */

/* Right padding: rows of length 6, 4, 6, 2; labels with one ignored row. */
static const int LENGTHS[B] = {6, 4, 6, 2};
static const int32_t LABELS[B] = {2, 0, -1, 1};
static const float WEIGHTS[K] = {0.5f, 2.0f, 1.25f};

typedef struct {
    int32_t tokens[B * T];
    uint8_t kv[B * T];
    const uint8_t *key_valid; /* kv or NULL */
    const int32_t *labels;
    const float *weights;     /* WEIGHTS or NULL */
    double weight_sum;
} batch;

static void make_batch(batch *b, int padded, int weighted) {
    rng_state = 99;
    for (int i = 0; i < B * T; i++) {
        b->tokens[i] = (int32_t)((urand() + 1.0f) * 0.5f * V) % V;
        b->kv[i] = !padded || i % T < LENGTHS[i / T];
    }
    b->key_valid = padded ? b->kv : NULL;
    b->labels = LABELS;
    b->weights = weighted ? WEIGHTS : NULL;
    b->weight_sum = 0;
    for (int r = 0; r < B; r++)
        if (LABELS[r] >= 0) b->weight_sum += weighted ? WEIGHTS[LABELS[r]] : 1.0;
}

/* Mean loss (the CrossEntropyLoss(weight=) convention); with want_grad the
 * whole model's gradient of it lands in the model's gradients. The forward
 * is always a training one with a fixed seed, so dropout masks are the same
 * in every evaluation. */
static double run(ss_model *m, const batch *b, int want_grad, float *probs, ss_cls_stats *s) {
    ss_error err = {0};
    ss_cls_stats local;
    s = s ? s : &local;
    CHECK_OK(ss_model_body_forward(m, b->tokens, b->key_valid, B, T, 1, 1234, NULL, &err), &err);
    CHECK_OK(ss_cls_head(m, b->key_valid, b->labels, b->weights, (float)(1.0 / b->weight_sum), want_grad,
                         probs, s, &err), &err);
    if (want_grad) ss_model_body_backward(m);
    return s->loss_sum / b->weight_sum;
}

static void analytic(ss_model *m, const batch *b, float *g) {
    ss_model_zero_grads(m);
    run(m, b, 1, NULL, NULL);
    memcpy(g, ss_model_grads(m), ss_model_num_params(m) * sizeof(float));
}

static void numeric(ss_model *m, const batch *b, double *num) {
    float *p = ss_model_params(m);
    for (size_t i = 0; i < ss_model_num_params(m); i++) {
        float x = p[i];
        double l[4];
        const float off[4] = {2 * FD_H, FD_H, -FD_H, -2 * FD_H};
        for (int k = 0; k < 4; k++) {
            p[i] = x + off[k];
            l[k] = run(m, b, 0, NULL, NULL);
        }
        p[i] = x;
        num[i] = (-l[0] + 8 * l[1] - 8 * l[2] + l[3]) / (12.0 * (double)FD_H);
    }
}

/* Name of the first tensor (if any) where analytic g and numeric num
 * disagree, with the element; NULL when all agree. *worst (may be NULL)
 * receives the largest |a - n| as a fraction of its allowance. */
static const char *grad_mismatch(const ss_model *m, const float *g, const double *num, char *msg, size_t cap,
                                 double *worst) {
    double gmax = 0, w = 0;
    for (size_t i = 0; i < ss_model_num_params(m); i++) gmax = fmax(gmax, fabs(num[i]));
    for (size_t t = 0; t < ss_model_num_tensors(m); t++) {
        const ss_param_info *p = ss_model_tensor(m, t);
        for (size_t k = 0; k < p->numel; k++) {
            double a = g[p->offset + k], n = num[p->offset + k];
            double allow = RTOL * fmax(fabs(a), fabs(n)) + ATOL * gmax;
            w = fmax(w, fabs(a - n) / allow);
            if (worst) *worst = w;
            if (!(fabs(a - n) <= allow)) {
                snprintf(msg, cap, "%s[%zu]: analytic %.7g numeric %.7g (largest gradient %.3g)", p->name, k, a,
                         n, gmax);
                return msg;
            }
        }
    }
    return NULL;
}

/* Every tensor of the model must carry a gradient, or the check proves
 * nothing about it (decoder rows only reach the positions before the pooled
 * one, so this holds for every setup below). */
static void expect_all_tensors_reached(const ss_model *m, const double *num, const char *what) {
    for (size_t t = 0; t < ss_model_num_tensors(m); t++) {
        const ss_param_info *p = ss_model_tensor(m, t);
        double mx = 0;
        for (size_t k = 0; k < p->numel; k++) mx = fmax(mx, fabs(num[p->offset + k]));
        if (mx < 1e-4) fail_msg("%s: tensor %s gets no gradient (max %.3g)", what, p->name, mx);
    }
}

static void gradcheck_config(ss_model_config c, int padded, int weighted) {
    ss_model_kind kind = c.kind;
    ss_pooling pool = c.pooling;
    int pooler = c.pooler;
    float dropout = c.dropout;
    ss_model *m = new_model(c, 7 + (uint64_t)pool + 3 * (uint64_t)pooler);
    batch b;
    make_batch(&b, padded, weighted);
    size_t n = ss_model_num_params(m);
    float *g = malloc(n * sizeof *g);
    double *num = malloc(n * sizeof *num);
    assert_non_null(g);
    assert_non_null(num);
    analytic(m, &b, g);
    numeric(m, &b, num);
    char what[160], msg[300];
    snprintf(what, sizeof what, "%s%s pooling=%s pooler=%d padded=%d weighted=%d dropout=%g",
             c.bidirectional ? "bidirectional " : "", ss_model_kind_name(kind), ss_pooling_name(pool), pooler, padded,
             weighted, (double)dropout);
    double worst = 0;
    if (grad_mismatch(m, g, num, msg, sizeof msg, &worst)) fail_msg("%s: %s", what, msg);
    printf("# %s: worst gradient error %.2f of the tolerance\n", what, worst);
    expect_all_tensors_reached(m, num, what);
    free(g);
    free(num);
    ss_model_free(m);
}

static void gradcheck(ss_model_kind kind, ss_pooling pool, int pooler, int padded, int weighted, float dropout) {
    ss_model_config c = cls_config(kind, pool, pooler);
    c.dropout = dropout;
    gradcheck_config(c, padded, weighted);
}

static void gradcheck_kind(ss_model_kind kind) {
    for (int pool = SS_POOL_CLS; pool <= SS_POOL_WMEAN; pool++)
        for (int pooler = 0; pooler < 2; pooler++) gradcheck(kind, (ss_pooling)pool, pooler, 1, 1, 0.0f);
}

static void test_gradcheck_encoder(void **state) { (void)state; gradcheck_kind(SS_ENCODER); }
static void test_gradcheck_decoder(void **state) { (void)state; gradcheck_kind(SS_DECODER); }

/* A decoder classifier with bidirectional attention (finetune --attention
 * bidirectional): padded and weighted, every pooling, and with dropout. */
static void test_gradcheck_bidirectional_decoder(void **state) {
    (void)state;
    for (int pool = SS_POOL_CLS; pool <= SS_POOL_WMEAN; pool++) {
        ss_model_config c = cls_config(SS_DECODER, (ss_pooling)pool, pool == SS_POOL_CLS);
        c.bidirectional = 1;
        gradcheck_config(c, 1, 1);
    }
    ss_model_config c = cls_config(SS_DECODER, SS_POOL_WMEAN, 0);
    c.bidirectional = 1;
    c.dropout = 0.3f;
    gradcheck_config(c, 1, 0);
}

/* NULL key_valid and class weights; dropout (body and head masks replayed
 * from the seed, so the loss is a fixed function of the parameters). */
static void test_gradcheck_defaults_and_dropout(void **state) {
    (void)state;
    gradcheck(SS_ENCODER, SS_POOL_MEAN, 1, 0, 0, 0.0f);
    gradcheck(SS_DECODER, SS_POOL_LAST, 0, 0, 0, 0.0f);
    gradcheck(SS_ENCODER, SS_POOL_CLS, 1, 1, 1, 0.3f);
    gradcheck(SS_DECODER, SS_POOL_MEAN, 1, 1, 1, 0.3f);
    gradcheck(SS_DECODER, SS_POOL_WMEAN, 0, 1, 1, 0.3f);
}

/* The comparison rejects a gradient off by 1% and the gradient of a model
 * that pools elsewhere (same parameters, other pooling). */
static void test_gradcheck_rejects_wrong_gradients(void **state) {
    (void)state;
    batch b;
    make_batch(&b, 1, 1);
    ss_model *m = new_model(cls_config(SS_ENCODER, SS_POOL_MEAN, 1), 5);
    ss_model *other = new_model(cls_config(SS_ENCODER, SS_POOL_LAST, 1), 5);
    size_t n = ss_model_num_params(m);
    assert_int_equal(n, ss_model_num_params(other));
    float *g = malloc(n * sizeof *g);
    double *num = malloc(n * sizeof *num);
    char msg[300];
    numeric(m, &b, num);
    analytic(m, &b, g);
    assert_null(grad_mismatch(m, g, num, msg, sizeof msg, NULL));
    for (size_t i = 0; i < n; i++) g[i] *= 1.01f;
    assert_non_null(grad_mismatch(m, g, num, msg, sizeof msg, NULL));
    analytic(other, &b, g);
    assert_non_null(grad_mismatch(m, g, num, msg, sizeof msg, NULL));
    ss_model *wmean = new_model(cls_config(SS_ENCODER, SS_POOL_WMEAN, 1), 5); /* other weights, same positions */
    analytic(wmean, &b, g);
    assert_non_null(grad_mismatch(m, g, num, msg, sizeof msg, NULL));
    ss_model_free(wmean);
    free(g);
    free(num);
    ss_model_free(other);
    ss_model_free(m);
}

/* ---- forward results -------------------------------------------------------------------- */

/* probs rows sum to 1 (ignored rows included); loss_sum, weight_sum, n and
 * correct agree with the probabilities; a row with label -1 changes
 * nothing in the loss or the gradient. */
static void test_probs_stats_and_ignored_rows(void **state) {
    (void)state;
    batch b;
    make_batch(&b, 1, 1);
    ss_model *m = new_model(cls_config(SS_DECODER, SS_POOL_LAST, 1), 3);
    float probs[B * K];
    ss_cls_stats s;
    double loss = run(m, &b, 0, probs, &s);
    double want = 0, wsum = 0;
    int64_t correct = 0, n = 0;
    for (int r = 0; r < B; r++) {
        double sum = 0;
        int arg = 0;
        for (int k = 0; k < K; k++) {
            sum += probs[r * K + k];
            if (probs[r * K + k] > probs[r * K + arg]) arg = k;
        }
        assert_true(fabs(sum - 1.0) < 1e-6);
        if (LABELS[r] < 0) continue;
        want -= WEIGHTS[LABELS[r]] * log(probs[r * K + LABELS[r]]);
        wsum += WEIGHTS[LABELS[r]];
        correct += arg == LABELS[r];
        n++;
    }
    assert_true(fabs(s.loss_sum - want) < 1e-5 * want);
    assert_true(fabs(s.weight_sum - wsum) < 1e-6);
    assert_int_equal(s.n, n);
    assert_int_equal(s.correct, correct);
    assert_true(fabs(loss - want / wsum) < 1e-5 * loss);

    /* the ignored row's label does not matter; probs without labels are the same */
    size_t np = ss_model_num_params(m);
    float *g1 = malloc(np * sizeof *g1), *g2 = malloc(np * sizeof *g2);
    analytic(m, &b, g1);
    int32_t other[B];
    memcpy(other, LABELS, sizeof other);
    other[2] = -7;
    b.labels = other;
    analytic(m, &b, g2);
    assert_memory_equal(g1, g2, np * sizeof *g1);
    float probs2[B * K];
    b.labels = NULL;
    run(m, &b, 0, probs2, &s);
    assert_memory_equal(probs, probs2, sizeof probs);
    assert_int_equal(s.n, 0);
    assert_true(s.loss_sum == 0 && s.weight_sum == 0);
    /* no labels, no gradient */
    ss_model_zero_grads(m);
    run(m, &b, 1, NULL, &s);
    for (size_t i = 0; i < np; i++) assert_true(ss_model_grads(m)[i] == 0.0f);
    free(g1);
    free(g2);
    ss_model_free(m);
}

/* Dropout acts on the pooled vector while training only: a training
 * forward with dropout 0.5 gives other probabilities than an eval one. */
static void test_dropout_only_when_training(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model_config c = cls_config(SS_ENCODER, SS_POOL_CLS, 1);
    c.dropout = 0.5f;
    ss_model *m = new_model(c, 11);
    batch b;
    make_batch(&b, 0, 0);
    float p_eval[B * K], p_eval2[B * K], p_train[B * K];
    ss_cls_stats s;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(ss_model_body_forward(m, b.tokens, NULL, B, T, 0, 5, NULL, &err), &err);
        CHECK_OK(ss_cls_head(m, NULL, LABELS, NULL, 1.0f, 0, i ? p_eval2 : p_eval, &s, &err), &err);
    }
    assert_memory_equal(p_eval, p_eval2, sizeof p_eval);
    CHECK_OK(ss_model_body_forward(m, b.tokens, NULL, B, T, 1, 5, NULL, &err), &err);
    CHECK_OK(ss_cls_head(m, NULL, LABELS, NULL, 1.0f, 0, p_train, &s, &err), &err);
    assert_memory_not_equal(p_eval, p_train, sizeof p_eval);
    ss_model_free(m);
}

/* Bad inputs fail with messages that name the problem. */
static void test_input_errors(void **state) {
    (void)state;
    ss_error err = {0};
    ss_cls_stats s;
    batch b;
    make_batch(&b, 1, 1);
    ss_model *m = new_model(cls_config(SS_ENCODER, SS_POOL_LAST, 0), 1);
    assert_int_equal(ss_cls_head(m, NULL, LABELS, NULL, 1.0f, 0, NULL, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "body forward first"));
    CHECK_OK(ss_model_body_forward(m, b.tokens, b.kv, B, T, 0, 0, NULL, &err), &err);
    int32_t bad[B] = {0, 3, 1, 1};
    assert_int_equal(ss_cls_head(m, b.kv, bad, NULL, 1.0f, 0, NULL, &s, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "label 3 of sequence 1"));
    float neg[K] = {1.0f, -1.0f, 1.0f};
    assert_int_equal(ss_cls_head(m, b.kv, LABELS, neg, 1.0f, 0, NULL, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "class weight 1"));
    assert_int_equal(ss_cls_head(m, b.kv, LABELS, NULL, 1.0f, 1, NULL, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "training body forward"));
    uint8_t kv[B * T];
    memcpy(kv, b.kv, sizeof kv);
    memset(kv + 2 * T, 0, T); /* sequence 2: all padding */
    assert_int_equal(ss_cls_head(m, kv, LABELS, NULL, 1.0f, 0, NULL, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "sequence 2"));
    ss_model_free(m);
    m = new_model(cls_config(SS_ENCODER, SS_POOL_CLS, 0), 1);
    memcpy(kv, b.kv, sizeof kv);
    kv[T] = 0; /* sequence 1 starts with padding: nothing to read at position 0 */
    CHECK_OK(ss_model_body_forward(m, b.tokens, kv, B, T, 0, 0, NULL, &err), &err);
    assert_int_equal(ss_cls_head(m, kv, LABELS, NULL, 1.0f, 0, NULL, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "position 0"));
    ss_model_free(m);
    /* another head kind */
    ss_model_config lm = cls_config(SS_ENCODER, SS_POOL_CLS, 0);
    lm.head = SS_HEAD_MLM;
    m = new_model(lm, 1);
    CHECK_OK(ss_model_body_forward(m, b.tokens, NULL, B, T, 0, 0, NULL, &err), &err);
    assert_int_equal(ss_cls_head(m, NULL, LABELS, NULL, 1.0f, 0, NULL, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "no classification head"));
    ss_model_free(m);
}

/* The LM convenience paths are not for a classifier. */
static void test_lm_paths_refuse_cls(void **state) {
    (void)state;
    ss_error err = {0};
    batch b;
    make_batch(&b, 0, 0);
    int32_t targets[B * T];
    for (int i = 0; i < B * T; i++) targets[i] = b.tokens[(i + 1) % (B * T)];
    ss_model *m = new_model(cls_config(SS_DECODER, SS_POOL_LAST, 0), 1);
    ss_batch bt = {b.tokens, targets, NULL, B, T};
    ss_loss_stats ls;
    assert_int_equal(ss_model_forward_backward(m, &bt, 1.0f, 0, &ls, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "classification head"));
    assert_int_equal(ss_model_eval_loss(m, &bt, &ls, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "classification head"));
    ss_model_free(m);
}

/* A right-padded decoder batch: every valid position's hidden state equals
 * that of the row run alone without padding (causal attention never looks
 * right, and padding keys are masked), so "last" pooling reads the same
 * vector as for the unpadded text. */
static void test_decoder_right_padding(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m = new_model(cls_config(SS_DECODER, SS_POOL_LAST, 1), 21);
    batch b;
    make_batch(&b, 1, 0);
    float probs[B * K], alone[K];
    ss_cls_stats s;
    const float *h;
    CHECK_OK(ss_model_body_forward(m, b.tokens, b.kv, B, T, 0, 0, &h, &err), &err);
    float *padded = malloc((size_t)B * T * C * sizeof *padded);
    memcpy(padded, h, (size_t)B * T * C * sizeof *padded);
    CHECK_OK(ss_cls_head(m, b.kv, NULL, NULL, 1.0f, 0, probs, &s, &err), &err);
    for (int r = 0; r < B; r++) {
        int n = LENGTHS[r];
        CHECK_OK(ss_model_body_forward(m, b.tokens + r * T, NULL, 1, n, 0, 0, &h, &err), &err);
        for (int i = 0; i < n * C; i++) assert_true(fabsf(h[i] - padded[(size_t)r * T * C + i]) <= 1e-5f);
        CHECK_OK(ss_cls_head(m, NULL, NULL, NULL, 1.0f, 0, alone, &s, &err), &err);
        for (int k = 0; k < K; k++) assert_true(fabsf(alone[k] - probs[r * K + k]) <= 1e-5f);
    }
    free(padded);
    ss_model_free(m);
}

/* Bidirectional attention in a decoder: position 0's hidden state reads the
 * last token (a causal decoder's does not); a right-padded row's valid
 * positions equal the row run alone (padding keys are masked); a KV cache,
 * which only a causal decoder can use, is refused. */
static void test_decoder_bidirectional(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model_config c = cls_config(SS_DECODER, SS_POOL_WMEAN, 0);
    ss_model *causal = new_model(c, 21);
    c.bidirectional = 1;
    ss_model *bidir = new_model(c, 21); /* the same parameters */
    batch b;
    make_batch(&b, 0, 0);
    int32_t other[T];
    memcpy(other, b.tokens, sizeof other);
    other[T - 1] = (other[T - 1] + 1) % V;
    float h0[2][C];
    const float *h;
    ss_model *ms[2] = {causal, bidir};
    for (int k = 0; k < 2; k++) {
        CHECK_OK(ss_model_body_forward(ms[k], b.tokens, NULL, 1, T, 0, 0, &h, &err), &err);
        memcpy(h0[0], h, sizeof h0[0]);
        CHECK_OK(ss_model_body_forward(ms[k], other, NULL, 1, T, 0, 0, &h, &err), &err);
        memcpy(h0[1], h, sizeof h0[1]);
        float diff = 0;
        for (int i = 0; i < C; i++) diff = fmaxf(diff, fabsf(h0[0][i] - h0[1][i]));
        if (k == 0) assert_true(diff == 0.0f);
        else assert_true(diff > 1e-4f);
    }
    make_batch(&b, 1, 0);
    float *padded = malloc((size_t)B * T * C * sizeof *padded);
    CHECK_OK(ss_model_body_forward(bidir, b.tokens, b.kv, B, T, 0, 0, &h, &err), &err);
    memcpy(padded, h, (size_t)B * T * C * sizeof *padded);
    for (int r = 0; r < B; r++) {
        int n = LENGTHS[r];
        CHECK_OK(ss_model_body_forward(bidir, b.tokens + r * T, NULL, 1, n, 0, 0, &h, &err), &err);
        for (int i = 0; i < n * C; i++) assert_true(fabsf(h[i] - padded[(size_t)r * T * C + i]) <= 1e-5f);
    }
    free(padded);
    float *kv = calloc(ss_model_kv_floats(&c), sizeof *kv);
    assert_int_equal(ss_model_body_forward_kv(bidir, kv, 0, b.tokens, 2, &h, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "causal"));
    free(kv);
    ss_model_free(causal);
    ss_model_free(bidir);
}

/* ---- config, parameters, files ------------------------------------------------------------- */

static void expect_json_error(const char *json, const char *needle) {
    ss_error err = {0};
    ss_model_config c;
    assert_int_equal(ss_config_from_json(&c, json, "SRC.json", &err), SS_ERR_FORMAT);
    if (!strstr(err.msg, needle) || !strstr(err.msg, "SRC.json"))
        fail_msg("error '%s' should name SRC.json and '%s'", err.msg, needle);
}

static void test_config(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model_config c = cls_config(SS_DECODER, SS_POOL_MEAN, 1), back;
    c.n_classes = 65536;
    char *js = ss_config_to_json(&c);
    cJSON *o = cJSON_Parse(js);
    assert_string_equal(cJSON_GetObjectItem(o, "head")->valuestring, "cls");
    assert_int_equal(cJSON_GetObjectItem(o, "n_classes")->valueint, 65536);
    assert_string_equal(cJSON_GetObjectItem(o, "pooling")->valuestring, "mean");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "pooler")));
    cJSON_Delete(o);
    CHECK_OK(ss_config_from_json(&back, js, "x", &err), &err);
    assert_int_equal(back.head, SS_HEAD_CLS);
    assert_int_equal(back.n_classes, 65536);
    assert_int_equal(back.pooling, SS_POOL_MEAN);
    assert_int_equal(back.pooler, 1);
    free(js);
    c.pooler = 0;
    c.pooling = SS_POOL_CLS;
    js = ss_config_to_json(&c);
    CHECK_OK(ss_config_from_json(&back, js, "x", &err), &err);
    assert_int_equal(back.pooler, 0);
    assert_int_equal(back.pooling, SS_POOL_CLS);
    free(js);
    /* other heads carry no classification fields */
    c.head = SS_HEAD_LM;
    js = ss_config_to_json(&c);
    assert_null(strstr(js, "n_classes"));
    assert_null(strstr(js, "pooling"));
    free(js);

    const char *base = "{\"kind\":\"encoder\",\"vocab_size\":13,\"n_layer\":2,\"d_model\":8,\"n_head\":2,"
                       "\"d_ff\":12,\"max_seq\":8,\"head\":\"cls\"";
    char j[512];
    snprintf(j, sizeof j, "%s,\"pooling\":\"cls\",\"pooler\":true}", base);
    expect_json_error(j, "'n_classes'");
    snprintf(j, sizeof j, "%s,\"n_classes\":1,\"pooling\":\"cls\",\"pooler\":true}", base);
    expect_json_error(j, "n_classes 1 must be in [2, 65536]");
    snprintf(j, sizeof j, "%s,\"n_classes\":65537,\"pooling\":\"cls\",\"pooler\":true}", base);
    expect_json_error(j, "n_classes 65537");
    snprintf(j, sizeof j, "%s,\"n_classes\":2,\"pooling\":\"max\",\"pooler\":true}", base);
    expect_json_error(j, "'pooling' must be \"cls\", \"last\", \"mean\" or \"wmean\"");
    snprintf(j, sizeof j, "%s,\"n_classes\":2,\"pooler\":true}", base);
    expect_json_error(j, "'pooling'");
    snprintf(j, sizeof j, "%s,\"n_classes\":2,\"pooling\":\"last\",\"pooler\":1}", base);
    expect_json_error(j, "'pooler' must be true or false");
    snprintf(j, sizeof j, "%s,\"n_classes\":2,\"pooling\":\"last\"}", base);
    expect_json_error(j, "'pooler'");
    snprintf(j, sizeof j, "%s,\"n_classes\":2,\"pooling\":\"last\",\"pooler\":false,\"d_embed\":4}", base);
    expect_json_error(j, "d_embed 4 differs from d_model 8");
    expect_json_error("{\"kind\":\"encoder\",\"vocab_size\":13,\"n_layer\":2,\"d_model\":8,\"n_head\":2,"
                      "\"d_ff\":12,\"max_seq\":8,\"head\":\"clf\"}", "\"cls\"");

    ss_pooling p;
    for (int i = SS_POOL_CLS; i <= SS_POOL_MEAN; i++) {
        CHECK_OK(ss_pooling_parse(ss_pooling_name((ss_pooling)i), &p, &err), &err);
        assert_int_equal(p, i);
    }
    assert_int_equal(ss_pooling_parse("max", &p, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "'max'"));
    assert_non_null(strstr(err.msg, "cls, last, mean"));
    assert_string_equal(ss_head_kind_name(SS_HEAD_CLS), "cls");

    c = cls_config(SS_ENCODER, SS_POOL_CLS, 1);
    assert_int_equal(ss_config_validate(&c, &err), SS_OK);
    c.n_classes = 1;
    assert_int_equal(ss_config_validate(&c, &err), SS_ERR_ARG);
    c.n_classes = 2;
    c.pooling = (ss_pooling)7;
    assert_int_equal(ss_config_validate(&c, &err), SS_ERR_ARG);

    /* bidirectional attention: a decoder classifier's, saved as "attention" and read back */
    c = cls_config(SS_DECODER, SS_POOL_WMEAN, 0);
    c.bidirectional = 1;
    CHECK_OK(ss_config_validate(&c, &err), &err);
    js = ss_config_to_json(&c);
    o = cJSON_Parse(js);
    assert_string_equal(cJSON_GetObjectItem(o, "attention")->valuestring, "bidirectional");
    cJSON_Delete(o);
    CHECK_OK(ss_config_from_json(&back, js, "x", &err), &err);
    assert_int_equal(back.bidirectional, 1);
    free(js);
    c.bidirectional = 0;
    js = ss_config_to_json(&c);
    assert_null(strstr(js, "attention"));
    CHECK_OK(ss_config_from_json(&back, js, "x", &err), &err);
    assert_int_equal(back.bidirectional, 0);
    free(js);
    c = cls_config(SS_ENCODER, SS_POOL_CLS, 1);
    c.bidirectional = 1;
    assert_int_equal(ss_config_validate(&c, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "encoder's attention is bidirectional already"));
    c = cls_config(SS_DECODER, SS_POOL_LAST, 0);
    c.head = SS_HEAD_LM;
    c.bidirectional = 1;
    assert_int_equal(ss_config_validate(&c, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "next token"));
    snprintf(j, sizeof j, "%s,\"n_classes\":2,\"pooling\":\"cls\",\"pooler\":true,\"attention\":\"causal\"}", base);
    expect_json_error(j, "an encoder's is bidirectional");
    snprintf(j, sizeof j, "%s,\"n_classes\":2,\"pooling\":\"cls\",\"pooler\":true,\"attention\":\"bidirectional\"}",
             base);
    CHECK_OK(ss_config_from_json(&back, j, "x", &err), &err);
    assert_int_equal(back.bidirectional, 0); /* an encoder's own: nothing to record */
    expect_json_error("{\"kind\":\"decoder\",\"vocab_size\":13,\"n_layer\":2,\"d_model\":8,\"n_head\":2,"
                      "\"d_ff\":12,\"max_seq\":8,\"attention\":\"sideways\"}",
                      "'attention' must be \"causal\" or \"bidirectional\"");
    expect_json_error("{\"kind\":\"decoder\",\"vocab_size\":13,\"n_layer\":2,\"d_model\":8,\"n_head\":2,"
                      "\"d_ff\":12,\"max_seq\":8,\"attention\":\"bidirectional\"}", "next token");

    /* FLOPs per pooled sequence: 6 x (pooler C*C + classifier K*C) */
    c = cls_config(SS_ENCODER, SS_POOL_CLS, 1);
    assert_true(ss_model_head_flops(&c) == 6.0 * (C * C + K * C));
    c.pooler = 0;
    assert_true(ss_model_head_flops(&c) == 6.0 * K * C);
}

/* Head tensors, their shapes, decay and init; they come last, from
 * ss_model_head_offset on; the head alone (no body backward) writes only
 * there. */
/* ss_model_body_backward_to(m, d): the gradients of the tensors at depth d
 * and up are those of the whole backward, bit for bit; those below stay
 * zero; every depth from d up has a non-zero gradient. */
static void test_body_backward_to(void **state) {
    (void)state;
    ss_error err = {0};
    batch b;
    make_batch(&b, 1, 0);
    ss_model *m = new_model(cls_config(SS_ENCODER, SS_POOL_CLS, 1), 21);
    size_t np = ss_model_num_params(m);
    float *full = malloc(np * sizeof(float));
    assert_non_null(full);
    analytic(m, &b, full);
    for (int d = 0; d <= L + 1; d++) {
        ss_model_zero_grads(m);
        CHECK_OK(ss_model_body_forward(m, b.tokens, b.key_valid, B, T, 1, 1234, NULL, &err), &err);
        ss_cls_stats s;
        CHECK_OK(ss_cls_head(m, b.key_valid, b.labels, NULL, (float)(1.0 / b.weight_sum), 1, NULL, &s, &err), &err);
        ss_model_body_backward_to(m, d);
        const float *g = ss_model_grads(m);
        int nonzero_at[L + 2] = {0};
        for (size_t i = 0; i < ss_model_num_tensors(m); i++) {
            const ss_param_info *t = ss_model_tensor(m, i);
            const float *gt = g + t->offset, *ft = full + t->offset;
            if (t->depth >= d) {
                if (memcmp(gt, ft, t->numel * sizeof(float)) != 0)
                    fail_msg("min_depth %d: %s (depth %d) differs from the whole backward", d, t->name, t->depth);
                for (size_t k = 0; k < t->numel; k++) nonzero_at[t->depth] |= gt[k] != 0.0f;
            } else {
                for (size_t k = 0; k < t->numel; k++)
                    if (gt[k] != 0.0f) fail_msg("min_depth %d: %s (depth %d) has a gradient", d, t->name, t->depth);
            }
        }
        for (int k = d; k <= L + 1; k++)
            if (!nonzero_at[k]) fail_msg("min_depth %d: no gradient at depth %d", d, k);
    }
    free(full);
    ss_model_free(m);
}

static void test_params_and_head_offset(void **state) {
    (void)state;
    ss_error err = {0};
    for (int pooler = 0; pooler < 2; pooler++) {
        ss_model_config c = cls_config(SS_ENCODER, SS_POOL_MEAN, pooler);
        ss_model *m;
        CHECK_OK(ss_model_create(&m, &c, &err), &err);
        ss_model_init_weights(m, 3);
        size_t nt = ss_model_num_tensors(m), off = ss_model_head_offset(m);
        const ss_param_info *pw = ss_model_find_tensor(m, "cls_head.pooler.weight"),
                            *pb = ss_model_find_tensor(m, "cls_head.pooler.bias");
        const ss_param_info *ow = ss_model_find_tensor(m, "cls_head.out.weight"),
                            *ob = ss_model_find_tensor(m, "cls_head.out.bias");
        assert_non_null(ow);
        assert_non_null(ob);
        assert_true((pw != NULL) == pooler && (pb != NULL) == pooler);
        assert_true(ow->shape[0] == K && ow->shape[1] == C && ow->decay && ob->numel == K && !ob->decay);
        if (pooler) {
            assert_true(pw->shape[0] == C && pw->shape[1] == C && pw->decay && pb->numel == C && !pb->decay);
            assert_int_equal(off, pw->offset);
            assert_true(ss_model_tensor(m, nt - 4) == pw);
        } else {
            assert_int_equal(off, ow->offset);
        }
        assert_true(ss_model_tensor(m, nt - 1) == ob && ob->offset + K == ss_model_num_params(m));
        const ss_params *p = ss_model_param_views(m);
        assert_true(p->cls_ow == ss_model_params(m) + ow->offset && p->cls_ob == ss_model_params(m) + ob->offset);
        assert_true(pooler ? p->cls_pw == ss_model_params(m) + pw->offset : p->cls_pw == NULL);
        double ss = 0;
        for (int i = 0; i < K * C; i++) ss += (double)p->cls_ow[i] * p->cls_ow[i];
        assert_true(sqrt(ss / (K * C)) > 0.01 && sqrt(ss / (K * C)) < 0.04);
        for (int i = 0; i < K; i++) assert_true(p->cls_ob[i] == 0.0f);

        fill_params(m, 4);
        batch b;
        make_batch(&b, 1, 1);
        ss_model_zero_grads(m);
        ss_cls_stats s;
        CHECK_OK(ss_model_body_forward(m, b.tokens, b.kv, B, T, 1, 0, NULL, &err), &err);
        CHECK_OK(ss_cls_head(m, b.kv, LABELS, WEIGHTS, 1.0f, 1, NULL, &s, &err), &err);
        const float *g = ss_model_grads(m);
        for (size_t i = 0; i < off; i++) assert_true(g[i] == 0.0f);
        for (size_t t = 0; t < nt; t++) {
            const ss_param_info *ti = ss_model_tensor(m, t);
            if (ti->offset < off) continue;
            double mx = 0;
            for (size_t k = 0; k < ti->numel; k++) mx = fmax(mx, fabs(g[ti->offset + k]));
            if (mx == 0) fail_msg("%s has no gradient", ti->name);
        }
        ss_model_free(m);
    }
    /* other heads: LM has none of its own, DISC/MLM start at their first tensor */
    ss_model_config c = cls_config(SS_DECODER, SS_POOL_CLS, 0);
    ss_model *m;
    c.head = SS_HEAD_LM;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    assert_int_equal(ss_model_head_offset(m), ss_model_num_params(m));
    ss_model_free(m);
    c.head = SS_HEAD_DISC;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    assert_int_equal(ss_model_head_offset(m), ss_model_find_tensor(m, "disc_head.dense.weight")->offset);
    ss_model_free(m);
    c.head = SS_HEAD_MLM;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    assert_int_equal(ss_model_head_offset(m), ss_model_find_tensor(m, "mlm_head.dense.weight")->offset);
    ss_model_free(m);
}

/* Save and load a classifier: config.json has the head's fields, the
 * parameters come back bit for bit, and the loaded model classifies alike. */
static void test_save_load_roundtrip(void **state) {
    (void)state;
    ss_error err = {0};
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/clf", test_tmpdir());
    ss_model *m = new_model(cls_config(SS_DECODER, SS_POOL_LAST, 1), 8), *back;
    CHECK_OK(ss_model_save(m, dir, NULL, 0, &err), &err);
    snprintf(path, sizeof path, "%s/config.json", dir);
    ss_buf js = {0};
    CHECK_OK(ss_read_file(path, &js, &err), &err);
    assert_non_null(strstr(js.data, "\"n_classes\":\t3"));
    assert_non_null(strstr(js.data, "\"pooling\":\t\"last\""));
    assert_non_null(strstr(js.data, "\"pooler\":\ttrue"));
    ss_buf_free(&js);
    CHECK_OK(ss_model_load(&back, dir, &err), &err);
    const ss_model_config *c = ss_model_config_of(back);
    assert_true(c->head == SS_HEAD_CLS && c->n_classes == K && c->pooling == SS_POOL_LAST && c->pooler == 1);
    assert_int_equal(ss_model_num_params(back), ss_model_num_params(m));
    assert_memory_equal(ss_model_params(back), ss_model_params(m), ss_model_num_params(m) * sizeof(float));
    batch b;
    make_batch(&b, 1, 1);
    float p1[B * K], p2[B * K];
    run(m, &b, 0, p1, NULL);
    run(back, &b, 0, p2, NULL);
    assert_memory_equal(p1, p2, sizeof p1);
    ss_model_free(back);
    ss_model_free(m);
}

/* load_body copies embeddings, blocks and final LayerNorm from a pretrained
 * model of another head (MLM; an RTD run with its generator), leaves the
 * classifier's head alone, and names the first differing field. */
static void test_load_body(void **state) {
    (void)state;
    ss_error err = {0};
    const char *tmp = test_tmpdir();
    char mlm_dir[512], rtd_dir[512];
    snprintf(mlm_dir, sizeof mlm_dir, "%s/mlm", tmp);
    snprintf(rtd_dir, sizeof rtd_dir, "%s/rtd", tmp);
    ss_model_config pc = cls_config(SS_ENCODER, SS_POOL_CLS, 0);
    pc.head = SS_HEAD_MLM;
    pc.n_classes = 0;
    ss_model *pre = new_model(pc, 100);
    CHECK_OK(ss_model_save(pre, mlm_dir, NULL, 0, &err), &err);
    ss_model *clf = new_model(cls_config(SS_ENCODER, SS_POOL_CLS, 1), 200);
    size_t off = ss_model_head_offset(clf), n = ss_model_num_params(clf);
    float *head = malloc((n - off) * sizeof *head);
    memcpy(head, ss_model_params(clf) + off, (n - off) * sizeof *head);
    CHECK_OK(ss_model_load_body(clf, mlm_dir, &err), &err);
    /* body tensors (everything before the head) equal the pretrained ones by name */
    size_t copied = 0;
    for (size_t i = 0; i < ss_model_num_tensors(clf); i++) {
        const ss_param_info *t = ss_model_tensor(clf, i), *s = ss_model_find_tensor(pre, t->name);
        if (t->offset >= off) {
            assert_null(s);
            continue;
        }
        assert_non_null(s);
        assert_memory_equal(ss_model_params(clf) + t->offset, ss_model_params(pre) + s->offset,
                            t->numel * sizeof(float));
        copied += t->numel;
    }
    assert_int_equal(copied, off);
    assert_memory_equal(ss_model_params(clf) + off, head, (n - off) * sizeof *head);

    /* an RTD run: discriminator + generator in one file */
    ss_model_config dc = pc, gc = pc;
    dc.head = SS_HEAD_DISC;
    gc.d_model = 4;
    gc.n_head = 1;
    gc.d_ff = 6;
    gc.d_embed = C;
    ss_model *disc = new_model(dc, 300), *gen;
    CHECK_OK(ss_model_create_shared(&gen, &gc, disc, &err), &err);
    fill_params(gen, 301);
    CHECK_OK(ss_model_save_with(disc, gen, rtd_dir, NULL, 0, &err), &err);
    CHECK_OK(ss_model_load_body(clf, rtd_dir, &err), &err);
    assert_memory_equal(ss_model_params(clf), ss_model_params(disc), off * sizeof(float));
    assert_memory_equal(ss_model_params(clf) + off, head, (n - off) * sizeof *head);
    ss_model_free(gen);
    ss_model_free(disc);

    /* mismatches: the first differing field with both values */
    struct { const char *field; int d_model, n_layer, vocab; ss_model_kind kind; const char *msg; } bad[] = {
        {"d_model", 16, L, V, SS_ENCODER, "pretrained d_model 8 differs from this model's 16"},
        {"n_layer", C, 1, V, SS_ENCODER, "pretrained n_layer 2 differs from this model's 1"},
        {"vocab", C, L, V + 1, SS_ENCODER, "pretrained vocab_size 13 differs from this model's 14"},
        {"kind", C, L, V, SS_DECODER, "pretrained kind encoder differs from this model's decoder"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ss_model_config c = cls_config(bad[i].kind, SS_POOL_CLS, 1);
        c.d_model = bad[i].d_model;
        c.n_layer = bad[i].n_layer;
        c.vocab_size = bad[i].vocab;
        ss_model *o = new_model(c, 1);
        assert_int_equal(ss_model_load_body(o, mlm_dir, &err), SS_ERR_ARG);
        if (!strstr(err.msg, bad[i].msg) || !strstr(err.msg, mlm_dir))
            fail_msg("%s: error '%s' should say '%s' and name %s", bad[i].field, err.msg, bad[i].msg, mlm_dir);
        ss_model_free(o);
    }
    /* a shorter classifier takes the first rows of the position table; a
     * longer one is refused */
    ss_model_config sc = cls_config(SS_ENCODER, SS_POOL_CLS, 1);
    sc.max_seq = pc.max_seq - 3;
    ss_model *shorter = new_model(sc, 7);
    CHECK_OK(ss_model_load_body(shorter, mlm_dir, &err), &err);
    const ss_param_info *pos = ss_model_find_tensor(shorter, "embeddings.position.weight");
    assert_memory_equal(ss_model_params(shorter) + pos->offset,
                        ss_model_params(pre) + ss_model_find_tensor(pre, "embeddings.position.weight")->offset,
                        pos->numel * sizeof(float));
    ss_model_free(shorter);
    sc.max_seq = pc.max_seq + 1;
    ss_model *longer = new_model(sc, 8);
    assert_int_equal(ss_model_load_body(longer, mlm_dir, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "max_seq"));
    ss_model_free(longer);
    /* a directory without a model */
    assert_int_not_equal(ss_model_load_body(clf, tmp, &err), SS_OK);
    free(head);
    ss_model_free(clf);
    ss_model_free(pre);
}

int main(void) {
    /* One thread: the gradient checks run some 100,000 forward passes of a model
     * with 8-wide layers, where OpenMP's barriers cost far more than a
     * second core gives (measured: 5 s on one thread, 3.5 minutes and more
     * on two). The kernels' threading is tested by tests/test_nn_*. */
    omp_set_num_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_params_and_head_offset),
        cmocka_unit_test(test_body_backward_to),
        cmocka_unit_test(test_gradcheck_encoder),
        cmocka_unit_test(test_gradcheck_decoder),
        cmocka_unit_test(test_gradcheck_bidirectional_decoder),
        cmocka_unit_test(test_decoder_bidirectional),
        cmocka_unit_test(test_gradcheck_defaults_and_dropout),
        cmocka_unit_test(test_gradcheck_rejects_wrong_gradients),
        cmocka_unit_test(test_probs_stats_and_ignored_rows),
        cmocka_unit_test(test_dropout_only_when_training),
        cmocka_unit_test(test_input_errors),
        cmocka_unit_test(test_lm_paths_refuse_cls),
        cmocka_unit_test(test_decoder_right_padding),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_load_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
