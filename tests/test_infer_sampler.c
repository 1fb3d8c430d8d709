/* Samplers: top-k / top-p against hand-computed cases and naive sort-based
 * references, CTRL repetition penalty, temperature, greedy decoding, the
 * non-finite cases, and chi-square tests of the sampled frequencies against
 * the (renormalised) softmax with a fixed seed. */
#include <math.h>

#include "testutil.h"

#include "selfsup/generate.h"

/* ---- naive references ------------------------------------------------------ */

static const float *ref_logits;

static float ref_rank(float l) {
    return isnan(l) ? -INFINITY : l;
}

/* Order: logit descending, ties by lower id. */
static int ref_cmp(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = ref_rank(ref_logits[i]), y = ref_rank(ref_logits[j]);
    if (x != y) return x > y ? -1 : 1;
    return i < j ? -1 : 1;
}

/* The ids sorted by rank into order[V]. */
static void ref_sort(const float *logits, int V, int *order) {
    for (int i = 0; i < V; i++) order[i] = i;
    ref_logits = logits;
    qsort(order, (size_t)V, sizeof *order, ref_cmp);
}

/* Softmax in double; NaN and -inf get 0. */
static void ref_softmax(const float *logits, int V, double *p) {
    double m = -INFINITY, z = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > m) m = logits[i];
    for (int i = 0; i < V; i++) {
        p[i] = logits[i] > -INFINITY ? exp((double)logits[i] - m) : 0.0;
        z += p[i];
    }
    for (int i = 0; i < V; i++) p[i] /= z;
}

/* keep[i] = 1 for the tokens the nucleus with mass p keeps. */
static int ref_top_p(const float *logits, int V, float p, int *keep) {
    int order[512];
    double prob[512], cum = 0;
    ref_sort(logits, V, order);
    ref_softmax(logits, V, prob);
    memset(keep, 0, (size_t)V * sizeof *keep);
    int kept = 0;
    while (kept < V && prob[order[kept]] > 0 && (kept == 0 || cum < p)) {
        cum += prob[order[kept]];
        keep[order[kept++]] = 1;
    }
    return kept;
}

/* ---- top-k ------------------------------------------------------------------ */

static void assert_kept(const float *after, const float *before, int V, const int *keep) {
    for (int i = 0; i < V; i++) {
        if (keep[i]) {
            if (isnan(before[i])) assert_true(after[i] == -INFINITY);
            else assert_true(after[i] == before[i]);
        } else {
            assert_true(after[i] == -INFINITY);
        }
    }
}

static void test_top_k_hand(void **state) {
    (void)state;
    float l[6] = {1, 5, 3, 5, 2, -1};
    assert_int_equal(ss_top_k(l, 6, 2), 2);
    assert_kept(l, (float[]){1, 5, 3, 5, 2, -1}, 6, (int[]){0, 1, 0, 1, 0, 0});

    float t[6] = {2, 2, 7, 2, 1, 2}; /* ties at the cut: lower ids win */
    assert_int_equal(ss_top_k(t, 6, 3), 3);
    assert_kept(t, (float[]){2, 2, 7, 2, 1, 2}, 6, (int[]){1, 1, 1, 0, 0, 0});

    float a[4] = {0.5f, -3, 9, 1}; /* k >= V and k <= 0 keep everything */
    assert_int_equal(ss_top_k(a, 4, 4), 4);
    assert_int_equal(ss_top_k(a, 4, 100), 4);
    assert_int_equal(ss_top_k(a, 4, 0), 4);
    assert_kept(a, (float[]){0.5f, -3, 9, 1}, 4, (int[]){1, 1, 1, 1});

    float one[3] = {NAN, -4, -5}; /* NaN ranks last */
    assert_int_equal(ss_top_k(one, 3, 1), 1);
    assert_kept(one, (float[]){NAN, -4, -5}, 3, (int[]){0, 1, 0});
}

/* Random rows with many ties, -inf and NaN against the sort-based reference. */
static void test_top_k_vs_sort(void **state) {
    (void)state;
    ss_rng rng;
    ss_rng_seed(&rng, 11);
    float l[300], orig[300];
    int order[300], keep[300];
    for (int trial = 0; trial < 2000; trial++) {
        int V = 1 + (int)ss_rng_below(&rng, 300);
        for (int i = 0; i < V; i++) {
            uint64_t r = ss_rng_below(&rng, 20);
            orig[i] = r == 0 ? -INFINITY : r == 1 ? NAN : (float)((int)r % 7 - 3);
        }
        int k = 1 + (int)ss_rng_below(&rng, (uint64_t)V + 2);
        memcpy(l, orig, sizeof(float) * (size_t)V);
        int kept = ss_top_k(l, V, k);
        if (k >= V) {
            assert_int_equal(kept, V);
            for (int i = 0; i < V; i++) assert_memory_equal(&l[i], &orig[i], sizeof(float));
            continue;
        }
        assert_int_equal(kept, k);
        ref_sort(orig, V, order);
        memset(keep, 0, sizeof keep);
        for (int i = 0; i < k; i++) keep[order[i]] = 1;
        assert_kept(l, orig, V, keep);
    }
}

/* ---- top-p -------------------------------------------------------------------- */

static void test_top_p_hand(void **state) {
    (void)state;
    /* probabilities 0.1, 0.3, 0.1, 0.5 (the two 0.1 tie: id 0 goes first) */
    const float base[4] = {logf(0.1f), logf(0.3f), logf(0.1f), logf(0.5f)};
    struct {
        float p;
        int n;
        int keep[4];
    } cases[] = {
        {0.4f, 1, {0, 0, 0, 1}},   /* 0.5 >= 0.4 */
        {0.7f, 2, {0, 1, 0, 1}},   /* 0.8 */
        {0.85f, 3, {1, 1, 0, 1}},  /* 0.9: the tie goes to id 0 */
        {0.95f, 4, {1, 1, 1, 1}},  /* 1.0 */
        {1e-6f, 1, {0, 0, 0, 1}},  /* tiny p keeps the top token only */
        {0.0f, 1, {0, 0, 0, 1}},   /* at least one */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float l[4];
        memcpy(l, base, sizeof l);
        assert_int_equal(ss_top_p(l, 4, cases[c].p), cases[c].n);
        assert_kept(l, base, 4, cases[c].keep);
    }
    float l[4];
    memcpy(l, base, sizeof l);
    assert_int_equal(ss_top_p(l, 4, 1.0f), 4); /* p = 1 is off */
    assert_memory_equal(l, base, sizeof l);

    /* After top-k only the survivors carry mass: top-p renormalises over them. */
    float k[4] = {logf(0.1f), logf(0.3f), logf(0.1f), logf(0.5f)};
    ss_top_k(k, 4, 2);                      /* {0.3, 0.5} -> 0.375, 0.625 */
    assert_int_equal(ss_top_p(k, 4, 0.6f), 1); /* 0.625 >= 0.6 */
    assert_true(k[3] == base[3] && k[1] == -INFINITY);
}

static void test_top_p_vs_sort(void **state) {
    (void)state;
    ss_rng rng;
    ss_rng_seed(&rng, 12);
    float l[500], orig[500];
    int keep[500];
    for (int trial = 0; trial < 2000; trial++) {
        int V = 1 + (int)ss_rng_below(&rng, 500);
        /* near-uniform rows (one histogram bucket), moderate ones, and rows
         * spread far beyond the histogram with underflowing weights */
        const double scales[3] = {0.01, 3, 40};
        double scale = scales[trial % 3];
        for (int i = 0; i < V; i++) {
            uint64_t r = ss_rng_below(&rng, 40);
            orig[i] = r == 0 ? -INFINITY : r == 1 ? NAN : (float)(ss_rng_normal(&rng) * scale);
        }
        if (trial % 7 == 0) orig[ss_rng_below(&rng, (uint64_t)V)] = 1.0f; /* some finite mass */
        float p = ss_rng_uniform(&rng);
        memcpy(l, orig, sizeof(float) * (size_t)V);
        int kept = ss_top_p(l, V, p);
        int want = ref_top_p(orig, V, p, keep);
        if (want == 0) { /* every logit -inf or NaN: left alone */
            assert_int_equal(kept, V);
            continue;
        }
        assert_int_equal(kept, want);
        assert_kept(l, orig, V, keep);
    }
}

/* ---- temperature, repetition penalty ---------------------------------------------- */

static void test_temperature(void **state) {
    (void)state;
    float l[5] = {1.5f, -2, 0, 3.25f, -INFINITY};
    ss_temperature(l, 5, 0.5f);
    const float twice[5] = {3, -4, 0, 6.5f, -INFINITY};
    assert_memory_equal(l, twice, sizeof l);
    ss_temperature(l, 5, 4.0f);
    const float half[5] = {0.75f, -1, 0, 1.625f, -INFINITY};
    assert_memory_equal(l, half, sizeof l);
}

static void test_repetition_penalty(void **state) {
    (void)state;
    float l[6] = {2, -2, 1, 0.5f, -1, 0};
    /* ids 0 and 1 repeat and must be penalised once; -1 and 99 are out of range */
    const int32_t hist[] = {0, 1, 0, 0, 1, 3, -1, 99, 5, 0};
    ss_repetition_penalty(l, 6, hist, sizeof hist / sizeof hist[0], 2.0f);
    const float want[6] = {1, -4, 1, 0.25f, -1, 0};
    assert_memory_equal(l, want, sizeof l);

    float same[3] = {2, -2, 1};
    ss_repetition_penalty(same, 3, hist, 3, 1.0f); /* 1 = off */
    assert_memory_equal(same, ((float[]){2, -2, 1}), sizeof same);

    /* A long history (the bitmap spans several words) against a naive count. */
    float big[1000], ref[1000];
    int32_t h[5000];
    ss_rng rng;
    ss_rng_seed(&rng, 5);
    for (int i = 0; i < 1000; i++) big[i] = ref[i] = (float)ss_rng_normal(&rng);
    for (int i = 0; i < 5000; i++) h[i] = (int32_t)ss_rng_below(&rng, 1200);
    ss_repetition_penalty(big, 1000, h, 5000, 1.3f);
    for (int t = 0; t < 1000; t++) {
        int seen = 0;
        for (int i = 0; i < 5000 && !seen; i++) seen = h[i] == t;
        if (seen) ref[t] = ref[t] > 0 ? ref[t] / 1.3f : ref[t] * 1.3f;
    }
    assert_memory_equal(big, ref, sizeof big);
}

/* ---- greedy and non-finite inputs ---------------------------------------------------- */

static void test_greedy(void **state) {
    (void)state;
    float l[6] = {0.5f, 4, -1, 4, 3.9f, NAN};
    float scratch[6];
    ss_sampler_config c = {.temperature = 0, .top_k = 0, .top_p = 1, .repetition_penalty = 1};
    ss_rng rng, before;
    ss_rng_seed(&rng, 1);
    before = rng;
    for (int i = 0; i < 10; i++) assert_int_equal(ss_sample_next(l, 6, &c, NULL, 0, &rng, scratch), 1);
    assert_memory_equal(&rng, &before, sizeof rng); /* greedy draws nothing */
    /* the penalty applies before the argmax: 4/2 = 2 < 3.9 */
    c.repetition_penalty = 2;
    const int32_t hist[] = {1, 3};
    assert_int_equal(ss_sample_next(l, 6, &c, hist, 2, &rng, scratch), 4);
}

static void test_non_finite(void **state) {
    (void)state;
    ss_rng rng;
    ss_rng_seed(&rng, 2);
    float scratch[4];
    ss_sampler_config c = {.temperature = 1, .top_k = 2, .top_p = 0.9f, .repetition_penalty = 1.5f};
    const int32_t hist[] = {0, 1, 2, 3};
    float all_inf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    float nan_inf[4] = {NAN, NAN, -INFINITY, NAN};
    float all_nan[4] = {NAN, NAN, NAN, NAN};
    for (int i = 0; i < 20; i++) {
        assert_int_equal(ss_sample_softmax(all_inf, 4, &rng), 0);
        assert_int_equal(ss_sample_softmax(nan_inf, 4, &rng), 2);
        assert_int_equal(ss_sample_softmax(all_nan, 4, &rng), 0);
        assert_int_equal(ss_sample_next(all_inf, 4, &c, hist, 4, &rng, scratch), 0);
        assert_int_equal(ss_sample_next(nan_inf, 4, &c, hist, 4, &rng, scratch), 2);
        assert_int_equal(ss_sample_next(all_nan, 4, &c, hist, 4, &rng, scratch), 0);
    }
    /* NaN and -inf are never drawn; +inf takes all the mass, shared equally */
    float mixed[4] = {NAN, 1, -INFINITY, 2};
    float pinf[4] = {3, INFINITY, 0, INFINITY};
    int hits[4] = {0};
    for (int i = 0; i < 2000; i++) {
        int32_t t = ss_sample_softmax(mixed, 4, &rng);
        assert_true(t == 1 || t == 3);
        hits[ss_sample_softmax(pinf, 4, &rng)]++;
    }
    assert_int_equal(hits[0] + hits[2], 0);
    assert_true(hits[1] > 850 && hits[3] > 850);
    /* a tiny temperature overflows logits to +-inf: still a valid token */
    ss_sampler_config hot = {.temperature = 1e-38f, .top_k = 0, .top_p = 0.5f, .repetition_penalty = 1};
    float l[4] = {1, 5, -3, 4};
    assert_int_equal(ss_sample_next(l, 4, &hot, NULL, 0, &rng, scratch), 1);
    assert_int_equal(ss_sample_softmax(l, 0, &rng), 0); /* empty vocabulary */
}

/* ---- statistics ---------------------------------------------------------------------- */

enum { V5 = 5, DRAWS = 200000 };
static const float L5[V5] = {0.5f, -1, 2, 0, 1};

/* Pearson's chi-square of counts against probabilities want (tokens with
 * want 0 must never appear); *df receives the degrees of freedom. */
static double chi_square(const int *counts, const double *want, int V, int n, int *df) {
    double chi = 0;
    *df = -1;
    for (int i = 0; i < V; i++) {
        if (want[i] == 0) {
            assert_int_equal(counts[i], 0);
            continue;
        }
        double e = want[i] * n;
        chi += (counts[i] - e) * (counts[i] - e) / e;
        (*df)++;
    }
    return chi;
}

/* The 0.001 upper quantile of chi-square with df = 1..4. */
static double chi_critical(int df) {
    static const double q[] = {0, 10.828, 13.816, 16.266, 18.467};
    assert_true(df >= 1 && df <= 4);
    return q[df];
}

/* Draw DRAWS tokens through ss_sample_next and compare with want: the
 * chi-square test at 0.001 and every frequency within 4 standard errors. */
static void check_frequencies(const ss_sampler_config *c, const double *want, uint64_t seed) {
    ss_rng rng;
    ss_rng_seed(&rng, seed);
    float scratch[V5];
    int counts[V5] = {0};
    for (int i = 0; i < DRAWS; i++) {
        int32_t t = ss_sample_next(L5, V5, c, NULL, 0, &rng, scratch);
        assert_true(t >= 0 && t < V5);
        counts[t]++;
    }
    for (int i = 0; i < V5; i++) {
        double se = sqrt(want[i] * (1 - want[i]) / DRAWS);
        assert_true(fabs((double)counts[i] / DRAWS - want[i]) <= 4 * se);
    }
    int df;
    double chi = chi_square(counts, want, V5, DRAWS, &df);
    assert_true(chi < chi_critical(df));
}

static void test_softmax_frequencies(void **state) {
    (void)state;
    double want[V5];
    ref_softmax(L5, V5, want);
    ss_sampler_config c = {.temperature = 1, .top_k = 0, .top_p = 1, .repetition_penalty = 1};
    check_frequencies(&c, want, 100);

    /* ss_sample_softmax directly, and the test's power: the same draws are
     * far from the uniform distribution. */
    ss_rng rng;
    ss_rng_seed(&rng, 101);
    int counts[V5] = {0}, df;
    for (int i = 0; i < DRAWS; i++) counts[ss_sample_softmax(L5, V5, &rng)]++;
    assert_true(chi_square(counts, want, V5, DRAWS, &df) < chi_critical(df));
    const double uniform[V5] = {0.2, 0.2, 0.2, 0.2, 0.2};
    assert_true(chi_square(counts, uniform, V5, DRAWS, &df) > 100 * chi_critical(df));
}

static void test_top_k_frequencies(void **state) {
    (void)state;
    double p[V5], want[V5] = {0};
    ref_softmax(L5, V5, p);
    want[2] = p[2] / (p[2] + p[4]); /* the two largest: ids 2 and 4 */
    want[4] = p[4] / (p[2] + p[4]);
    ss_sampler_config c = {.temperature = 1, .top_k = 2, .top_p = 1, .repetition_penalty = 1};
    check_frequencies(&c, want, 200);
}

static void test_top_p_frequencies(void **state) {
    (void)state;
    /* softmax(L5) ~ {.1256, .0280, .5630, .0762, .2071}: the sorted masses
     * are .563, .770, .896, .972, 1, so p = 0.8 keeps ids 2, 4, 0. */
    double p[V5], want[V5] = {0};
    ref_softmax(L5, V5, p);
    double z = p[2] + p[4] + p[0];
    want[2] = p[2] / z;
    want[4] = p[4] / z;
    want[0] = p[0] / z;
    ss_sampler_config c = {.temperature = 1, .top_k = 0, .top_p = 0.8f, .repetition_penalty = 1};
    check_frequencies(&c, want, 300);
}

static void test_temperature_frequencies(void **state) {
    (void)state;
    float sharp[V5];
    for (int i = 0; i < V5; i++) sharp[i] = L5[i] * 2;
    double want[V5], plain[V5];
    ref_softmax(sharp, V5, want);
    ref_softmax(L5, V5, plain);
    assert_true(want[2] > plain[2]); /* sharper: the top token gains mass */
    ss_sampler_config c = {.temperature = 0.5f, .top_k = 0, .top_p = 1, .repetition_penalty = 1};
    check_frequencies(&c, want, 400);
}

static void test_same_seed_same_sequence(void **state) {
    (void)state;
    ss_sampler_config c = {.temperature = 0.9f, .top_k = 4, .top_p = 0.95f, .repetition_penalty = 1.2f};
    int32_t a[200], b[200], d[200];
    float scratch[V5];
    ss_rng r1, r2, r3;
    ss_rng_seed(&r1, 7);
    ss_rng_seed(&r2, 7);
    ss_rng_seed(&r3, 8);
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)i;
        a[i] = ss_sample_next(L5, V5, &c, a, n, &r1, scratch);
        b[i] = ss_sample_next(L5, V5, &c, b, n, &r2, scratch);
        d[i] = ss_sample_next(L5, V5, &c, d, n, &r3, scratch);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, d, sizeof a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_k_hand),
        cmocka_unit_test(test_top_k_vs_sort),
        cmocka_unit_test(test_top_p_hand),
        cmocka_unit_test(test_top_p_vs_sort),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_softmax_frequencies),
        cmocka_unit_test(test_top_k_frequencies),
        cmocka_unit_test(test_top_p_frequencies),
        cmocka_unit_test(test_temperature_frequencies),
        cmocka_unit_test(test_same_seed_same_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
