/* Tiled attention (src/nn/attention.c) against the naive [T,T] reference
 * (src/nn/attention_ref.c): forward, lse and backward on random inputs,
 * causal and bidirectional, with and without key padding; determinism;
 * gradient accumulation; the appended rows of a KV-cached decoder; and a
 * long sequence that would need gigabytes if a [T,T] matrix were
 * materialized. */
#include "testutil.h"

#include <math.h>
#include <omp.h>

#include "selfsup/gemm.h"
#include "selfsup/nn.h"
#include "selfsup/nn_ref.h"

enum { PAD_NONE, PAD_RANDOM, PAD_LEFT };

static uint64_t rng_state;
static float urand(void) { /* uniform in [-1, 1), xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ULL) >> 40) / 8388608.0f - 1.0f;
}

static float *rand_buf(size_t n, float amp) {
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = amp * urand();
    return x;
}

/* key_valid for a padding mode; NULL for PAD_NONE. PAD_RANDOM: ~30% padding,
 * key 0 always valid (so every causal row sees a key). PAD_LEFT: sequence 0 starts with
 * T/3 + 1 padding keys (so with causal masking its first rows see nothing),
 * the others are random. */
static uint8_t *make_valid(int mode, int B, int T) {
    if (mode == PAD_NONE) return NULL;
    uint8_t *v = malloc((size_t)B * T);
    assert_non_null(v);
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) v[b * T + t] = urand() > -0.4f;
        v[b * T] = 1;
    }
    if (mode == PAD_LEFT) {
        int npad = T / 3 + 1 < T ? T / 3 + 1 : T - 1;
        for (int t = 0; t < T; t++) v[t] = t >= npad;
    }
    return v;
}

#define TOL 1e-5

/* Tolerances of compare_case: fp32 (TOL), or the bf16 tiles' (test_bf16_tiles). */
static double tol_out = TOL, tol_grad = TOL, tol_lse = 1e-5;
static double worst_out, worst_grad, worst_lse; /* the largest errors compare_case saw */

/* max |a - b| / max |b| (normwise relative error). */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0.0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e > d || isnan(e)) d = isnan(e) ? INFINITY : e;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return d / m;
}

static void check_lse(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (isinf(b[i])) {
            assert_true(isinf(a[i]) && a[i] < 0);
            continue;
        }
        double e = fabs((double)a[i] - b[i]) / (1.0 + fabs(b[i]));
        if (e > worst_lse) worst_lse = e;
        if (!(e <= tol_lse)) fail_msg("lse[%zu] = %.9g, reference %.9g", i, a[i], b[i]);
    }
}


/* The bf16 tiles' forward against its derived bound. With u = 2^-8 (bf16
 * keeps 8 significant bits: rounding to nearest changes a value by at most
 * u relative), a score s_j = scale q.k_j computed from rounded q and k is
 * off by at most e_j = (2u + u^2) scale sum_d |q_d k_jd| (plus fp32 sums).
 * With e = max_j e_j over the row's visible keys, softmax's p'_j / p_j lies
 * in [exp(-2e), exp(2e)], and P~ and v are rounded again for P V, so
 *   |O'_d - O_d| <= sum_j p_j |v_jd| (exp(2e) (1 + u)^2 - 1)
 * and |lse' - lse| <= e (plus fp32 rounding, 1e-5 relative); a row that
 * sees no key is exactly 0 with lse -inf. Computed here in double. */
static void check_bf16_forward(const float *out, const float *lse, const float *qkv, const uint8_t *valid,
                               int causal, int B, int T, int C, int NH) {
    const double u = 0x1p-8;
    int hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    double *s = malloc((size_t)T * sizeof *s), *bound = malloc((size_t)hs * sizeof *bound),
           *o = malloc((size_t)hs * sizeof *o);
    assert_true(s && bound && o);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                const float *q = qkv + ((size_t)b * T + i) * 3 * C + (size_t)h * hs;
                double mx = -INFINITY, e = 0.0, l = 0.0;
                for (int j = 0; j < T; j++) {
                    s[j] = -INFINITY;
                    if ((valid && !valid[b * T + j]) || (causal && j > i)) continue;
                    const float *k = qkv + ((size_t)b * T + j) * 3 * C + C + (size_t)h * hs;
                    double dot = 0.0, mag = 0.0;
                    for (int d = 0; d < hs; d++) dot += (double)q[d] * k[d], mag += fabs((double)q[d] * k[d]);
                    s[j] = dot * scale;
                    if ((2 * u + u * u) * scale * mag > e) e = (2 * u + u * u) * scale * mag;
                    if (s[j] > mx) mx = s[j];
                }
                const float *got = out + ((size_t)b * T + i) * C + (size_t)h * hs;
                float got_lse = lse[((size_t)b * NH + h) * T + i];
                if (mx == -INFINITY) { /* no visible key */
                    for (int d = 0; d < hs; d++) assert_true(got[d] == 0.0f);
                    assert_true(isinf(got_lse) && got_lse < 0);
                    continue;
                }
                for (int j = 0; j < T; j++) l += exp(s[j] - mx);
                double ref_lse = mx + log(l), factor = exp(2 * e) * (1 + u) * (1 + u) - 1;
                for (int d = 0; d < hs; d++) o[d] = bound[d] = 0.0;
                for (int j = 0; j < T; j++) {
                    if (s[j] == -INFINITY) continue;
                    double p = exp(s[j] - ref_lse);
                    const float *v = qkv + ((size_t)b * T + j) * 3 * C + 2 * C + (size_t)h * hs;
                    for (int d = 0; d < hs; d++) o[d] += p * v[d], bound[d] += p * fabs((double)v[d]);
                }
                for (int d = 0; d < hs; d++) {
                    double tol = bound[d] * (factor + 1e-5), err = fabs(got[d] - o[d]);
                    if (bound[d] > 0 && err / (bound[d] * factor) > worst_out) worst_out = err / (bound[d] * factor);
                    if (!(err <= tol))
                        fail_msg("bf16 out[b %d, h %d, t %d, d %d] = %.9g, reference %.9g, bound %.3g", b, h, i, d,
                                 got[d], o[d], tol);
                }
                double dl = fabs(got_lse - ref_lse);
                if (dl / (e + 1e-12) > worst_lse) worst_lse = dl / (e + 1e-12);
                if (!(dl <= e + 1e-5 * (1 + fabs(ref_lse))))
                    fail_msg("bf16 lse[b %d, h %d, t %d] = %.9g, reference %.9g, bound %.3g", b, h, i, got_lse,
                             ref_lse, e);
            }
    free(s), free(bound), free(o);
}

static int bf16_mode; /* compare_case checks the forward with check_bf16_forward */

/* One shape: forward and backward of the tiled kernel vs the reference.
 * Returns the number of query rows that saw no key. */
static int compare_case(int B, int T, int C, int NH, int causal, int pad) {
    ss_error err = {0};
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nl = (size_t)B * NH * T;
    float *qkv = rand_buf(nqkv, 2.0f), *dout = rand_buf(nout, 1.0f);
    uint8_t *valid = make_valid(pad, B, T);
    float *out = calloc(nout, 4), *lse = calloc(nl, 4), *out_r = calloc(nout, 4),
          *lse_r = calloc(nl, 4), *dq = calloc(nqkv, 4), *dq_r = calloc(nqkv, 4);
    assert_true(out && lse && out_r && lse_r && dq && dq_r);

    ss_attention_forward(out, lse, qkv, valid, causal, B, T, C, NH);
    CHECK_OK(ss_attention_forward_ref(out_r, lse_r, qkv, valid, causal, B, T, C, NH, &err), &err);
    double e_out = rel_err(out, out_r, nout);
    if (bf16_mode)
        check_bf16_forward(out, lse, qkv, valid, causal, B, T, C, NH);
    else
        check_lse(lse, lse_r, nl);

    ss_attention_backward(dq, dout, out, lse, qkv, valid, causal, B, T, C, NH);
    CHECK_OK(ss_attention_backward_ref(dq_r, dout, qkv, valid, causal, B, T, C, NH, &err), &err);
    double e_dq = rel_err(dq, dq_r, nqkv);
    if (!bf16_mode && e_out > worst_out) worst_out = e_out;
    if (e_dq > worst_grad) worst_grad = e_dq;
    if (!(e_out <= tol_out) || !(e_dq <= tol_grad))
        fail_msg("B=%d T=%d C=%d NH=%d causal=%d pad=%d: out rel err %.3g, dqkv rel err %.3g",
                 B, T, C, NH, causal, pad, e_out, e_dq);

    int blind = 0; /* rows with no visible key: exact zeros, no NaN anywhere */
    for (size_t i = 0; i < nl; i++) {
        if (!isinf(lse[i])) continue;
        size_t b = i / ((size_t)NH * T), h = i / T % NH, t = i % T;
        const float *o = out + (b * T + t) * C + h * (C / NH);
        for (int d = 0; d < C / NH; d++) assert_true(o[d] == 0.0f);
        blind++;
    }
    for (size_t i = 0; i < nqkv; i++) assert_true(isfinite(dq[i]));
    free(qkv); free(dout); free(valid); free(out); free(lse); free(out_r);
    free(lse_r); free(dq); free(dq_r);
    return blind;
}

static void run_all_modes(int B, int T, int C, int NH) {
    for (int causal = 0; causal < 2; causal++)
        for (int pad = PAD_NONE; pad <= PAD_LEFT; pad++) compare_case(B, T, C, NH, causal, pad);
}

static void test_shape_37x72x3(void **state) {
    (void)state;
    rng_state = 0x9E3779B97F4A7C15ULL;
    run_all_modes(2, 37, 72, 3);
}

/* Fill each OpenMP thread's stack below the caller with NaN bit patterns, so
 * any tile entry the kernel reads without writing shows up as NaN. (A real
 * bug: sgemm fills bc columns of a score tile, the vector loops read up to
 * the next multiple of the vector width.) */
static __attribute__((noinline)) void poison_stack(void) {
    volatile float junk[16384];
    for (int i = 0; i < 16384; i++) junk[i] = NAN;
    (void)junk[0];
}

static void test_unwritten_tile_columns_never_leak(void **state) {
    (void)state;
    for (int rep = 0; rep < 3; rep++) {
        #pragma omp parallel
        poison_stack();
        run_all_modes(2, 37, 72, 3); /* T = 37: tiles end mid-vector */
    }
}

static void test_shape_single_token(void **state) {
    (void)state;
    rng_state = 12345;
    run_all_modes(1, 1, 16, 2);
}

static void test_shape_several_tiles(void **state) {
    (void)state;
    rng_state = 777;
    run_all_modes(3, 130, 64, 4);
}

static void test_shape_odd_head_size(void **state) {
    (void)state;
    rng_state = 4242;
    run_all_modes(2, 67, 21, 3); /* hs = 7, T not a tile multiple */
    run_all_modes(1, 200, 48, 2); /* hs = 24, 4 tiles, last partial */
}

/* Appended rows (a KV-cached decoder): the query rows t0..T-1 against keys
 * 0..T-1 are the causal forward's rows t0.. (one row, several, all; T
 * across key tiles; hs = 7 and 24). */
static void check_rows(int T, int C, int NH) {
    float *qkv = rand_buf((size_t)T * 3 * C, 2.0f), *ref = malloc((size_t)T * C * sizeof(float));
    float *lse = malloc((size_t)NH * T * sizeof(float)), *got = malloc((size_t)T * C * sizeof(float));
    assert_true(ref && lse && got);
    ss_attention_forward(ref, lse, qkv, NULL, 1, 1, T, C, NH);
    int t0s[] = {0, 1, T / 2, T - 3, T - 1};
    for (size_t i = 0; i < sizeof t0s / sizeof t0s[0]; i++) {
        int t0 = t0s[i];
        ss_attention_forward_rows(got, qkv, t0, T, C, NH);
        double e = rel_err(got, ref + (size_t)t0 * C, (size_t)(T - t0) * C);
        if (!(e < 1e-5)) fail_msg("T %d, rows %d..: relative error %g", T, t0, e);
    }
    free(qkv); free(ref); free(lse); free(got);
}

static void test_appended_rows(void **state) {
    (void)state;
    rng_state = 99;
    check_rows(5, 21, 3);
    check_rows(150, 48, 2);
}

/* Left padding + causal: the first rows of sequence 0 see no key at all. */
static void test_blind_rows(void **state) {
    (void)state;
    rng_state = 99;
    assert_int_equal(compare_case(2, 37, 72, 3, 1, PAD_LEFT), 3 * (37 / 3 + 1));
    assert_int_equal(compare_case(3, 130, 64, 4, 1, PAD_LEFT), 4 * (130 / 3 + 1));
    assert_int_equal(compare_case(2, 37, 72, 3, 0, PAD_LEFT), 0);
}

/* A fully padded sequence: every row blind, zero output and zero gradient. */
static void test_fully_padded_sequence(void **state) {
    (void)state;
    rng_state = 5;
    int B = 2, T = 70, C = 32, NH = 2;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
    float *qkv = rand_buf(nqkv, 1.0f), *dout = rand_buf(nout, 1.0f);
    float *out = rand_buf(nout, 1.0f), *lse = calloc((size_t)B * NH * T, 4),
          *dq = calloc(nqkv, 4);
    uint8_t *valid = make_valid(PAD_RANDOM, B, T);
    memset(valid + T, 0, T); /* sequence 1: all padding */
    ss_attention_forward(out, lse, qkv, valid, 0, B, T, C, NH);
    ss_attention_backward(dq, dout, out, lse, qkv, valid, 0, B, T, C, NH);
    for (size_t i = (size_t)T * C; i < nout; i++) assert_true(out[i] == 0.0f);
    for (size_t i = (size_t)T * 3 * C; i < nqkv; i++) assert_true(dq[i] == 0.0f);
    for (int h = 0; h < NH; h++)
        for (int t = 0; t < T; t++) assert_true(isinf(lse[(NH + h) * T + t]));
    free(qkv); free(dout); free(out); free(lse); free(dq); free(valid);
}

/* Forward + backward with a given thread count into fresh buffers. */
static void run_with_threads(int nth, float *out, float *lse, float *dq, const float *qkv,
                             const float *dout, const uint8_t *valid, int causal,
                             int B, int T, int C, int NH) {
    omp_set_num_threads(nth);
    memset(dq, 0, (size_t)B * T * 3 * C * sizeof *dq);
    ss_attention_forward(out, lse, qkv, valid, causal, B, T, C, NH);
    ss_attention_backward(dq, dout, out, lse, qkv, valid, causal, B, T, C, NH);
}

static void test_bit_identical_repeats(void **state) {
    (void)state;
    rng_state = 31337;
    int B = 3, T = 130, C = 64, NH = 4, nth0 = omp_get_max_threads();
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nl = (size_t)B * NH * T;
    float *qkv = rand_buf(nqkv, 2.0f), *dout = rand_buf(nout, 1.0f);
    uint8_t *valid = make_valid(PAD_RANDOM, B, T);
    float *o[3], *l[3], *g[3];
    for (int r = 0; r < 3; r++) {
        o[r] = malloc(nout * 4); l[r] = malloc(nl * 4); g[r] = malloc(nqkv * 4);
        assert_true(o[r] && l[r] && g[r]);
    }
    for (int causal = 0; causal < 2; causal++) {
        run_with_threads(2, o[0], l[0], g[0], qkv, dout, valid, causal, B, T, C, NH);
        run_with_threads(2, o[1], l[1], g[1], qkv, dout, valid, causal, B, T, C, NH);
        run_with_threads(1, o[2], l[2], g[2], qkv, dout, valid, causal, B, T, C, NH);
        for (int r = 1; r < 3; r++) {
            assert_memory_equal(o[0], o[r], nout * 4);
            assert_memory_equal(l[0], l[r], nl * 4);
            assert_memory_equal(g[0], g[r], nqkv * 4);
        }
    }
    omp_set_num_threads(nth0);
    for (int r = 0; r < 3; r++) { free(o[r]); free(l[r]); free(g[r]); }
    free(qkv); free(dout); free(valid);
}

/* dqkv is accumulated into: prefilled G0 ends as G0 + gradient. */
static void test_backward_accumulates(void **state) {
    (void)state;
    rng_state = 2024;
    ss_error err = {0};
    int B = 2, T = 37, C = 72, NH = 3;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
    float *qkv = rand_buf(nqkv, 2.0f), *dout = rand_buf(nout, 1.0f);
    float *g0 = rand_buf(nqkv, 1.0f), *dq = malloc(nqkv * 4), *dq_r = calloc(nqkv, 4);
    float *out = malloc(nout * 4), *lse = malloc((size_t)B * NH * T * 4);
    assert_true(dq && dq_r && out && lse);
    memcpy(dq, g0, nqkv * 4);
    ss_attention_forward(out, lse, qkv, NULL, 1, B, T, C, NH);
    ss_attention_backward(dq, dout, out, lse, qkv, NULL, 1, B, T, C, NH);
    CHECK_OK(ss_attention_backward_ref(dq_r, dout, qkv, NULL, 1, B, T, C, NH, &err), &err);
    for (size_t i = 0; i < nqkv; i++) {
        float want = g0[i] + dq_r[i];
        if (fabsf(dq[i] - want) > 1e-5f * (1.0f + fabsf(want)))
            fail_msg("dqkv[%zu] = %.9g, want prefill %.9g + grad %.9g", i, dq[i], g0[i], dq_r[i]);
    }
    free(qkv); free(dout); free(g0); free(dq); free(dq_r); free(out); free(lse);
}

/* Peak resident set (kB) since the last reset_peak_rss(). */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

static void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f || fputs("5", f) < 0 || fclose(f) != 0)
        fail_msg("cannot reset the peak RSS through /proc/self/clear_refs");
}

/* T = 8192: a [T,T] float matrix per head would be 256 MB. Peak RSS must
 * grow by less than 96 MB (the kernel's own scratch is ~50 KB per thread;
 * the margin absorbs the test's buffers and sanitizer shadow memory), and the results must satisfy two exact identities:
 * with v[j] = c for every key, out[i] = c (probabilities sum to 1), and
 * sum_j dv_j = sum_i dout_i over rows that see a key. */
static void test_long_sequence_memory(void **state) {
    (void)state;
    rng_state = 8;
    int B = 1, T = 8192, C = 8, NH = 2, hs = C / NH;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C;
    float *qkv = rand_buf(nqkv, 2.0f), *dout = rand_buf(nout, 1.0f);
    float *out = calloc(nout, 4), *lse = calloc((size_t)NH * T, 4), *dq = calloc(nqkv, 4);
    uint8_t *valid = make_valid(PAD_RANDOM, B, T);
    assert_true(out && lse && dq);
    valid[0] = 1; /* every causal row sees key 0 */
    float cst[8];
    for (int d = 0; d < C; d++) cst[d] = urand();
    for (int t = 0; t < T; t++) memcpy(qkv + (size_t)t * 3 * C + 2 * C, cst, sizeof cst);

    reset_peak_rss();
    long before = peak_rss_kb();
    ss_attention_forward(out, lse, qkv, valid, 1, B, T, C, NH);
    ss_attention_backward(dq, dout, out, lse, qkv, valid, 1, B, T, C, NH);
    long grown = peak_rss_kb() - before;
    if (grown > 96 * 1024) fail_msg("peak RSS grew by %ld kB for T=%d", grown, T);

    for (int t = 0; t < T; t++)
        for (int d = 0; d < C; d++)
            if (fabsf(out[(size_t)t * C + d] - cst[d]) > 5e-5f)
                fail_msg("out[%d,%d] = %.9g, want %.9g", t, d, out[(size_t)t * C + d], cst[d]);
    for (int d = 0; d < C; d++) {
        double sdv = 0.0, sdo = 0.0;
        for (int t = 0; t < T; t++) {
            sdv += dq[(size_t)t * 3 * C + 2 * C + d];
            sdo += dout[(size_t)t * C + d];
        }
        if (fabs(sdv - sdo) > 1e-3 * (1.0 + fabs(sdo)))
            fail_msg("channel %d (head %d): sum dv %.9g != sum dout %.9g", d, d / hs, sdv, sdo);
    }
    free(qkv); free(dout); free(out); free(lse); free(dq); free(valid);
}

/* With the bf16 backend on a CPU with AVX512_BF16 the tiles' products run
 * in bf16 numerics (src/nn/tile_bf16.c): the forward within the bound of
 * check_bf16_forward on every shape and mode above; the gradients within
 * 2^-5 of the largest fp32 reference gradient (normwise: each passes three
 * rounded products in series, dP -> dS -> dQ/dK, and the measured error is
 * printed); not the fp32 bits (the bf16 path ran); and the same bits on one
 * and two threads. */
int ss_tile_bf16_available(void); /* src/nn/nn_internal.h */
static void test_bf16_tiles(void **state) {
    (void)state;
    ss_error err = {0};
    if (!ss_gemm_available(SS_GEMM_DNNL_BF16) || !ss_tile_bf16_available()) {
        print_message("# no AVX512_BF16 here: attention's bf16 tiles are not tested on this CPU\n");
        return;
    }
    int B = 2, T = 37, C = 72, NH = 3;
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nl = (size_t)B * NH * T;
    rng_state = 99;
    float *qkv = rand_buf(nqkv, 2.0f), *dout = rand_buf(nout, 1.0f);
    float *o32 = malloc(nout * 4), *l32 = malloc(nl * 4), *g32 = malloc(nqkv * 4);
    float *o16 = malloc(nout * 4), *l16 = malloc(nl * 4), *g16 = malloc(nqkv * 4);
    assert_true(o32 && l32 && g32 && o16 && l16 && g16);
    int nth0 = omp_get_max_threads();
    run_with_threads(2, o32, l32, g32, qkv, dout, NULL, 1, B, T, C, NH);
    CHECK_OK(ss_gemm_use(SS_GEMM_DNNL_BF16, &err), &err);
    run_with_threads(2, o16, l16, g16, qkv, dout, NULL, 1, B, T, C, NH);
    assert_true(memcmp(o16, o32, nout * 4) != 0 && memcmp(g16, g32, nqkv * 4) != 0);
    bf16_mode = 1, tol_out = tol_lse = INFINITY, tol_grad = 0x1p-5;
    worst_out = worst_grad = worst_lse = 0;
    rng_state = 0x9E3779B97F4A7C15ULL;
    run_all_modes(2, 37, 72, 3);
    run_all_modes(3, 130, 64, 4);
    run_all_modes(2, 67, 21, 3);
    run_all_modes(1, 200, 48, 2);
    print_message("# bf16 tiles: out within %.2f of its bound, lse within %.2f of its bound, gradients %.2e "
                  "normwise (tolerance %.2e)\n", worst_out, worst_lse, worst_grad, tol_grad);
    bf16_mode = 0, tol_out = tol_grad = TOL, tol_lse = 1e-5;
    /* the same bits on 1 and 2 threads */
    uint8_t *valid = make_valid(PAD_RANDOM, B, T);
    run_with_threads(2, o32, l32, g32, qkv, dout, valid, 0, B, T, C, NH);
    run_with_threads(1, o16, l16, g16, qkv, dout, valid, 0, B, T, C, NH);
    assert_memory_equal(o32, o16, nout * 4);
    assert_memory_equal(l32, l16, nl * 4);
    assert_memory_equal(g32, g16, nqkv * 4);
    omp_set_num_threads(nth0);
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
    free(qkv), free(dout), free(o32), free(l32), free(g32), free(o16), free(l16), free(g16), free(valid);
}

/* With the oneDNN backends on a CPU with AVX-512 (and, for bf16, without
 * AVX512_BF16) the tiles' products run through selfsup's fp32 tile kernel
 * (src/nn/tile_f32.c): every shape and mode above within the fp32
 * tolerances, on NaN-poisoned stacks; not OpenBLAS's bits (the kernel ran);
 * the same bits on one and two threads. */
int ss_tile_f32_available(void); /* src/nn/nn_internal.h */
static void test_f32_tiles(void **state) {
    (void)state;
    ss_error err = {0};
    if (!ss_gemm_available(SS_GEMM_DNNL_F32) || !ss_tile_f32_available()) {
        print_message("# no AVX-512 here: attention's fp32 tile kernel is not tested on this CPU\n");
        return;
    }
    int B = 3, T = 130, C = 64, NH = 4, nth0 = omp_get_max_threads();
    size_t nqkv = (size_t)B * T * 3 * C, nout = (size_t)B * T * C, nl = (size_t)B * NH * T;
    rng_state = 4242;
    float *qkv = rand_buf(nqkv, 2.0f), *dout = rand_buf(nout, 1.0f);
    uint8_t *valid = make_valid(PAD_RANDOM, B, T);
    float *ob = malloc(nout * 4), *lb = malloc(nl * 4), *gb = malloc(nqkv * 4);
    float *o1 = malloc(nout * 4), *l1 = malloc(nl * 4), *g1 = malloc(nqkv * 4);
    float *o2 = malloc(nout * 4), *l2 = malloc(nl * 4), *g2 = malloc(nqkv * 4);
    assert_true(ob && lb && gb && o1 && l1 && g1 && o2 && l2 && g2);
    run_with_threads(2, ob, lb, gb, qkv, dout, valid, 1, B, T, C, NH); /* OpenBLAS's tiles */
    CHECK_OK(ss_gemm_use(SS_GEMM_DNNL_F32, &err), &err);
    worst_out = worst_grad = 0;
    for (int rep = 0; rep < 2; rep++) {
        #pragma omp parallel
        poison_stack();
        run_all_modes(2, 37, 72, 3);
        run_all_modes(3, 130, 64, 4);
        run_all_modes(2, 67, 21, 3);
        run_all_modes(1, 1, 16, 2);
    }
    print_message("# fp32 tiles: out %.2e, gradients %.2e normwise (tolerance %.0e)\n", worst_out, worst_grad, TOL);
    run_with_threads(2, o2, l2, g2, qkv, dout, valid, 1, B, T, C, NH);
    run_with_threads(1, o1, l1, g1, qkv, dout, valid, 1, B, T, C, NH);
    assert_true(memcmp(o2, ob, nout * 4) != 0 || memcmp(g2, gb, nqkv * 4) != 0);
    assert_memory_equal(o1, o2, nout * 4);
    assert_memory_equal(l1, l2, nl * 4);
    assert_memory_equal(g1, g2, nqkv * 4);
    omp_set_num_threads(nth0);
    CHECK_OK(ss_gemm_use(SS_GEMM_OPENBLAS, &err), &err);
    free(qkv), free(dout), free(valid), free(ob), free(lb), free(gb), free(o1), free(l1), free(g1);
    free(o2), free(l2), free(g2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_37x72x3),
        cmocka_unit_test(test_unwritten_tile_columns_never_leak),
        cmocka_unit_test(test_shape_single_token),
        cmocka_unit_test(test_shape_several_tiles),
        cmocka_unit_test(test_shape_odd_head_size),
        cmocka_unit_test(test_appended_rows),
        cmocka_unit_test(test_blind_rows),
        cmocka_unit_test(test_fully_padded_sequence),
        cmocka_unit_test(test_bit_identical_repeats),
        cmocka_unit_test(test_backward_accumulates),
        cmocka_unit_test(test_long_sequence_memory),
        cmocka_unit_test(test_bf16_tiles),
        cmocka_unit_test(test_f32_tiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
