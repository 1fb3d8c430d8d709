/* Gradient check of attention: central finite differences of
 * L(qkv) = sum(r * out) with respect to every element of qkv, compared with
 * the analytic backward (dout = r) of both the tiled kernel and the naive
 * reference. The comparison must also reject deliberately wrong gradients. */
#include "testutil.h"

#include <math.h>

#include "selfsup/nn.h"
#include "selfsup/nn_ref.h"

enum { B = 2, T = 5, C = 6, NH = 2, NQKV = B * T * 3 * C, NOUT = B * T * C };

/* FD step and acceptance: the float forward makes L accurate to ~1e-6, so
 * the central difference has ~1e-4 roundoff plus O(EPS^2) truncation; a
 * gradient passes if max |analytic - numeric| <= TOL * max |numeric|. */
#define EPS 1e-2f
#define TOL 5e-4

/* Padding patterns: sequence 0 is left-padded (with causal masking its rows
 * 0 and 1 see no key), sequence 1 has holes. */
static const uint8_t PADDED[B * T] = {0, 0, 1, 1, 1, 1, 0, 1, 1, 0};

static uint64_t rng_state = 0x243F6A8885A308D3ULL;
static float urand(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ULL) >> 40) / 8388608.0f - 1.0f;
}

typedef struct {
    float qkv[NQKV], r[NOUT], out[NOUT], lse[B * NH * T];
    const uint8_t *valid;
    int causal, use_ref;
} problem;

static double loss(problem *p) {
    ss_error err = {0};
    if (p->use_ref)
        CHECK_OK(ss_attention_forward_ref(p->out, p->lse, p->qkv, p->valid, p->causal,
                                          B, T, C, NH, &err), &err);
    else
        ss_attention_forward(p->out, p->lse, p->qkv, p->valid, p->causal, B, T, C, NH);
    double L = 0.0;
    for (int i = 0; i < NOUT; i++) L += (double)p->r[i] * p->out[i];
    return L;
}

static void numeric_grad(problem *p, float *g) {
    for (int i = 0; i < NQKV; i++) {
        float x = p->qkv[i];
        p->qkv[i] = x + EPS;
        double lp = loss(p);
        p->qkv[i] = x - EPS;
        double lm = loss(p);
        p->qkv[i] = x;
        g[i] = (float)((lp - lm) / (2.0 * EPS));
    }
}

/* The analytic gradient; with drop_d the backward gets out = 0, which
 * removes the D = rowsum(dO * O) term: a deliberately wrong gradient. */
static void analytic_grad(problem *p, float *g, int drop_d) {
    ss_error err = {0};
    memset(g, 0, NQKV * sizeof *g);
    loss(p); /* out, lse at the unperturbed point */
    if (p->use_ref) {
        CHECK_OK(ss_attention_backward_ref(g, p->r, p->qkv, p->valid, p->causal, B, T, C,
                                           NH, &err), &err);
        return;
    }
    static float zeros[NOUT];
    ss_attention_backward(g, p->r, drop_d ? zeros : p->out, p->lse, p->qkv, p->valid,
                          p->causal, B, T, C, NH);
}

/* Normalized max error max|a - n| / max|n|; the comparison used by every test. */
static double grad_error(const float *a, const float *n) {
    double d = 0.0, m = 1e-30;
    for (int i = 0; i < NQKV; i++) {
        double e = fabs((double)a[i] - n[i]);
        d = e > d || isnan(e) ? (isnan(e) ? INFINITY : e) : d;
        m = fabs(n[i]) > m ? fabs(n[i]) : m;
    }
    return d / m;
}

static void setup_problem(problem *p, int causal, int padded, int use_ref) {
    for (int i = 0; i < NQKV; i++) p->qkv[i] = 1.5f * urand();
    for (int i = 0; i < NOUT; i++) p->r[i] = urand();
    p->valid = padded ? PADDED : NULL;
    p->causal = causal;
    p->use_ref = use_ref;
}

static void gradcheck(int causal, int padded, int use_ref) {
    static problem p;
    static float num[NQKV], ana[NQKV];
    setup_problem(&p, causal, padded, use_ref);
    numeric_grad(&p, num);
    analytic_grad(&p, ana, 0);
    double e = grad_error(ana, num);
    if (e > TOL)
        fail_msg("causal=%d padded=%d ref=%d: gradient error %.3g > %.3g", causal, padded,
                 use_ref, e, TOL);
    if (padded) /* padding keys get exactly zero k and v gradient */
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int c = C; c < 3 * C && !PADDED[b * T + t]; c++)
                    assert_true(ana[(b * T + t) * 3 * C + c] == 0.0f);
}

static void test_bidirectional(void **state) { (void)state; gradcheck(0, 0, 0); }
static void test_causal(void **state) { (void)state; gradcheck(1, 0, 0); }
static void test_bidirectional_padded(void **state) { (void)state; gradcheck(0, 1, 0); }
static void test_causal_padded(void **state) { (void)state; gradcheck(1, 1, 0); }
static void test_reference_backward(void **state) {
    (void)state;
    for (int causal = 0; causal < 2; causal++)
        for (int padded = 0; padded < 2; padded++) gradcheck(causal, padded, 1);
}

/* The comparison rejects a backward without the D term and a gradient that
 * is off by 1%, in both masking modes. */
static void test_wrong_gradients_detected(void **state) {
    (void)state;
    static problem p;
    static float num[NQKV], ana[NQKV];
    for (int causal = 0; causal < 2; causal++) {
        setup_problem(&p, causal, 1, 0);
        numeric_grad(&p, num);
        analytic_grad(&p, ana, 1);
        double e = grad_error(ana, num);
        if (e <= 10 * TOL) fail_msg("causal=%d: dropped D term gives error only %.3g", causal, e);
        analytic_grad(&p, ana, 0);
        assert_true(grad_error(ana, num) <= TOL);
        for (int i = 0; i < NQKV; i++) ana[i] *= 1.01f;
        e = grad_error(ana, num);
        if (e <= TOL) fail_msg("causal=%d: 1%% scaled gradient gives error only %.3g", causal, e);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bidirectional),
        cmocka_unit_test(test_causal),
        cmocka_unit_test(test_bidirectional_padded),
        cmocka_unit_test(test_causal_padded),
        cmocka_unit_test(test_reference_backward),
        cmocka_unit_test(test_wrong_gradients_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
