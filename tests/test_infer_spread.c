/* The spread of a set of vectors (selfsup/spread.h), against hand
 * computations: vectors along one direction (mean cosine 1, participation
 * ratio 1), an orthonormal set (cosine 0, the covariance of the centred
 * basis has d - 1 equal eigenvalues), a zero vector (it adds no cosine),
 * accumulators of parts summed equal to one over all rows, and a nearly
 * collapsed set far from the origin (its covariance a small difference of
 * large second moments). */
#include "testutil.h"

#include <math.h>

#include "selfsup/spread.h"

static ss_spread_stats spread_of(const float *v, int n, int d) {
    double *acc = calloc(ss_spread_width(d), sizeof *acc);
    float *gram = malloc((size_t)d * d * sizeof *gram);
    assert_true(acc && gram);
    ss_spread_add(acc, v, n, d, gram);
    ss_spread_stats s = ss_spread_get(acc, d);
    free(acc);
    free(gram);
    return s;
}

static void test_one_direction(void **state) {
    (void)state;
    const float v[3 * 3] = {1, 2, 2, 2, 4, 4, 3, 6, 6};
    ss_spread_stats s = spread_of(v, 3, 3);
    assert_true(s.n == 3);
    assert_true(fabs(s.mean_cos - 1.0) < 1e-12);
    assert_true(fabs(s.participation - 1.0) < 1e-9);
}

static void test_orthonormal(void **state) {
    (void)state;
    enum { D = 4 };
    float v[D * D] = {0};
    for (int i = 0; i < D; i++) v[i * D + i] = 1;
    ss_spread_stats s = spread_of(v, D, D);
    assert_true(fabs(s.mean_cos) < 1e-12);
    /* C = I/4 - 1/16: eigenvalues 1/4 (three times) and 0: PR = (3/4)^2 / (3/16) = 3 */
    assert_true(fabs(s.participation - 3.0) < 1e-9);
}

static void test_zero_vector_and_parts(void **state) {
    (void)state;
    /* (1,0), (0,1), (0,0), (1,1): cosines 0, 0.7071, 0.7071 over 6 pairs (the zero vector adds 0) */
    const float v[4 * 2] = {1, 0, 0, 1, 0, 0, 1, 1};
    ss_spread_stats s = spread_of(v, 4, 2);
    assert_true(fabs(s.mean_cos - 2.0 * sqrt(0.5) / 6.0) < 1e-9);
    /* mean (0.5, 0.5), C = [[0.25, 0], [0, 0.25]]: PR 2 */
    assert_true(fabs(s.participation - 2.0) < 1e-9);
    /* two parts, each its own accumulator, summed: the same numbers */
    size_t w = ss_spread_width(2);
    double *a = calloc(w, sizeof *a), *b = calloc(w, sizeof *b);
    float gram[4];
    assert_true(a && b);
    ss_spread_add(a, v, 1, 2, gram);
    ss_spread_add(b, v + 2, 3, 2, gram);
    for (size_t k = 0; k < w; k++) a[k] += b[k];
    ss_spread_stats t = ss_spread_get(a, 2);
    assert_true(t.n == 4 && fabs(t.mean_cos - s.mean_cos) < 1e-12 && fabs(t.participation - s.participation) < 1e-9);
    free(a);
    free(b);
}

/* 512 vectors of width 64: a common vector of norm 8 plus +-0.8 and +-0.4
 * along two axes (variances 0.64 and 0.16, 4:1): the covariance's trace is
 * 1.2% of the second moment's; PR = (4 + 1)^2 / (16 + 1). */
static void test_collapsed_far_from_origin(void **state) {
    (void)state;
    enum { N = 512, D = 64 };
    float *v = malloc((size_t)N * D * sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) v[i * D + j] = 1.0f; /* norm 8 */
        float a = (i % 2 ? 0.8f : -0.8f), b = ((i / 2) % 2 ? 0.4f : -0.4f);
        v[i * D + 0] += a; /* +-0.8: variance 0.64 */
        v[i * D + 1] += b; /* +-0.4: variance 0.16 */
    }
    ss_spread_stats s = spread_of(v, N, D);
    assert_true(fabs(s.participation - 25.0 / 17.0) < 1e-4);
    assert_true(fabs(s.mean_cos - 0.9878157776) < 1e-7); /* numpy, from the same vectors */
    /* fewer than 2 vectors: nothing to measure */
    ss_spread_stats one = spread_of(v, 1, D);
    assert_true(one.n == 1 && isnan(one.mean_cos) && isnan(one.participation));
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_direction),
        cmocka_unit_test(test_orthonormal),
        cmocka_unit_test(test_zero_vector_and_parts),
        cmocka_unit_test(test_collapsed_far_from_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
