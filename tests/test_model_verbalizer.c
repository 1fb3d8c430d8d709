/* The verbalizer head (prompt-based fine-tuning, ss_verbalizer_head): its
 * class logits are the LM/MLM head's full-vocabulary logits (ss_lm_head_logits)
 * at the chosen tokens (with several words per class, the log-sum-exp of
 * theirs), its loss the cross-entropy of their softmax, and its gradient
 * through the whole model (head, the words' embedding rows, the MLM
 * transform, the body) matches finite differences for a decoder with an LM
 * head and an encoder with an MLM head (padding, class weights, an ignored
 * row, dropout, one and several words per class); the comparison rejects a
 * gradient 1% off; bad input is an error naming it.
 *
 * The numeric derivative is the 5-point stencil with h = 1e-2 on an fp32
 * model, elementwise tolerance 2e-4 relative + 2e-4 of the largest gradient
 * (the reasoning of tests/test_model_cls_head.c, which uses the same). */
#include "fill_params.h"
#include "testutil.h"

#include <math.h>

#include "selfsup/model.h"

enum { V = 13, L = 2, C = 8, NH = 2, F = 12, MAXT = 8, B = 4, T = 6, K = 3 };

#define FD_H 1e-2f
#define RTOL 2e-4
#define ATOL 2e-4

static const int LENGTHS[B] = {6, 4, 6, 2};
static const int32_t LABELS[B] = {2, 0, -1, 1};
static const float WEIGHTS[K] = {0.5f, 2.0f, 1.25f};
static const int32_t IDS[K] = {7, 2, 11};
static const ss_verbalizer_tokens ONE = {IDS, NULL, K, K};
/* several words per class, the classes interleaved: class 0 {7, 4}, 1 {2},
 * 2 {11, 9, 0} */
enum { W = 6 };
static const int32_t WIDS[W] = {7, 2, 11, 4, 9, 0}, WLABEL[W] = {0, 1, 2, 0, 2, 2};
static const ss_verbalizer_tokens SEVERAL = {WIDS, WLABEL, W, K};

typedef struct {
    int32_t tokens[B * T], pos[B];
    uint8_t kv[B * T];
    const float *weights;
    double weight_sum;
} batch;

static ss_model *new_model(ss_model_kind kind, float dropout, uint64_t seed) {
    ss_model_config c = {.kind = kind, .vocab_size = V, .n_layer = L, .d_model = C, .n_head = NH, .d_ff = F,
                         .max_seq = MAXT, .dropout = dropout,
                         .head = kind == SS_ENCODER ? SS_HEAD_MLM : SS_HEAD_LM};
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    fill_params(m, seed);
    return m;
}

/* Right-padded rows; the word's position: the middle (encoder: where a
 * [MASK] would be) or the last valid token (decoder). */
static void make_batch(batch *b, ss_model_kind kind, int weighted) {
    uint64_t s = 99;
    for (int i = 0; i < B * T; i++) {
        b->tokens[i] = (int32_t)((fill_urand(&s) + 1.0f) * 0.5f * V) % V;
        b->kv[i] = i % T < LENGTHS[i / T];
    }
    for (int r = 0; r < B; r++) b->pos[r] = r * T + (kind == SS_ENCODER ? LENGTHS[r] / 2 : LENGTHS[r] - 1);
    b->weights = weighted ? WEIGHTS : NULL;
    b->weight_sum = 0;
    for (int r = 0; r < B; r++)
        if (LABELS[r] >= 0) b->weight_sum += weighted ? WEIGHTS[LABELS[r]] : 1.0;
}

static double run(ss_model *m, const batch *b, const ss_verbalizer_tokens *v, int want_grad, float *probs) {
    ss_error err = {0};
    ss_cls_stats s;
    CHECK_OK(ss_model_body_forward(m, b->tokens, b->kv, B, T, 1, 1234, NULL, &err), &err);
    CHECK_OK(ss_verbalizer_head(m, b->pos, B, v, LABELS, b->weights, (float)(1.0 / b->weight_sum), want_grad, probs,
                                &s, &err), &err);
    if (want_grad) ss_model_body_backward(m);
    assert_int_equal(s.n, 3);
    return s.loss_sum / b->weight_sum;
}

/* The class probabilities are the share of each class's words in the
 * summed probability of all words under the full head's softmax (one word
 * per class: the softmax of the full head's logits at the verbalizer
 * tokens), and the loss the mean weighted CE of them. */
static void check_against_full_head(ss_model_kind kind, const ss_verbalizer_tokens *v) {
    ss_model *m = new_model(kind, 0.0f, 5);
    batch b;
    make_batch(&b, kind, 1);
    float probs[B * K], logits[B * V];
    ss_error err = {0};
    double loss = run(m, &b, v, 0, probs);
    CHECK_OK(ss_model_body_forward(m, b.tokens, b.kv, B, T, 1, 1234, NULL, &err), &err);
    CHECK_OK(ss_lm_head_logits(m, b.pos, B, logits, &err), &err);
    double want = 0;
    for (int r = 0; r < B; r++) {
        double pk[K] = {0}, all = 0; /* unnormalised exp(logit) summed per class, and over the words */
        for (int j = 0; j < v->n_words; j++) {
            double e = exp(logits[r * V + v->ids[j]]);
            pk[v->label ? v->label[j] : j] += e;
            all += e;
        }
        for (int k = 0; k < K; k++)
            if (fabs(pk[k] / all - probs[r * K + k]) > 1e-5)
                fail_msg("row %d class %d: %g, expected %g", r, k, probs[r * K + k], pk[k] / all);
        if (LABELS[r] >= 0) want += WEIGHTS[LABELS[r]] * -log(pk[LABELS[r]] / all);
    }
    want /= b.weight_sum;
    if (fabs(loss - want) > 1e-5 * fmax(1, want)) fail_msg("loss %.9g, expected %.9g", loss, want);
    ss_model_free(m);
}

static void test_matches_full_head(void **state) {
    (void)state;
    check_against_full_head(SS_DECODER, &ONE);
    check_against_full_head(SS_ENCODER, &ONE);
    check_against_full_head(SS_DECODER, &SEVERAL);
    check_against_full_head(SS_ENCODER, &SEVERAL);
}

/* The same words listed as one per class without a label array, or with
 * label[j] = j, give the same bits. */
static void test_identity_labels_same_bits(void **state) {
    (void)state;
    static const int32_t ident[K] = {0, 1, 2};
    const ss_verbalizer_tokens labelled = {IDS, ident, K, K};
    for (int kind = 0; kind < 2; kind++) {
        ss_model_kind mk = kind ? SS_ENCODER : SS_DECODER;
        ss_model *m = new_model(mk, 0.1f, 5);
        batch b;
        make_batch(&b, mk, 1);
        size_t n = ss_model_num_params(m);
        float pa[B * K], pb[B * K], *ga = malloc(n * sizeof *ga);
        assert_non_null(ga);
        ss_model_zero_grads(m);
        double la = run(m, &b, &ONE, 1, pa);
        memcpy(ga, ss_model_grads(m), n * sizeof *ga);
        ss_model_zero_grads(m);
        double lb = run(m, &b, &labelled, 1, pb);
        assert_true(la == lb);
        assert_memory_equal(pa, pb, sizeof pa);
        assert_memory_equal(ga, ss_model_grads(m), n * sizeof *ga);
        free(ga);
        ss_model_free(m);
    }
}

static void numeric(ss_model *m, const batch *b, const ss_verbalizer_tokens *v, double *num) {
    float *p = ss_model_params(m);
    for (size_t i = 0; i < ss_model_num_params(m); i++) {
        float x = p[i];
        double l[4];
        const float off[4] = {2 * FD_H, FD_H, -FD_H, -2 * FD_H};
        for (int k = 0; k < 4; k++) {
            p[i] = x + off[k];
            l[k] = run(m, b, v, 0, NULL);
        }
        p[i] = x;
        num[i] = (-l[0] + 8 * l[1] - 8 * l[2] + l[3]) / (12.0 * (double)FD_H);
    }
}

/* First mismatching element as a message, or NULL. */
static const char *mismatch(const ss_model *m, const float *g, const double *num, char *msg, size_t cap) {
    double gmax = 0;
    for (size_t i = 0; i < ss_model_num_params(m); i++) gmax = fmax(gmax, fabs(num[i]));
    for (size_t t = 0; t < ss_model_num_tensors(m); t++) {
        const ss_param_info *p = ss_model_tensor(m, t);
        for (size_t k = 0; k < p->numel; k++) {
            double a = g[p->offset + k], n = num[p->offset + k];
            if (!(fabs(a - n) <= RTOL * fmax(fabs(a), fabs(n)) + ATOL * gmax)) {
                snprintf(msg, cap, "%s[%zu]: analytic %.7g numeric %.7g (largest %.3g)", p->name, k, a, n, gmax);
                return msg;
            }
        }
    }
    return NULL;
}

static void gradcheck(ss_model_kind kind, const ss_verbalizer_tokens *v, int weighted, float dropout) {
    ss_model *m = new_model(kind, dropout, 7);
    batch b;
    make_batch(&b, kind, weighted);
    size_t n = ss_model_num_params(m);
    float *g = malloc(n * sizeof *g);
    double *num = malloc(n * sizeof *num);
    assert_non_null(g);
    assert_non_null(num);
    ss_model_zero_grads(m);
    run(m, &b, v, 1, NULL);
    memcpy(g, ss_model_grads(m), n * sizeof(float));
    numeric(m, &b, v, num);
    char msg[300];
    if (mismatch(m, g, num, msg, sizeof msg))
        fail_msg("%s words=%d weighted=%d dropout=%g: %s", ss_model_kind_name(kind), v->n_words, weighted,
                 (double)dropout, msg);
    /* the words' embedding rows get a gradient as outputs; every other tensor reaches the loss too */
    for (size_t t = 0; t < ss_model_num_tensors(m); t++) {
        const ss_param_info *p = ss_model_tensor(m, t);
        double mx = 0;
        for (size_t k = 0; k < p->numel; k++) mx = fmax(mx, fabs(num[p->offset + k]));
        if (mx < 1e-4) fail_msg("%s: tensor %s gets no gradient", ss_model_kind_name(kind), p->name);
    }
    const ss_params *pv = ss_model_param_views(m);
    for (int k = 0; k < v->n_words; k++) {
        size_t row = (size_t)(pv->wte - ss_model_params(m)) + (size_t)v->ids[k] * C;
        double mx = 0;
        for (int j = 0; j < C; j++) mx = fmax(mx, fabs(g[row + j]));
        assert_true(mx > 1e-4);
    }
    /* and the comparison rejects a gradient 1% off */
    for (size_t i = 0; i < n; i++) g[i] *= 1.01f;
    assert_non_null(mismatch(m, g, num, msg, sizeof msg));
    free(g);
    free(num);
    ss_model_free(m);
}

static void test_gradcheck_decoder(void **state) {
    (void)state;
    gradcheck(SS_DECODER, &ONE, 1, 0.0f);
    gradcheck(SS_DECODER, &ONE, 0, 0.2f);
    gradcheck(SS_DECODER, &SEVERAL, 1, 0.0f);
}

static void test_gradcheck_encoder(void **state) {
    (void)state;
    gradcheck(SS_ENCODER, &ONE, 1, 0.0f);
    gradcheck(SS_ENCODER, &ONE, 0, 0.2f);
    gradcheck(SS_ENCODER, &SEVERAL, 0, 0.2f);
}

static void test_bad_input(void **state) {
    (void)state;
    ss_model *m = new_model(SS_DECODER, 0.0f, 3);
    batch b;
    make_batch(&b, SS_DECODER, 0);
    ss_error err = {0};
    ss_cls_stats s;
    float probs[B * K];
    CHECK_OK(ss_model_body_forward(m, b.tokens, b.kv, B, T, 0, 0, NULL, &err), &err);
    const int32_t dup[K] = {7, 2, 7}, out[K] = {7, 2, V};
    const ss_verbalizer_tokens vdup = {dup, NULL, K, K}, vout = {out, NULL, K, K};
    assert_int_equal(ss_verbalizer_head(m, b.pos, B, &vdup, NULL, NULL, 1, 0, probs, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "have the same token 7"));
    assert_int_equal(ss_verbalizer_head(m, b.pos, B, &vout, NULL, NULL, 1, 0, probs, &s, &err), SS_ERR_RANGE);
    int32_t pos[B] = {0, 1, 2, B * T};
    assert_int_equal(ss_verbalizer_head(m, pos, B, &ONE, NULL, NULL, 1, 0, probs, &s, &err), SS_ERR_RANGE);
    const int32_t bad_labels[B] = {0, 3, 0, 0};
    assert_int_equal(ss_verbalizer_head(m, b.pos, B, &ONE, bad_labels, NULL, 1, 0, probs, &s, &err), SS_ERR_RANGE);
    assert_int_equal(ss_verbalizer_head(m, b.pos, B, &ONE, LABELS, NULL, 1, 1, probs, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "training body forward"));
    /* several words: a class without a word, a word's class out of range, a
     * word list without labels that is not one word per class */
    const int32_t no_class1[W] = {0, 0, 2, 0, 2, 2}, class3[W] = {0, 1, 2, 0, 3, 2};
    const ss_verbalizer_tokens vmiss = {WIDS, no_class1, W, K}, vrange = {WIDS, class3, W, K},
                               vnolab = {WIDS, NULL, W, K};
    assert_int_equal(ss_verbalizer_head(m, b.pos, B, &vmiss, NULL, NULL, 1, 0, probs, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "class 1 has no verbalizer word"));
    assert_int_equal(ss_verbalizer_head(m, b.pos, B, &vrange, NULL, NULL, 1, 0, probs, &s, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "word 4's class 3 is outside the 3 classes"));
    assert_int_equal(ss_verbalizer_head(m, b.pos, B, &vnolab, NULL, NULL, 1, 0, probs, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "6 words for 3 classes"));
    ss_model_free(m);
    ss_model_config c = {.kind = SS_ENCODER, .vocab_size = V, .n_layer = 1, .d_model = C, .n_head = NH, .d_ff = F,
                         .max_seq = MAXT, .head = SS_HEAD_CLS, .n_classes = 2, .pooling = SS_POOL_CLS};
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    CHECK_OK(ss_model_body_forward(m, b.tokens, b.kv, B, T, 0, 0, NULL, &err), &err);
    assert_int_equal(ss_verbalizer_head(m, b.pos, B, &ONE, NULL, NULL, 1, 0, probs, &s, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "not an LM head"));
    ss_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_full_head),
        cmocka_unit_test(test_identity_labels_same_bits),
        cmocka_unit_test(test_gradcheck_decoder),
        cmocka_unit_test(test_gradcheck_encoder),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
