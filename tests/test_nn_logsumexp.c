/* Log-sum-exp over groups: against the direct formula in double, at logits
 * whose plain exp overflows, with empty and -inf groups, and the shares
 * written over the values themselves. */
#include <math.h>

#include "testutil.h"

#include "selfsup/nn.h"

static void test_against_direct_formula(void **state) {
    (void)state;
    float x[6] = {-1.5f, 0.25f, 2.0f, -0.75f, 3.5f, 0.0f};
    int32_t g[6] = {1, 0, 1, 2, 0, 1};
    float lse[3], share[6];
    ss_logsumexp_groups(x, g, 6, 3, lse, share);
    for (int k = 0; k < 3; k++) {
        double sum = 0;
        for (int j = 0; j < 6; j++)
            if (g[j] == k) sum += exp((double)x[j]);
        assert_true(fabs(lse[k] - log(sum)) < 1e-6);
        double shares = 0;
        for (int j = 0; j < 6; j++)
            if (g[j] == k) {
                assert_true(fabs(share[j] - exp((double)x[j]) / sum) < 1e-6);
                shares += share[j];
            }
        assert_true(fabs(shares - 1) < 1e-6);
    }
    assert_true(lse[2] == x[3] && share[3] == 1.0f); /* a group of one value is that value, exactly */
}

static void test_large_values_and_in_place(void **state) {
    (void)state;
    float x[4] = {1000.0f, 999.0f, -1000.0f, -1001.0f};
    int32_t g[4] = {0, 0, 1, 1};
    float lse[2];
    ss_logsumexp_groups(x, g, 4, 2, lse, x); /* shares over the values */
    double want = 1000.0 + log1p(exp(-1.0));
    assert_true(fabs(lse[0] - want) < 1e-3 && fabs(lse[1] - (want - 2000.0)) < 1e-3);
    /* float's spacing at 1000 is 6e-5: the shares are as exact as x - lse can be */
    assert_true(fabs(x[0] - 1.0 / (1.0 + exp(-1.0))) < 1e-4 && fabs(x[1] - 1.0 / (1.0 + exp(1.0))) < 1e-4);
    assert_true(fabs(x[0] + x[1] - 1) < 1e-4 && fabs(x[2] + x[3] - 1) < 1e-4);
}

static void test_empty_and_minus_infinity_groups(void **state) {
    (void)state;
    float x[3] = {0.5f, -INFINITY, -INFINITY};
    int32_t g[3] = {0, 1, 1};
    float lse[3], share[3];
    ss_logsumexp_groups(x, g, 3, 3, lse, share);
    assert_true(lse[0] == 0.5f && share[0] == 1.0f);
    assert_true(lse[1] == -INFINITY && share[1] == 0.0f && share[2] == 0.0f); /* no NaN from -inf - -inf */
    assert_true(lse[2] == -INFINITY); /* a group with no value */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_direct_formula),
        cmocka_unit_test(test_large_values_and_in_place),
        cmocka_unit_test(test_empty_and_minus_infinity_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
