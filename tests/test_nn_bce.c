/* Binary cross-entropy on logits: values against the direct formula in double
 * (including large |z| where the naive form overflows), and the gradient
 * against central finite differences, with a check that a wrong gradient
 * would be caught. */
#include <math.h>

#include "testutil.h"

#include "selfsup/nn.h"

static double ref_loss(double z, int y) {
    double s = 1.0 / (1.0 + exp(-z));
    return -(y ? log(s) : log1p(-s));
}

static void test_values_and_extremes(void **state) {
    (void)state;
    float z[8] = {-3.5f, -0.2f, 0.0f, 0.7f, 4.0f, 12.0f, -60.0f, 60.0f};
    uint8_t y[8] = {0, 1, 1, 0, 1, 0, 1, 0};
    double expect = 0;
    for (int i = 0; i < 6; i++) expect += ref_loss(z[i], y[i]);
    expect += 60.0 + log1p(exp(-60.0)); /* z=-60, y=1: -log sigmoid(-60) ~ 60 */
    expect += 60.0 + log1p(exp(-60.0)); /* z=60, y=0 */
    float g[8];
    memcpy(g, z, sizeof z);
    double got = ss_bce_logits_fused(g, y, 8, 0.5f);
    assert_true(fabs(got - expect) < 1e-4 * expect);
    for (int i = 0; i < 8; i++) {
        double s = 1.0 / (1.0 + exp(-(double)z[i]));
        assert_true(fabs(g[i] - (s - y[i]) * 0.5) < 1e-6);
        assert_true(isfinite(g[i]));
    }
}

/* Largest |analytic - numeric| relative to the gradient's scale. */
static double grad_mismatch(const float *analytic, const float *z, const uint8_t *y, int n, float scale) {
    double worst = 0;
    for (int i = 0; i < n; i++) {
        const double h = 1e-3;
        double lp = scale * ref_loss(z[i] + h, y[i]), lm = scale * ref_loss(z[i] - h, y[i]);
        double num = (lp - lm) / (2 * h);
        worst = fmax(worst, fabs(num - analytic[i]) / (fabs(num) + 1e-3));
    }
    return worst;
}

static void test_gradient_finite_differences(void **state) {
    (void)state;
    enum { N = 64 };
    float z[N], g[N];
    uint8_t y[N];
    for (int i = 0; i < N; i++) {
        z[i] = (float)(((i * 37) % 41) - 20) * 0.3f;
        y[i] = (uint8_t)((i * 7) % 3 == 0);
    }
    memcpy(g, z, sizeof z);
    ss_bce_logits_fused(g, y, N, 0.37f);
    assert_true(grad_mismatch(g, z, y, N, 0.37f) < 1e-4);
    g[5] *= 1.05f; /* a wrong gradient must be detected */
    assert_true(grad_mismatch(g, z, y, N, 0.37f) > 1e-3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_extremes),
        cmocka_unit_test(test_gradient_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
