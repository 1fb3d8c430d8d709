/* The GEMM layer: every backend against a naive double-precision reference
 * on odd shapes, all four transpose combinations, strided operands, alpha
 * and beta; bf16 within the error bound its input rounding implies (and
 * tight against a reference on bf16-rounded inputs); the bound is sharp
 * enough that a wrong transpose or a lost accumulation fails it; routing,
 * the weight cache, and the run-time choice. */
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <cblas.h>

#include "selfsup/gemm.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)(*s >> 40) * 0x1p-23f - 1.0f;
}

static float *rand_mat(size_t n, uint64_t seed) {
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = frand(&seed);
    return v;
}

typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
} shape;

static double a_at(const shape *s, const float *A, int i, int k, int round) {
    float x = s->ta ? A[(size_t)k * s->lda + i] : A[(size_t)i * s->lda + k];
    return round ? ss_f32_from_bf16(ss_bf16_from_f32(x)) : x;
}
static double b_at(const shape *s, const float *B, int k, int j, int round) {
    float x = s->tb ? B[(size_t)j * s->ldb + k] : B[(size_t)k * s->ldb + j];
    return round ? ss_f32_from_bf16(ss_bf16_from_f32(x)) : x;
}

/* Elements of C outside |C - ref| <= tol, where ref is the double-precision
 * product (of bf16-rounded inputs if round) and, with m = sum_k |a_ik b_kj|,
 *   tol = |alpha| m (rel + K 2^-23) + |beta C0| 2^-23 + 1e-30:
 * rel = 0 measures only fp32 accumulation; rel = 2^-7 + 2^-16 bounds the
 * error of rounding both inputs to bf16 (8 significant bits: each by at most
 * u = 2^-8 relative, so |ab - a'b'| <= (2u + u^2)|ab|). */
static size_t count_bad(const shape *s, const float *A, const float *B, const float *C0, const float *C,
                        double rel, int round, double *worst) {
    size_t bad = 0;
    *worst = 0;
    for (int i = 0; i < s->M; i++)
        for (int j = 0; j < s->N; j++) {
            double acc = 0, mag = 0;
            for (int k = 0; k < s->K; k++) {
                double p = a_at(s, A, i, k, round) * b_at(s, B, k, j, round);
                acc += p;
                mag += fabs(p);
            }
            double c0 = C0[(size_t)i * s->ldc + j];
            double ref = s->alpha * acc + (s->beta != 0.0f ? s->beta * c0 : 0.0);
            double tol = fabs(s->alpha) * mag * (rel + s->K * 0x1p-23) + fabs(s->beta * c0) * 0x1p-23 + 1e-30;
            double d = fabs((double)C[(size_t)i * s->ldc + j] - ref);
            if (d > *worst * tol) *worst = d / tol;
            if (!(d <= tol)) bad++;
        }
    return bad;
}

/* Runs the product of s on backend be; C starts as C0. */
static float *run(ss_gemm_backend be, const shape *s, const float *A, const float *B, const float *C0) {
    size_t nc = (size_t)s->M * s->ldc;
    float *C = malloc(nc * sizeof *C);
    assert_non_null(C);
    memcpy(C, C0, nc * sizeof *C);
    ss_error err = {0};
    CHECK_OK(ss_gemm_on(be, s->ta, s->tb, s->M, s->N, s->K, s->alpha, A, s->lda, B, s->ldb, s->beta, C, s->ldc, &err),
             &err);
    return C;
}

static shape make_shape(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta) {
    shape s = {ta, tb, M, N, K, 0, 0, 0, alpha, beta};
    s.lda = (ta ? M : K) + pad;
    s.ldb = (tb ? K : N) + pad;
    s.ldc = N + pad;
    return s;
}

/* Case c of CASES for the dims of shape si: the four transpose pairs, each
 * with beta 0, 1 and -0.5 (alpha 0.125 with the last), leading dimensions
 * padded by 0, 5 or 10 by shape. */
enum { CASES = 12 };
static shape case_shape(const int dims[3], size_t si, int c) {
    int t = c % 4, ab = c / 4;
    float alpha = ab == 2 ? 0.125f : 1.0f, beta = ab == 0 ? 0.0f : ab == 1 ? 1.0f : -0.5f;
    return make_shape(t & 1, t >> 1, dims[0], dims[1], dims[2], (int)si % 3 * 5, alpha, beta);
}

static const int SHAPES[][3] = {{1, 1, 1}, {37, 53, 29}, {64, 64, 64}, {130, 70, 300}, {257, 129, 65}, {1, 384, 128}};

static void check_backend(ss_gemm_backend be, double rel, int round) {
    if (!ss_gemm_available(be)) {
        print_message("# %s is not available on this CPU: its agreement is not tested here\n",
                      ss_gemm_backend_name(be));
        return;
    }
    int n = 0;
    for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++)
        for (int c = 0; c < CASES; c++) {
            shape s = case_shape(SHAPES[si], si, c);
            float alpha = s.alpha, beta = s.beta;
            size_t na = (size_t)(s.ta ? s.K : s.M) * s.lda, nb = (size_t)(s.tb ? s.N : s.K) * s.ldb;
            float *A = rand_mat(na, 1 + si), *B = rand_mat(nb, 100 + si), *C0 = rand_mat((size_t)s.M * s.ldc, 7);
            float *C = run(be, &s, A, B, C0);
            double worst;
            size_t bad = count_bad(&s, A, B, C0, C, rel, round, &worst);
            if (bad)
                fail_msg("%s: %zu of %d elements outside tolerance (worst %.2fx) for %dx%dx%d trans %d%d alpha %g beta %g",
                         ss_gemm_backend_name(be), bad, s.M * s.N, worst, s.M, s.N, s.K, s.ta, s.tb, alpha, beta);
            /* padding columns of C are never written */
            for (int i = 0; i < s.M; i++)
                for (int j = s.N; j < s.ldc; j++)
                    assert_true(C[(size_t)i * s.ldc + j] == C0[(size_t)i * s.ldc + j]);
            free(A), free(B), free(C0), free(C);
            n++;
        }
    print_message("# %s: %d products agree with the reference\n", ss_gemm_backend_name(be), n);
}

static void test_bf16_rounding(void **state) {
    (void)state;
    assert_int_equal(ss_bf16_from_f32(1.0f), 0x3F80);
    assert_int_equal(ss_bf16_from_f32(1.0f + 0x1p-8f), 0x3F80);          /* tie -> even (down) */
    assert_int_equal(ss_bf16_from_f32(1.0f + 3 * 0x1p-8f), 0x3F82);      /* tie -> even (up) */
    assert_int_equal(ss_bf16_from_f32(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81); /* above the tie */
    assert_int_equal(ss_bf16_from_f32(-2.0f), 0xC000);
    assert_int_equal(ss_bf16_from_f32(INFINITY), 0x7F80);
    assert_int_equal(ss_bf16_from_f32(3.4028235e38f), 0x7F80);          /* rounds up to inf */
    assert_true(isnan(ss_f32_from_bf16(ss_bf16_from_f32(NAN))));
    assert_true(isnan(ss_f32_from_bf16(ss_bf16_from_f32(-NAN))));
    uint64_t seed = 3;
    for (int i = 0; i < 100000; i++) {
        float x = frand(&seed) * 1000.0f, y = ss_f32_from_bf16(ss_bf16_from_f32(x));
        assert_true(fabsf(x - y) <= fabsf(x) * 0x1p-8f);
    }
}

static void test_openblas_exact(void **state) {
    (void)state;
    check_backend(SS_GEMM_OPENBLAS, 0.0, 0);
}

static void test_onednn_f32(void **state) {
    (void)state;
    check_backend(SS_GEMM_DNNL_F32, 0.0, 0);
}

/* bf16: within the bound of its input rounding, and within fp32 accumulation
 * of the product of the rounded inputs (so the rounding is to nearest even). */
static void test_onednn_bf16(void **state) {
    (void)state;
    check_backend(SS_GEMM_DNNL_BF16, 0x1p-7 + 0x1p-16, 0);
    check_backend(SS_GEMM_DNNL_BF16, 0.0, 1);
}

/* The reference rounding path (any CPU): the same two bounds. */
static void test_ref_bf16(void **state) {
    (void)state;
    check_backend(SS_GEMM_REF_BF16, 0x1p-7 + 0x1p-16, 0);
    check_backend(SS_GEMM_REF_BF16, 0.0, 1);
}

/* The bound is not loose: a transposed operand or a dropped beta C term
 * breaks it (for the bf16 tolerance, the widest). */
static void test_bound_catches_mistakes(void **state) {
    (void)state;
    shape s = make_shape(0, 1, 48, 48, 48, 0, 1.0f, 1.0f);
    float *A = rand_mat(48 * 48, 11), *B = rand_mat(48 * 48, 12), *C0 = rand_mat(48 * 48, 13);
    shape wrong = s;
    wrong.tb = 0; /* B read untransposed */
    float *C = run(SS_GEMM_OPENBLAS, &wrong, A, B, C0);
    double worst;
    assert_true(count_bad(&s, A, B, C0, C, 0x1p-7 + 0x1p-16, 0, &worst) > 48 * 48 / 2);
    free(C);
    shape lost = s;
    lost.beta = 0.0f; /* accumulation into C lost */
    C = run(SS_GEMM_OPENBLAS, &lost, A, B, C0);
    assert_true(count_bad(&s, A, B, C0, C, 0x1p-7 + 0x1p-16, 0, &worst) > 48 * 48 / 2);
    free(C);
    C = run(SS_GEMM_OPENBLAS, &s, A, B, C0);
    assert_int_equal(count_bad(&s, A, B, C0, C, 0.0, 0, &worst), 0);
    free(A), free(B), free(C0), free(C);
}

/* ss_gemm follows the selected backend for large products; inside a
 * parallel region and for small products it computes with OpenBLAS,
 * bit-identical to cblas. (Inside a parallel region OpenBLAS runs on one
 * thread, and its sgemm on one thread need not give the bits of its sgemm on
 * two: with the Haswell kernels, which OPENBLAS_CORETYPE=Haswell selects on
 * AMD EPYC, they differ, as each thread's block edges go to other kernels.
 * So the reference inside the region is cblas inside a region.) */
static void test_routing(void **state) {
    (void)state;
    ss_error err = {0};
    shape big = make_shape(0, 1, 256, 192, 128, 0, 1.0f, 0.0f), small = make_shape(0, 1, 16, 16, 16, 0, 1.0f, 0.0f);
    float *A = rand_mat(256 * 128, 21), *B = rand_mat(192 * 128, 22), *C0 = calloc(256 * 192, sizeof(float));
    float *ref_big = run(SS_GEMM_OPENBLAS, &big, A, B, C0), *ref_small = run(SS_GEMM_OPENBLAS, &small, A, B, C0);
    for (int be = 0; be < SS_GEMM_N_BACKENDS; be++) {
        if (!ss_gemm_available((ss_gemm_backend)be)) continue;
        CHECK_OK(ss_gemm_use((ss_gemm_backend)be, &err), &err);
        assert_int_equal(ss_gemm_current(), be);
        float *C = calloc(256 * 192, sizeof *C), *want = run((ss_gemm_backend)be, &big, A, B, C0);
        ss_gemm(0, 1, 256, 192, 128, 1.0f, A, 128, B, 128, 0.0f, C, 192);
        assert_memory_equal(C, want, 256 * 192 * sizeof *C);
        ss_gemm(0, 1, 16, 16, 16, 1.0f, A, 16, B, 16, 0.0f, C, 16);
        assert_memory_equal(C, ref_small, 16 * 16 * sizeof *C);
        float *P = calloc(4 * 256 * 192, sizeof *P), *ref_par = calloc(2 * 256 * 192, sizeof *ref_par);
        #pragma omp parallel for num_threads(2)
        for (int t = 0; t < 2; t++) /* cblas inside a region: the bits OpenBLAS gives on one thread */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 256, 192, 128, 1.0f, A, 128, B, 128, 0.0f,
                        ref_par + (size_t)t * 256 * 192, 192);
        #pragma omp parallel for num_threads(2)
        for (int t = 0; t < 4; t++)
            ss_gemm(0, 1, 256, 192, 128, 1.0f, A, 128, B, 128, 0.0f, P + (size_t)t * 256 * 192, 192);
        for (int t = 0; t < 4; t++) assert_memory_equal(P + (size_t)t * 256 * 192, ref_par, 256 * 192 * sizeof *P);
        free(P), free(ref_par), free(C), free(want);
    }
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
    free(A), free(B), free(C0), free(ref_big), free(ref_small);
}

/* One row against a weight (a decoding step): the oneDNN backends send it
 * to selfsup's own kernels (src/nn/gemv.c). fp32: within fp32 accumulation
 * of the exact product; bf16 on CPUs with AVX512_BF16: within fp32
 * accumulation of the product of bf16-rounded inputs. Odd K (the masked
 * tails), N not a multiple of the 4-row blocks, a padded ldb, alpha and
 * beta; the same bits on 1 and 2 threads. */
int ss_gemv_bf16_available(void); /* src/nn/nn_internal.h */
static void test_gemv_rows(void **state) {
    (void)state;
    static const int NK[][2] = {{1, 1}, {3, 15}, {4, 16}, {5, 17}, {9, 31}, {7, 33}, {130, 64}, {6, 257}, {700, 257}, {67, 1000}};
    ss_error err = {0};
    for (int be = SS_GEMM_DNNL_F32; be <= SS_GEMM_DNNL_BF16; be++) {
        if (!ss_gemm_available((ss_gemm_backend)be)) {
            print_message("# %s is not available on this CPU: its one-row products are not tested here\n",
                          ss_gemm_backend_name((ss_gemm_backend)be));
            continue;
        }
        int round = be == SS_GEMM_DNNL_BF16 && ss_gemv_bf16_available();
        CHECK_OK(ss_gemm_use((ss_gemm_backend)be, &err), &err);
        for (size_t si = 0; si < sizeof NK / sizeof NK[0]; si++)
            for (int ab = 0; ab < 3; ab++) {
                float alpha = ab == 2 ? 0.125f : 1.0f, beta = ab == 0 ? 0.0f : ab == 1 ? 1.0f : -0.5f;
                shape s = make_shape(0, 1, 1, NK[si][0], NK[si][1], (int)si % 3 * 3, alpha, beta);
                float *A = rand_mat((size_t)s.lda, 40 + si), *B = rand_mat((size_t)s.N * s.ldb, 60 + si);
                float *C0 = rand_mat((size_t)s.ldc, 80 + si);
                float *C[2];
                for (int t = 0; t < 2; t++) {
                    C[t] = malloc((size_t)s.ldc * sizeof(float));
                    assert_non_null(C[t]);
                    memcpy(C[t], C0, (size_t)s.ldc * sizeof(float));
                    int saved = omp_get_max_threads();
                    omp_set_num_threads(t + 1);
                    ss_gemm_weights_changed();
                    ss_gemm_ex(0, 1, 1, s.N, s.K, alpha, A, s.lda, B, s.ldb, beta, C[t], s.ldc, SS_GEMM_B_WEIGHT);
                    omp_set_num_threads(saved);
                }
                double worst;
                size_t bad = count_bad(&s, A, B, C0, C[0], 0.0, round, &worst);
                if (bad)
                    fail_msg("%s, one row: %zu of %d outside tolerance (worst %.2fx) for N %d K %d alpha %g beta %g",
                             ss_gemm_backend_name((ss_gemm_backend)be), bad, s.N, worst, s.N, s.K, alpha, beta);
                assert_memory_equal(C[0], C[1], (size_t)s.ldc * sizeof(float));
                for (int j = s.N; j < s.ldc; j++) assert_true(C[0][j] == C0[j]);
                free(A), free(B), free(C0), free(C[0]), free(C[1]);
            }
        print_message("# %s: one-row products agree with the reference (%s numerics)\n",
                      ss_gemm_backend_name((ss_gemm_backend)be), round ? "bf16" : "fp32");
    }
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
}

/* The tiles of attention (SS_GEMM_TILE): with the bf16 backend on CPUs with
 * AVX512_BF16, selfsup's own bf16 kernel (src/nn/tile_bf16.c), within fp32
 * accumulation of the product of bf16-rounded inputs (the bound the wrong
 * transpose and lost accumulation of test_bound_catches_mistakes break),
 * on the attention shapes and odd ones: every transpose pair, depths and
 * widths past one 64-block and not multiples of 2 or 16, padded leading
 * dimensions, alpha and beta; columns past N never written; the same bits
 * when threads call it at once. With any other backend (or CPU), exactly
 * OpenBLAS's sgemm (sgemv for a single row, as every OpenBLAS product of one
 * row: on a Zen 4 EPYC the two differ in the last bit), on every thread
 * count. */
int ss_tile_bf16_available(void); /* src/nn/nn_internal.h */
int ss_tile_f32_available(void);
static void test_attention_tiles(void **state) {
    (void)state;
    static const int S[][3] = {{64, 64, 64}, {64, 64, 72}, {37, 24, 64}, {1, 1, 1}, {5, 17, 3}, {64, 130, 29},
                               {130, 64, 131}, {63, 48, 65}, {2, 200, 7}};
    ss_error err = {0};
    int native = ss_gemm_available(SS_GEMM_DNNL_BF16) && ss_tile_bf16_available();
    /* each backend with its own tile kernels, then (own 0) every tile through OpenBLAS */
    for (int run = 0; run < 2 * SS_GEMM_N_BACKENDS; run++) {
        int be = run % SS_GEMM_N_BACKENDS, own = run < SS_GEMM_N_BACKENDS;
        if (!ss_gemm_available((ss_gemm_backend)be)) continue;
        ss_gemm_set_own_tiles(own);
        int bf16 = own && be == SS_GEMM_DNNL_BF16 && native;
        int f32 = own && !bf16 && (be == SS_GEMM_DNNL_F32 || be == SS_GEMM_DNNL_BF16) && ss_tile_f32_available();
        CHECK_OK(ss_gemm_use((ss_gemm_backend)be, &err), &err);
        for (size_t si = 0; si < sizeof S / sizeof S[0]; si++)
            for (int c = 0; c < CASES; c++) {
                shape s = case_shape(S[si], si, c);
                float alpha = s.alpha, beta = s.beta;
                size_t na = (size_t)(s.ta ? s.K : s.M) * s.lda, nb = (size_t)(s.tb ? s.N : s.K) * s.ldb;
                size_t nc = (size_t)s.M * s.ldc;
                float *A = rand_mat(na, 3 + si), *B = rand_mat(nb, 200 + si), *C0 = rand_mat(nc, 9);
                float *start = rand_mat(nc, 9);
                if (beta == 0.0f)
                    for (size_t i = 0; i < nc; i++) start[i] = NAN; /* beta 0: C is never read */
                float *C[3];
                #pragma omp parallel for num_threads(2) schedule(static, 1)
                for (int r = 0; r < 3; r++) {
                    C[r] = malloc(nc * sizeof(float));
                    memcpy(C[r], start, nc * sizeof(float));
                    ss_gemm_ex(s.ta, s.tb, s.M, s.N, s.K, alpha, A, s.lda, B, s.ldb, beta, C[r], s.ldc,
                               SS_GEMM_TILE);
                }
                for (int r = 0; r < 3; r++) assert_non_null(C[r]);
                if (bf16 || f32) { /* bf16: the rounded inputs' products; fp32: the inputs' */
                    double worst;
                    size_t bad = count_bad(&s, A, B, C0, C[0], 0.0, bf16, &worst);
                    if (bad)
                        fail_msg("%s tiles: %zu of %d outside tolerance (worst %.2fx) for %dx%dx%d trans %d%d "
                                 "alpha %g beta %g", bf16 ? "bf16" : "fp32", bad, s.M * s.N, worst, s.M, s.N, s.K,
                                 s.ta, s.tb, alpha, beta);
                } else {
                    float *want = malloc(nc * sizeof(float));
                    memcpy(want, start, nc * sizeof(float));
                    if (s.M == 1 && !s.ta && s.K > 0) { /* one row: sgemv, as OpenBLAS computes every row (gemm.h) */
                        float b1 = beta;
                        if (beta == 0.0f) memset(want, 0, (size_t)s.N * sizeof(float)), b1 = 1.0f;
                        #pragma omp parallel num_threads(2)
                        #pragma omp single
                        cblas_sgemv(CblasRowMajor, s.tb ? CblasNoTrans : CblasTrans, s.tb ? s.N : s.K,
                                    s.tb ? s.K : s.N, alpha, B, s.ldb, A, 1, b1, want, 1);
                    } else {
                        #pragma omp parallel num_threads(2)
                        #pragma omp single
                        cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                                    s.M, s.N, s.K, alpha, A, s.lda, B, s.ldb, beta, want, s.ldc);
                    }
                    assert_memory_equal(C[0], want, nc * sizeof(float));
                    free(want);
                }
                for (int r = 1; r < 3; r++) assert_memory_equal(C[0], C[r], nc * sizeof(float));
                for (int i = 0; i < s.M; i++)
                    for (int j = s.N; j < s.ldc; j++)
                        assert_memory_equal(&C[0][(size_t)i * s.ldc + j], &start[(size_t)i * s.ldc + j], sizeof(float));
                free(A), free(B), free(C0), free(start), free(C[0]), free(C[1]), free(C[2]);
            }
        print_message("# %s%s: attention tiles %s\n", ss_gemm_backend_name((ss_gemm_backend)be),
                      own ? "" : " (own tiles off)",
                      bf16  ? "in bf16 numerics, within fp32 accumulation of the rounded inputs"
                      : f32 ? "by the fp32 tile kernel, within fp32 accumulation of the inputs"
                            : "bit-identical to OpenBLAS sgemm");
    }
    ss_gemm_set_own_tiles(1);
    if (!native) print_message("# no AVX512_BF16 here: the bf16 tile kernel is not tested on this CPU\n");
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
}

/* A weight's bf16 copy is reused until ss_gemm_weights_changed(). */
static void test_weight_cache(void **state) {
    (void)state;
    if (!ss_gemm_available(SS_GEMM_DNNL_BF16)) {
        print_message("# bf16 is not available on this CPU: the weight cache is not tested here\n");
        return;
    }
    ss_error err = {0};
    CHECK_OK(ss_gemm_use(SS_GEMM_DNNL_BF16, &err), &err);
    enum { M = 128, N = 96, K = 64 };
    float *A = rand_mat(M * K, 31), *W = rand_mat(N * K, 32);
    float *C1 = calloc(M * N, sizeof(float)), *C2 = calloc(M * N, sizeof(float)), *C3 = calloc(M * N, sizeof(float));
    ss_gemm_weights_changed();
    ss_gemm_ex(0, 1, M, N, K, 1.0f, A, K, W, K, 0.0f, C1, N, SS_GEMM_B_WEIGHT);
    for (int i = 0; i < N * K; i++) W[i] *= 2.0f; /* exact in bf16: every product doubles */
    ss_gemm_ex(0, 1, M, N, K, 1.0f, A, K, W, K, 0.0f, C2, N, SS_GEMM_B_WEIGHT);
    assert_memory_equal(C1, C2, M * N * sizeof(float)); /* the stale copy was used */
    ss_gemm_weights_changed();
    ss_gemm_ex(0, 1, M, N, K, 1.0f, A, K, W, K, 0.0f, C3, N, SS_GEMM_B_WEIGHT);
    for (int i = 0; i < M * N; i++) assert_true(C3[i] == 2.0f * C1[i]);
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
    free(A), free(W), free(C1), free(C2), free(C3);
}

static void test_select(void **state) {
    (void)state;
    ss_error err = {0};
    ss_gemm_choice c;
    CHECK_OK(ss_gemm_select(SS_PRECISION_FP32, &c, &err), &err);
    assert_int_equal(c.precision, SS_PRECISION_FP32);
    assert_true(c.backend == SS_GEMM_OPENBLAS || c.backend == SS_GEMM_DNNL_F32);
    assert_true(c.peak[SS_GEMM_OPENBLAS] > 0);
    /* oneDNN f32 unless OpenBLAS measured 1.2x faster (a margin against flips between runs) */
    if (c.backend == SS_GEMM_OPENBLAS) assert_true(c.peak[SS_GEMM_OPENBLAS] > 1.2 * c.peak[SS_GEMM_DNNL_F32]);
    else assert_true(c.peak[SS_GEMM_OPENBLAS] <= 1.2 * c.peak[SS_GEMM_DNNL_F32]);
    assert_int_equal(ss_gemm_current(), c.backend);
    print_message("# fp32: %s (%s); peaks openblas %.0f, onednn-f32 %.0f GFLOP/s; oneDNN ISA %s\n",
                  ss_gemm_backend_name(c.backend), c.reason, c.peak[0], c.peak[1], c.isa);
    double fp32_peaks[SS_GEMM_N_BACKENDS];
    memcpy(fp32_peaks, c.peak, sizeof fp32_peaks);
    CHECK_OK(ss_gemm_select(SS_PRECISION_AUTO, &c, &err), &err);
    /* the probe ran once in this process: the same measurements, so the same f32 choice */
    assert_memory_equal(fp32_peaks, c.peak, sizeof fp32_peaks);
    if (!ss_gemm_native_bf16()) assert_int_equal(c.precision, SS_PRECISION_FP32);
    if (c.precision == SS_PRECISION_BF16) assert_true(c.peak[SS_GEMM_DNNL_BF16] > c.peak[c.f32_backend]);
    print_message("# auto: %s, %s\n", ss_gemm_backend_name(c.backend), c.reason);
    if (ss_gemm_available(SS_GEMM_DNNL_BF16)) {
        CHECK_OK(ss_gemm_select(SS_PRECISION_BF16, &c, &err), &err);
        assert_int_equal(c.backend, SS_GEMM_DNNL_BF16);
        assert_true(c.peak[SS_GEMM_DNNL_BF16] > 0);
    } else {
        CHECK_OK(ss_gemm_select(SS_PRECISION_BF16, &c, &err), &err);
        assert_int_equal(c.backend, SS_GEMM_REF_BF16);
    }
    ss_precision p;
    CHECK_OK(ss_precision_parse("bf16", &p, &err), &err);
    assert_int_equal(p, SS_PRECISION_BF16);
    assert_int_equal(ss_precision_parse("fp16", &p, &err), SS_ERR_ARG);
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
}

/* Measurements given with ss_gemm_set_probe (the CLI's cache) decide the
 * selection without timing: the backend the given peaks favour is taken;
 * unavailable backends count as 0; ss_gemm_probe measures again and says
 * how much of the cores it had. */
static void test_select_given_probe(void **state) {
    (void)state;
    ss_error err = {0};
    ss_gemm_choice c;
    double given[SS_GEMM_N_BACKENDS] = {[SS_GEMM_OPENBLAS] = 1000, [SS_GEMM_DNNL_F32] = 100,
                                        [SS_GEMM_DNNL_BF16] = 0, [SS_GEMM_REF_BF16] = 5000};
    ss_gemm_set_probe(given);
    CHECK_OK(ss_gemm_select(SS_PRECISION_AUTO, &c, &err), &err);
    assert_int_equal(c.backend, SS_GEMM_OPENBLAS);
    assert_int_equal(c.precision, SS_PRECISION_FP32);
    assert_true(c.peak[SS_GEMM_OPENBLAS] == 1000 && c.peak[SS_GEMM_REF_BF16] == 0); /* the reference is never a peak */
    given[SS_GEMM_OPENBLAS] = 100, given[SS_GEMM_DNNL_F32] = 1000;
    ss_gemm_set_probe(given);
    CHECK_OK(ss_gemm_select(SS_PRECISION_FP32, &c, &err), &err);
    assert_int_equal(c.backend, ss_gemm_available(SS_GEMM_DNNL_F32) ? SS_GEMM_DNNL_F32 : SS_GEMM_OPENBLAS);
    given[SS_GEMM_DNNL_BF16] = 10000;
    ss_gemm_set_probe(given);
    CHECK_OK(ss_gemm_select(SS_PRECISION_AUTO, &c, &err), &err);
    assert_int_equal(c.precision, ss_gemm_native_bf16() && ss_gemm_available(SS_GEMM_DNNL_BF16) ? SS_PRECISION_BF16
                                                                                                 : SS_PRECISION_FP32);
    double measured[SS_GEMM_N_BACKENDS];
    double share = ss_gemm_probe(measured);
    assert_true(share > 0.05 && share < 1.5);
    assert_true(measured[SS_GEMM_OPENBLAS] > 0 && measured[SS_GEMM_OPENBLAS] < 1e5);
    CHECK_OK(ss_gemm_select(SS_PRECISION_FP32, &c, &err), &err);
    assert_memory_equal(measured, c.peak, sizeof measured); /* the new measurements replace the given ones */
    print_message("# probe: %.0f%% of %d threads' time\n", 100 * share, omp_get_max_threads());
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_openblas_exact),
        cmocka_unit_test(test_onednn_f32),
        cmocka_unit_test(test_onednn_bf16),
        cmocka_unit_test(test_ref_bf16),
        cmocka_unit_test(test_bound_catches_mistakes),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_gemv_rows),
        cmocka_unit_test(test_attention_tiles),
        cmocka_unit_test(test_weight_cache),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_given_probe),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ss_gemm_release();
    return rc;
}
