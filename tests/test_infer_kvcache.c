/* Incremental decoding with a KV cache (src/infer/kv_cache.c) against the
 * no-cache reference: a full forward pass over the whole prefix (itself
 * checked against PyTorch by test_model_parity). A prompt prefilled on an
 * empty state runs the very kernels of the full pass: the same logits bit
 * for bit. After that, at every position of a 64-token sequence, the cached
 * path (one-row steps, or rows appended in a batch) must give the same
 * logits to 5e-6 of the largest |logit| (float rounding of sgemv against
 * sgemm; measured 2e-6). Odd sizes (C = 72, 3 heads of 24, V = 101) and
 * weights scaled up so the logits are far from uniform. */
#include <math.h>

#include "testutil.h"

#include "selfsup/generate.h"
#include "selfsup/model.h"

#define TOL 5e-6
#define T_MAX 64
#define V_SIZE 101

/* A random model; all parameters (LayerNorm gains included) times 3 so the
 * logits spread over several nats. d_embed != 0 with an MLM head exercises
 * the embedding projection and the head transform. */
static ss_model *make_model(ss_model_kind kind, ss_head_kind head, int d_embed, uint64_t seed) {
    ss_error err = {0};
    ss_model_config c = {.kind = kind, .vocab_size = V_SIZE, .n_layer = 2, .d_model = 72, .n_head = 3,
                         .d_ff = 200, .max_seq = T_MAX, .dropout = 0.1f, .d_embed = d_embed, .head = head};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    ss_model_init_weights(m, seed);
    float *p = ss_model_params(m);
    for (size_t i = 0; i < ss_model_num_params(m); i++) p[i] *= 3.0f;
    if (head == SS_HEAD_MLM) { /* zero-initialised biases: make them matter */
        const ss_params *v = ss_model_param_views(m);
        for (int i = 0; i < V_SIZE; i++) v->mlm_bias[i] = 0.5f * sinf((float)i);
    }
    return m;
}

static void random_tokens(int32_t *t, int n, uint64_t seed) {
    ss_rng r;
    ss_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) t[i] = (int32_t)ss_rng_below(&r, V_SIZE);
}

/* max |a - b| / max |b|. */
static double rel_err(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

static void expect_match(ss_model *m, const int32_t *tok, int n, const float *got) {
    ss_error err = {0};
    float ref[V_SIZE];
    CHECK_OK(ss_decoder_full_logits(m, tok, n, ref, &err), &err);
    double e = rel_err(got, ref, V_SIZE);
    if (!(e <= TOL)) fail_msg("position %d: cached logits differ from the full pass by %.3g (relative)", n, e);
}

/* Prefill tokens[0..k) in one batch, then step through the rest, checking
 * the logits at every position. */
static void run_split(ss_model *m, ss_decoder_state *s, const int32_t *tok, int k) {
    ss_error err = {0};
    float logits[V_SIZE];
    ss_decoder_state_reset(s);
    CHECK_OK(ss_decoder_prefill(s, tok, k, logits, &err), &err);
    assert_int_equal(ss_decoder_state_length(s), k);
    float ref[V_SIZE];
    CHECK_OK(ss_decoder_full_logits(m, tok, k, ref, &err), &err);
    assert_memory_equal(logits, ref, sizeof ref);
    for (int t = k; t < T_MAX; t++) {
        CHECK_OK(ss_decoder_step(s, tok[t], logits, &err), &err);
        assert_int_equal(ss_decoder_state_length(s), t + 1);
        expect_match(m, tok, t + 1, logits);
    }
}

static void check_model_matches(ss_model *m) {
    ss_error err = {0};
    int32_t tok[T_MAX];
    random_tokens(tok, T_MAX, 7);
    float ref[V_SIZE];
    CHECK_OK(ss_decoder_full_logits(m, tok, T_MAX, ref, &err), &err);
    float lo = ref[0], hi = ref[0];
    for (int i = 1; i < V_SIZE; i++) { lo = fminf(lo, ref[i]); hi = fmaxf(hi, ref[i]); }
    assert_true(hi - lo > 4.0f); /* far from uniform, so a wrong cache shows */
    ss_decoder_state *s;
    CHECK_OK(ss_decoder_state_create(&s, m, &err), &err);
    int splits[] = {1, 2, 17, 63, 64};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) run_split(m, s, tok, splits[i]);
    ss_decoder_state_free(s);
}

static void test_cached_equals_full_every_position(void **state) {
    (void)state;
    ss_model *m = make_model(SS_DECODER, SS_HEAD_LM, 0, 1);
    check_model_matches(m);
    ss_model_free(m);
}

/* The same with an embedding projection (E = 48) and an MLM-style head. */
static void test_cached_equals_full_projected_mlm_head(void **state) {
    (void)state;
    ss_model *m = make_model(SS_DECODER, SS_HEAD_MLM, 48, 2);
    check_model_matches(m);
    ss_model_free(m);
}

/* Prefill on a non-empty state appends 20 rows in one batch after 5 cached
 * ones: the same logits as one pass over all 25. */
static void test_prefill_appends(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m = make_model(SS_DECODER, SS_HEAD_LM, 0, 3);
    int32_t tok[T_MAX];
    random_tokens(tok, T_MAX, 11);
    ss_decoder_state *s;
    CHECK_OK(ss_decoder_state_create(&s, m, &err), &err);
    float logits[V_SIZE];
    CHECK_OK(ss_decoder_prefill(s, tok, 5, logits, &err), &err);
    CHECK_OK(ss_decoder_prefill(s, tok + 5, 20, logits, &err), &err);
    assert_int_equal(ss_decoder_state_length(s), 25);
    expect_match(m, tok, 25, logits);
    CHECK_OK(ss_decoder_step(s, tok[25], logits, &err), &err);
    expect_match(m, tok, 26, logits);
    ss_decoder_state_free(s);
    ss_model_free(m);
}

/* After reset the state forgets the old sequence: a different sequence then
 * gives the logits of a fresh state, bit for bit, and so does a rerun of the
 * first (determinism). */
static void test_reset_and_determinism(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m = make_model(SS_DECODER, SS_HEAD_LM, 0, 4);
    int32_t a[T_MAX], b[T_MAX];
    random_tokens(a, T_MAX, 21);
    random_tokens(b, T_MAX, 22);
    ss_decoder_state *s, *fresh;
    CHECK_OK(ss_decoder_state_create(&s, m, &err), &err);
    CHECK_OK(ss_decoder_state_create(&fresh, m, &err), &err);
    float la[3][V_SIZE], lb[2][V_SIZE];
    for (int rep = 0; rep < 3; rep++) {
        ss_decoder_state *use = rep == 1 ? fresh : s;
        const int32_t *tok = rep == 1 ? b : a;
        ss_decoder_state_reset(use);
        assert_int_equal(ss_decoder_state_length(use), 0);
        CHECK_OK(ss_decoder_prefill(use, tok, 10, la[rep], &err), &err);
        for (int t = 10; t < 40; t++) CHECK_OK(ss_decoder_step(use, tok[t], la[rep], &err), &err);
    }
    assert_memory_equal(la[0], la[2], sizeof la[0]); /* same sequence twice */
    /* s ran a, a; now b after a reset must equal fresh's b */
    ss_decoder_state_reset(s);
    CHECK_OK(ss_decoder_prefill(s, b, 10, lb[0], &err), &err);
    for (int t = 10; t < 40; t++) CHECK_OK(ss_decoder_step(s, b[t], lb[0], &err), &err);
    assert_memory_equal(lb[0], la[1], sizeof lb[0]);
    expect_match(m, b, 40, lb[0]);
    ss_decoder_state_free(s);
    ss_decoder_state_free(fresh);
    ss_model_free(m);
}

static void test_max_seq_and_bad_tokens(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m = make_model(SS_DECODER, SS_HEAD_LM, 0, 5);
    int32_t tok[T_MAX + 1];
    random_tokens(tok, T_MAX + 1, 31);
    ss_decoder_state *s;
    CHECK_OK(ss_decoder_state_create(&s, m, &err), &err);
    float logits[V_SIZE];
    /* too long in one prefill: rejected, state untouched */
    assert_int_equal(ss_decoder_prefill(s, tok, T_MAX + 1, logits, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "max_seq 64"));
    assert_int_equal(ss_decoder_state_length(s), 0);
    assert_int_equal(ss_decoder_full_logits(m, tok, T_MAX + 1, logits, &err), SS_ERR_RANGE);
    /* filling up then one more step */
    CHECK_OK(ss_decoder_prefill(s, tok, 60, logits, &err), &err);
    assert_int_equal(ss_decoder_prefill(s, tok, 5, logits, &err), SS_ERR_RANGE);
    assert_int_equal(ss_decoder_state_length(s), 60);
    for (int t = 60; t < T_MAX; t++) CHECK_OK(ss_decoder_step(s, tok[t], logits, &err), &err);
    assert_int_equal(ss_decoder_step(s, tok[0], logits, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "max_seq"));
    assert_int_equal(ss_decoder_state_length(s), T_MAX);
    /* token ids outside the vocabulary, and an empty prefill */
    ss_decoder_state_reset(s);
    assert_int_equal(ss_decoder_step(s, V_SIZE, logits, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "101"));
    assert_int_equal(ss_decoder_step(s, -1, logits, &err), SS_ERR_RANGE);
    int32_t bad[3] = {1, 2, V_SIZE + 7};
    assert_int_equal(ss_decoder_prefill(s, bad, 3, logits, &err), SS_ERR_RANGE);
    assert_non_null(strstr(err.msg, "position 2"));
    assert_int_equal(ss_decoder_state_length(s), 0);
    assert_int_equal(ss_decoder_prefill(s, tok, 0, logits, &err), SS_ERR_ARG);
    /* the state still works after the errors */
    CHECK_OK(ss_decoder_prefill(s, tok, 3, logits, &err), &err);
    expect_match(m, tok, 3, logits);
    ss_decoder_state_free(s);
    ss_model_free(m);
}

static void test_encoder_rejected(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m = make_model(SS_ENCODER, SS_HEAD_MLM, 0, 6);
    ss_decoder_state *s = NULL;
    assert_int_equal(ss_decoder_state_create(&s, m, &err), SS_ERR_ARG);
    assert_null(s);
    assert_non_null(strstr(err.msg, "needs a decoder"));
    assert_non_null(strstr(err.msg, "fill-mask"));
    int32_t tok[4] = {1, 2, 3, 4};
    float logits[V_SIZE];
    assert_int_equal(ss_decoder_full_logits(m, tok, 4, logits, &err), SS_ERR_ARG);
    ss_model_free(m);
    m = make_model(SS_DECODER, SS_HEAD_DISC, 0, 6);
    assert_int_equal(ss_decoder_state_create(&s, m, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "discriminator"));
    ss_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cached_equals_full_every_position),
        cmocka_unit_test(test_cached_equals_full_projected_mlm_head),
        cmocka_unit_test(test_prefill_appends),
        cmocka_unit_test(test_reset_and_determinism),
        cmocka_unit_test(test_max_seq_and_bad_tokens),
        cmocka_unit_test(test_encoder_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
