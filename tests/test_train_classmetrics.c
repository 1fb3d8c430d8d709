/* Classification metrics against hand-computed values. The fractions below
 * were worked out by hand from the formulas in src/train/classmetrics.c and
 * checked with numpy, computing MCC the other way, as the covariance of the
 * one-hot truth and prediction matrices (Gorodkin's definition):
 *
 *   def metrics(C):
 *       C = np.array(C, float); k = len(C)
 *       pairs = [(i, j) for i in range(k) for j in range(k) for _ in range(int(C[i, j]))]
 *       X = np.array([np.eye(k)[i] for i, _ in pairs]); Y = np.array([np.eye(k)[j] for _, j in pairs])
 *       cov = lambda A, B: ((A - A.mean(0)) * (B - B.mean(0))).sum()
 *       d = cov(X, X) * cov(Y, Y); mcc = cov(X, Y) / np.sqrt(d) if d > 0 else 0.0
 *       f1 = [2*C[c,c] / (C[:,c].sum() + C[c,:].sum()) if C[:,c].sum() + C[c,:].sum() else 0.0
 *             for c in range(k)]
 *       return np.trace(C) / C.sum(), np.mean(f1), mcc
 *
 *   [[3,2],[1,5]]             -> 0.72727272727272729, 0.71794871794871795, 0.44854261357253039
 *   [[3,1,0],[1,2,1],[0,2,4]] -> 0.6428571428571429,  0.64057239057239057, 0.46513025470953179
 *   [[2,0,0],[1,1,0],[0,0,0]] -> 0.75,                0.48888888888888893, 0.57735026918962584
 *   [[0,4],[0,6]]             -> 0.6,                 0.375,               0
 *   [[0,3],[5,0]]             -> 0,                   0,                   -1 */
#include "testutil.h"

#include <cJSON.h>
#include <math.h>

#include "selfsup/classmetrics.h"

#define EXPECT_NEAR(got, want, tol)                                                            \
    do {                                                                                       \
        double g_ = (got), w_ = (want);                                                        \
        if (!(fabs(g_ - w_) <= (tol))) fail_msg("%s = %.17g, want %.17g", #got, g_, w_);      \
    } while (0)

/* Metrics of the k x k confusion matrix C, its pairs added in an
 * interleaved order (so the counts, not the order, must matter). */
static void metrics_of(ss_class_metrics *m, int k, const int64_t *C) {
    ss_error err = {0};
    CHECK_OK(ss_class_metrics_init(m, k, &err), &err);
    int64_t left[16];
    memcpy(left, C, (size_t)(k * k) * sizeof *C);
    for (int more = 1; more;) {
        more = 0;
        for (int c = k * k - 1; c >= 0; c--)
            if (left[c]) {
                ss_class_metrics_add(m, c / k, c % k);
                left[c]--;
                more = 1;
            }
    }
    ss_class_metrics_finish(m);
    for (int c = 0; c < k * k; c++) assert_int_equal(m->confusion[c], C[c]);
}

static void expect_metrics(int k, const int64_t *C, double acc, double f1, double mcc) {
    ss_class_metrics m;
    metrics_of(&m, k, C);
    int64_t n = 0;
    for (int c = 0; c < k * k; c++) n += C[c];
    assert_int_equal(m.n, n);
    EXPECT_NEAR(m.accuracy, acc, 1e-12);
    EXPECT_NEAR(m.macro_f1, f1, 1e-12);
    EXPECT_NEAR(m.mcc, mcc, 1e-12);
    ss_class_metrics_free(&m);
}

static void test_binary(void **state) {
    (void)state;
    /* tn 3, fp 2, fn 1, tp 5: accuracy 8/11; F1 = 10/13 (class 1) and
     * 6/9 (class 0), mean 28/39; MCC = (5*3 - 2*1) / sqrt(7*6*5*4) */
    const int64_t C[] = {3, 2, 1, 5};
    expect_metrics(2, C, 8.0 / 11, 28.0 / 39, 13 / sqrt(840));
    /* perfect, inverted */
    const int64_t perfect[] = {4, 0, 0, 7}, inverted[] = {0, 3, 5, 0};
    expect_metrics(2, perfect, 1, 1, 1);
    expect_metrics(2, inverted, 0, 0, -1);
}

static void test_three_classes(void **state) {
    (void)state;
    /* t = (4, 4, 6), p = (4, 5, 5), trace 9 of 14: F1 = 6/8, 4/9, 8/11,
     * mean 761/1188; MCC = (9*14 - 66) / sqrt((196 - 66)(196 - 68)) */
    const int64_t C[] = {3, 1, 0, 1, 2, 1, 0, 2, 4};
    expect_metrics(3, C, 9.0 / 14, 761.0 / 1188, 60 / sqrt(16640));
    /* class 2 never true nor predicted: its F1 is 0 and still averaged in;
     * F1 = 4/5, 2/3, 0; MCC = (3*4 - 8) / sqrt((16 - 10)(16 - 8)) */
    const int64_t absent[] = {2, 0, 0, 1, 1, 0, 0, 0, 0};
    expect_metrics(3, absent, 0.75, 22.0 / 45, 1 / sqrt(3));
}

static void test_degenerate(void **state) {
    (void)state;
    /* a constant prediction: MCC undefined, reported as 0 */
    const int64_t constant[] = {0, 4, 0, 6};
    expect_metrics(2, constant, 0.6, 0.375, 0);
    const int64_t constant3[] = {0, 0, 5, 0, 0, 2, 0, 0, 1};
    expect_metrics(3, constant3, 1.0 / 8, (2.0 / 9) / 3, 0);
    /* one true class only, predictions varied: still 0 (sum t^2 = s^2) */
    const int64_t one_truth[] = {3, 2, 0, 0};
    expect_metrics(2, one_truth, 0.6, (6.0 / 8) / 2, 0);
    /* nothing added */
    const int64_t none[] = {0, 0, 0, 0};
    expect_metrics(2, none, 0, 0, 0);

    /* ids outside [0, k) are not counted */
    ss_class_metrics m;
    ss_error err = {0};
    CHECK_OK(ss_class_metrics_init(&m, 2, &err), &err);
    ss_class_metrics_add(&m, 1, 1);
    ss_class_metrics_add(&m, -1, 0);
    ss_class_metrics_add(&m, 0, 2);
    ss_class_metrics_add(&m, 2, 0);
    ss_class_metrics_finish(&m);
    assert_int_equal(m.n, 1);
    EXPECT_NEAR(m.accuracy, 1, 0);
    ss_class_metrics_free(&m);

    assert_int_equal(ss_class_metrics_init(&m, 0, &err), SS_ERR_ARG);
    assert_non_null(strstr(err.msg, "classes"));
    assert_null(m.confusion);
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("no number '%s'", key);
    return v->valuedouble;
}

static void test_json(void **state) {
    (void)state;
    const int64_t C[] = {3, 1, 0, 1, 2, 1, 0, 2, 4};
    ss_class_metrics m;
    metrics_of(&m, 3, C);
    char *const labels[] = {"neg", "neutral", "pos"};
    char *json = ss_class_metrics_to_json(&m, labels);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    EXPECT_NEAR(num(o, "n"), 14, 0);
    /* every double is printed so that it reads back exactly */
    assert_true(num(o, "accuracy") == m.accuracy);
    assert_true(num(o, "macro_f1") == m.macro_f1);
    assert_true(num(o, "mcc") == m.mcc);
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(o, "confusion");
    assert_true(cJSON_IsArray(conf));
    assert_int_equal(cJSON_GetArraySize(conf), 3);
    for (int i = 0; i < 3; i++) {
        const cJSON *row = cJSON_GetArrayItem(conf, i);
        assert_int_equal(cJSON_GetArraySize(row), 3);
        for (int j = 0; j < 3; j++) EXPECT_NEAR(cJSON_GetArrayItem(row, j)->valuedouble, C[i * 3 + j], 0);
    }
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "labels");
    assert_int_equal(cJSON_GetArraySize(l), 3);
    for (int i = 0; i < 3; i++) assert_string_equal(cJSON_GetArrayItem(l, i)->valuestring, labels[i]);
    cJSON_Delete(o);
    free(json);

    json = ss_class_metrics_to_json(&m, NULL);
    o = cJSON_Parse(json);
    assert_non_null(o);
    assert_null(cJSON_GetObjectItemCaseSensitive(o, "labels"));
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(o, "confusion")));
    cJSON_Delete(o);
    free(json);
    ss_class_metrics_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_three_classes),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
