/* An ELECTRA generator's replacements (ss_lm_head_sample): at every target
 * position one draw from softmax(logits / temperature), the logits those of
 * ss_lm_head_logits; the loss is the model's whatever the temperature; a
 * temperature that is not positive is an error.
 *
 * The frequencies of 20,000 draws per position are compared with the exact
 * probabilities: a frequency's standard deviation is at most
 * sqrt(0.25 / 20000) = 0.0035, so 0.02 (5.7 sigma) never fails by chance,
 * while the distributions at temperatures 1, 3 and 0.5 differ by more than
 * 0.06 somewhere (checked), so a sampler that ignored the temperature fails. */
#include "fill_params.h"
#include "testutil.h"

#include <math.h>

#include "selfsup/model.h"
#include "selfsup/rng.h"

enum { V = 13, L = 2, C = 8, NH = 2, F = 12, MAXT = 8, B = 2, T = 6, DRAWS = 20000 };
#define TOL 0.02

static const int32_t TOKENS[B * T] = {1, 5, 12, 3, 3, 7, 2, 9, 0, 4, 6, 11};
/* targets at three positions; -1 elsewhere */
static const int32_t TARGETS[B * T] = {-1, 4, -1, -1, 10, -1, -1, -1, 2, -1, -1, -1};
static const int32_t POS[3] = {1, 4, 8};

static ss_model *new_model(void) {
    ss_model_config c = {.kind = SS_ENCODER, .vocab_size = V, .n_layer = L, .d_model = C, .n_head = NH, .d_ff = F,
                         .max_seq = MAXT, .head = SS_HEAD_MLM};
    ss_error err = {0};
    ss_model *m;
    CHECK_OK(ss_model_create(&m, &c, &err), &err);
    fill_params(m, 7);
    return m;
}

/* p[k][v] = softmax(z[k] / temp)[v] */
static void probs_at(const float *z, double temp, double p[3][V]) {
    for (int k = 0; k < 3; k++) {
        double mx = -INFINITY, s = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, z[k * V + v]);
        for (int v = 0; v < V; v++) s += p[k][v] = exp((z[k * V + v] - mx) / temp);
        for (int v = 0; v < V; v++) p[k][v] /= s;
    }
}

static double max_diff(double a[3][V], double b[3][V]) {
    double d = 0;
    for (int k = 0; k < 3; k++)
        for (int v = 0; v < V; v++) d = fmax(d, fabs(a[k][v] - b[k][v]));
    return d;
}

/* The largest gap between the frequencies of DRAWS samples per position at
 * temperature temp and p; *loss: the loss of the first call. */
static double sample_gap(ss_model *m, float temp, double p[3][V], double *loss) {
    ss_error err = {0};
    ss_rng rng;
    ss_rng_seed(&rng, 42);
    int32_t samples[B * T];
    double freq[3][V] = {{0}};
    for (int i = 0; i < DRAWS; i++) {
        ss_loss_stats ls;
        for (int j = 0; j < B * T; j++) samples[j] = -7;
        CHECK_OK(ss_lm_head_sample(m, TARGETS, 0.0f, 0, &rng, temp, samples, &ls, &err), &err);
        if (i == 0) *loss = ls.loss_sum;
        for (int j = 0; j < B * T; j++)
            if (TARGETS[j] < 0) assert_int_equal(samples[j], -7); /* untouched */
        for (int k = 0; k < 3; k++) {
            assert_true(samples[POS[k]] >= 0 && samples[POS[k]] < V);
            freq[k][samples[POS[k]]] += 1.0 / DRAWS;
        }
    }
    return max_diff(freq, p);
}

static void test_sampling_temperature(void **state) {
    (void)state;
    ss_error err = {0};
    ss_model *m = new_model();
    uint8_t kv[B * T];
    memset(kv, 1, sizeof kv);
    CHECK_OK(ss_model_body_forward(m, TOKENS, kv, B, T, 0, 0, NULL, &err), &err);
    float z[3 * V];
    CHECK_OK(ss_lm_head_logits(m, POS, 3, z, &err), &err);
    double p1[3][V], p3[3][V], ph[3][V], loss1, loss3, lossh;
    probs_at(z, 1.0, p1);
    probs_at(z, 3.0, p3);
    probs_at(z, 0.5, ph);
    assert_true(max_diff(p1, p3) > 0.06 && max_diff(p1, ph) > 0.06); /* the check below can tell them apart */
    assert_true(sample_gap(m, 1.0f, p1, &loss1) < TOL);
    assert_true(sample_gap(m, 3.0f, p3, &loss3) < TOL);
    assert_true(sample_gap(m, 0.5f, ph, &lossh) < TOL);
    /* the loss is the model's at temperature 1: -sum log p1[target] */
    double want = 0;
    for (int k = 0; k < 3; k++) want -= log(p1[k][TARGETS[POS[k]]]);
    assert_float_equal(loss1, want, 1e-4 * want);
    assert_float_equal(loss3, want, 1e-4 * want);
    assert_float_equal(lossh, want, 1e-4 * want);
    ss_rng rng;
    ss_rng_seed(&rng, 1);
    int32_t samples[B * T];
    ss_loss_stats ls;
    assert_int_equal(ss_lm_head_sample(m, TARGETS, 0.0f, 0, &rng, 0.0f, samples, &ls, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "temperature"));
    ss_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampling_temperature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
