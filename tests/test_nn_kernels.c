/* nn kernels (everything but attention) against naive double-precision
 * references written here, on odd shapes; accumulation semantics of the
 * backwards; determinism across runs and thread counts; dropout statistics. */
#include "testutil.h"

#include <math.h>
#include <omp.h>

#include "selfsup/nn.h"

/* ---- helpers ------------------------------------------------------------------ */

/* Uniform in [-a, a) from a 64-bit LCG: reproducible test inputs. */
static float frand(uint64_t *s, float a) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return a * ((float)(*s >> 40) * 0x1p-23f - 1.0f);
}

static float *rand_vec(size_t n, float a, uint64_t seed) {
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = frand(&seed, a);
    return v;
}

static float *copy_vec(const float *src, size_t n) {
    float *v = malloc(n * sizeof *v);
    assert_non_null(v);
    memcpy(v, src, n * sizeof *v);
    return v;
}

/* Fail unless |got - want| <= atol + rtol * |want| for every element. */
static void assert_close(const float *got, const double *want, size_t n,
                         double rtol, double atol, const char *what) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= atol + rtol * fabs(want[i])))
            fail_msg("%s[%zu]: got %.9g, want %.9g (diff %.3g)", what, i,
                     (double)got[i], want[i], d);
    }
}

static double *dalloc(size_t n) {
    double *v = calloc(n, sizeof *v);
    assert_non_null(v);
    return v;
}

/* ---- linear ---------------------------------------------------------------------- */

/* out = inp @ w^T + b in double; also sum |inp*w| per output for the tolerance. */
static void linear_ref(double *out, double *mag, const float *inp, const float *w,
                       const float *b, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double acc = b ? b[o] : 0.0, m = b ? fabs(b[o]) : 0.0;
            for (int c = 0; c < C; c++) {
                acc += (double)inp[n * C + c] * w[o * C + c];
                m += fabs((double)inp[n * C + c] * w[o * C + c]);
            }
            out[n * OC + o] = acc;
            mag[n * OC + o] = m;
        }
}

static void check_linear_forward(int N, int C, int OC, int with_bias) {
    float *inp = rand_vec((size_t)N * C, 1.0f, 1), *w = rand_vec((size_t)OC * C, 0.5f, 2);
    float *b = with_bias ? rand_vec(OC, 1.0f, 3) : NULL;
    float *out = rand_vec((size_t)N * OC, 100.0f, 4);  // garbage: forward overwrites
    double *ref = dalloc((size_t)N * OC), *mag = dalloc((size_t)N * OC);
    ss_linear_forward(out, inp, w, b, N, C, OC);
    linear_ref(ref, mag, inp, w, b, N, C, OC);
    for (size_t i = 0; i < (size_t)N * OC; i++)
        if (!(fabs(out[i] - ref[i]) <= 1e-5 * mag[i] + 1e-7))
            fail_msg("linear out[%zu] = %.9g, want %.9g", i, (double)out[i], ref[i]);
    free(inp); free(w); free(b); free(out); free(ref); free(mag);
}

static void test_linear_forward(void **state) {
    (void)state;
    check_linear_forward(37, 72, 5, 1);
    check_linear_forward(37, 72, 5, 0);
    check_linear_forward(1, 3, 1, 1);
    check_linear_forward(130, 67, 101, 1);
}

/* Backward accumulates into pre-filled buffers; NULL skips a gradient. */
static void test_linear_backward(void **state) {
    (void)state;
    const int N = 37, C = 72, OC = 5;
    float *inp = rand_vec(N * C, 1.0f, 5), *w = rand_vec(OC * C, 1.0f, 6);
    float *dout = rand_vec(N * OC, 1.0f, 7);
    float *dinp = rand_vec(N * C, 1.0f, 8), *dw = rand_vec(OC * C, 1.0f, 9);
    float *db = rand_vec(OC, 1.0f, 10);
    double *rdinp = dalloc(N * C), *rdw = dalloc(OC * C), *rdb = dalloc(OC);
    for (int i = 0; i < N * C; i++) rdinp[i] = dinp[i];
    for (int i = 0; i < OC * C; i++) rdw[i] = dw[i];
    for (int i = 0; i < OC; i++) rdb[i] = db[i];
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double d = dout[n * OC + o];
            rdb[o] += d;
            for (int c = 0; c < C; c++) {
                rdinp[n * C + c] += d * w[o * C + c];
                rdw[o * C + c] += d * inp[n * C + c];
            }
        }
    ss_linear_backward(dinp, dw, db, dout, inp, w, N, C, OC);
    assert_close(dinp, rdinp, N * C, 1e-5, 1e-5, "dinp");
    assert_close(dw, rdw, OC * C, 1e-5, 1e-5, "dw");
    assert_close(db, rdb, OC, 1e-5, 1e-5, "db");

    // dinp only (dw, db NULL): dinp gets the product a second time
    float *dinp2 = copy_vec(dinp, N * C);
    ss_linear_backward(dinp2, NULL, NULL, dout, inp, w, N, C, OC);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            double acc = dinp[n * C + c];
            for (int o = 0; o < OC; o++) acc += (double)dout[n * OC + o] * w[o * C + c];
            rdinp[n * C + c] = acc;
        }
    assert_close(dinp2, rdinp, N * C, 1e-5, 1e-5, "dinp (dinp only)");
    // weights only into a zeroed buffer (a first layer needs no input gradient)
    float *dw2 = calloc(OC * C, sizeof *dw2), *db2 = calloc(OC, sizeof *db2);
    ss_linear_backward(NULL, dw2, NULL, dout, inp, w, N, C, OC);
    ss_linear_backward(NULL, NULL, db2, dout, inp, w, N, C, OC);
    for (int o = 0; o < OC; o++) {
        rdb[o] = 0;
        for (int c = 0; c < C; c++) rdw[o * C + c] = 0;
        for (int n = 0; n < N; n++) {
            rdb[o] += dout[n * OC + o];
            for (int c = 0; c < C; c++) rdw[o * C + c] += (double)dout[n * OC + o] * inp[n * C + c];
        }
    }
    assert_close(dw2, rdw, OC * C, 1e-5, 1e-5, "dw (dw only)");
    assert_close(db2, rdb, OC, 1e-5, 1e-5, "db (db only)");
    free(inp); free(w); free(dout); free(dinp); free(dw); free(db); free(dinp2); free(dw2); free(db2);
    free(rdinp); free(rdw); free(rdb);
}

/* ---- layernorm --------------------------------------------------------------------- */

static void test_layernorm(void **state) {
    (void)state;
    const int N = 37, C = 72;
    float *inp = rand_vec(N * C, 2.0f, 11), *w = rand_vec(C, 1.0f, 12), *b = rand_vec(C, 1.0f, 13);
    for (int i = 0; i < N * C; i++) inp[i] += 3.0f;  // nonzero mean
    float *out = malloc(N * C * sizeof *out), *mean = malloc(N * sizeof *mean);
    float *rstd = malloc(N * sizeof *rstd);
    float *dout = rand_vec(N * C, 1.0f, 14);
    float *dinp = rand_vec(N * C, 1.0f, 15), *dw = rand_vec(C, 1.0f, 16), *db = rand_vec(C, 1.0f, 17);
    double *rout = dalloc(N * C), *rmean = dalloc(N), *rrstd = dalloc(N);
    double *rdinp = dalloc(N * C), *rdw = dalloc(C), *rdb = dalloc(C);
    for (int i = 0; i < C; i++) { rdw[i] = dw[i]; rdb[i] = db[i]; }
    for (int n = 0; n < N; n++) {
        const float *x = inp + n * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += x[i];
        m /= C;
        for (int i = 0; i < C; i++) v += (x[i] - m) * (x[i] - m);
        double s = 1.0 / sqrt(v / C + 1e-5);
        rmean[n] = m; rrstd[n] = s;
        double dn_mean = 0, dnn_mean = 0;
        for (int i = 0; i < C; i++) {
            double nrm = (x[i] - m) * s, dn = (double)dout[n * C + i] * w[i];
            rout[n * C + i] = nrm * w[i] + b[i];
            dn_mean += dn / C;
            dnn_mean += dn * nrm / C;
        }
        for (int i = 0; i < C; i++) {
            double nrm = (x[i] - m) * s, dn = (double)dout[n * C + i] * w[i];
            rdinp[n * C + i] = dinp[n * C + i] + (dn - dn_mean - nrm * dnn_mean) * s;
            rdw[i] += dout[n * C + i] * nrm;
            rdb[i] += dout[n * C + i];
        }
    }
    ss_layernorm_forward(out, mean, rstd, inp, w, b, N, C);
    assert_close(mean, rmean, N, 1e-6, 1e-6, "mean");
    assert_close(rstd, rrstd, N, 1e-5, 0, "rstd");
    assert_close(out, rout, N * C, 1e-5, 1e-5, "out");
    ss_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    assert_close(dinp, rdinp, N * C, 1e-4, 1e-5, "dinp");
    assert_close(dw, rdw, C, 1e-5, 1e-5, "dw");
    assert_close(db, rdb, C, 1e-5, 1e-5, "db");
    free(inp); free(w); free(b); free(out); free(mean); free(rstd); free(dout);
    free(dinp); free(dw); free(db); free(rout); free(rmean); free(rrstd);
    free(rdinp); free(rdw); free(rdb);
}

/* ---- gelu, tanh, residual ------------------------------------------------------------ */

static double gelu_ref(double x) {
    const double k = sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

static double gelu_grad_ref(double x) {
    const double k = sqrt(2.0 / M_PI);
    double t = tanh(k * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * x * x);
}

static void test_gelu(void **state) {
    (void)state;
    const size_t n = 4001;  // x from -20 to 20 in steps of 0.01, plus the extremes
    float *x = malloc((n + 2) * sizeof *x), *out = malloc((n + 2) * sizeof *out);
    float *dout = rand_vec(n + 2, 1.0f, 18), *dinp = rand_vec(n + 2, 1.0f, 19);
    double *rout = dalloc(n + 2), *rdinp = dalloc(n + 2);
    for (size_t i = 0; i < n; i++) x[i] = -20.0f + 0.01f * (float)i;
    x[n] = -1e4f; x[n + 1] = 1e4f;
    for (size_t i = 0; i < n + 2; i++) {
        rout[i] = gelu_ref(x[i]);
        rdinp[i] = dinp[i] + gelu_grad_ref(x[i]) * dout[i];
    }
    ss_gelu_forward(out, x, n + 2);
    assert_close(out, rout, n + 2, 1e-5, 1e-7, "gelu");
    ss_gelu_backward(dinp, x, dout, n + 2);
    assert_close(dinp, rdinp, n + 2, 1e-5, 1e-6, "gelu dinp");
    free(x); free(out); free(dout); free(dinp); free(rout); free(rdinp);
}

static void test_tanh_residual(void **state) {
    (void)state;
    const size_t n = 1001;
    float *x = rand_vec(n, 4.0f, 20), *y = rand_vec(n, 4.0f, 21), *out = malloc(n * sizeof *out);
    float *dout = rand_vec(n, 1.0f, 22), *da = rand_vec(n, 1.0f, 23), *db = rand_vec(n, 1.0f, 24);
    double *r1 = dalloc(n), *r2 = dalloc(n), *r3 = dalloc(n);
    for (size_t i = 0; i < n; i++) {
        double t = tanh((double)x[i]);
        r1[i] = t;
        r2[i] = da[i] + (1.0 - t * t) * dout[i];
    }
    ss_tanh_forward(out, x, n);
    assert_close(out, r1, n, 1e-6, 1e-7, "tanh");
    ss_tanh_backward(da, out, dout, n);
    assert_close(da, r2, n, 1e-5, 1e-6, "tanh dinp");

    for (size_t i = 0; i < n; i++) {
        r1[i] = (double)x[i] + y[i];
        r2[i] = (double)da[i] + dout[i];
        r3[i] = (double)db[i] + dout[i];
    }
    ss_residual_forward(out, x, y, n);
    assert_close(out, r1, n, 1e-7, 0, "residual");
    ss_residual_backward(da, db, dout, n);
    assert_close(da, r2, n, 1e-7, 0, "residual da");
    assert_close(db, r3, n, 1e-7, 0, "residual db");
    free(x); free(y); free(out); free(dout); free(da); free(db); free(r1); free(r2); free(r3);
}

/* ---- embedding ----------------------------------------------------------------------- */

static void test_embedding(void **state) {
    (void)state;
    const int B = 3, T = 7, C = 72, V = 11;
    int32_t tokens[3 * 7];
    for (int i = 0; i < B * T; i++) tokens[i] = (i * 7 + i / 5) % 4;  // ids 0..3 repeat a lot
    tokens[5] = V - 1;
    float *wte = rand_vec(V * C, 1.0f, 25), *wpe = rand_vec(T * C, 1.0f, 26);
    float *out = malloc(B * T * C * sizeof *out), *dout = rand_vec(B * T * C, 1.0f, 27);
    float *dwte = rand_vec(V * C, 1.0f, 28), *dwpe = rand_vec(T * C, 1.0f, 29);
    double *rout = dalloc(B * T * C), *rdwte = dalloc(V * C), *rdwpe = dalloc(T * C);
    for (int i = 0; i < V * C; i++) rdwte[i] = dwte[i];
    for (int i = 0; i < T * C; i++) rdwpe[i] = dwpe[i];
    for (int bt = 0; bt < B * T; bt++)
        for (int c = 0; c < C; c++) {
            int t = bt % T, v = tokens[bt];
            rout[bt * C + c] = (double)wte[v * C + c] + wpe[t * C + c];
            rdwte[v * C + c] += dout[bt * C + c];
            rdwpe[t * C + c] += dout[bt * C + c];
        }
    ss_embedding_forward(out, tokens, wte, wpe, B, T, C);
    assert_close(out, rout, B * T * C, 1e-7, 0, "embedding out");
    ss_embedding_backward(dwte, dwpe, dout, tokens, B, T, C);
    assert_close(dwte, rdwte, V * C, 1e-6, 1e-6, "dwte");
    assert_close(dwpe, rdwpe, T * C, 1e-6, 1e-6, "dwpe");
    free(wte); free(wpe); free(out); free(dout); free(dwte); free(dwpe);
    free(rout); free(rdwte); free(rdwpe);
}

/* ---- dropout --------------------------------------------------------------------------- */

static void test_dropout_p0_is_identity(void **state) {
    (void)state;
    const size_t n = 1000;
    float *x = rand_vec(n, 1.0f, 30), *out = malloc(n * sizeof *out);
    float *dout = rand_vec(n, 1.0f, 31), *dinp = rand_vec(n, 1.0f, 32);
    double *r = dalloc(n);
    for (size_t i = 0; i < n; i++) r[i] = (double)dinp[i] + dout[i];
    ss_dropout_forward(out, x, n, 0.0f, 42);
    assert_memory_equal(out, x, n * sizeof *x);
    ss_dropout_backward(dinp, dout, n, 0.0f, 42);
    assert_close(dinp, r, n, 1e-7, 0, "dropout p=0 dinp");
    free(x); free(out); free(dout); free(dinp); free(r);
}

static void test_dropout_statistics_and_mask(void **state) {
    (void)state;
    const size_t n = 1000000;
    const float p = 0.1f, scale = 1.0f / (1.0f - p);
    float *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out), *out2 = malloc(n * sizeof *out2);
    float *dinp = calloc(n, sizeof *dinp);
    for (size_t i = 0; i < n; i++) x[i] = 1.0f + (float)(i % 7);
    ss_dropout_forward(out, x, n, p, 1234);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (out[i] != 0.0f) {
            kept++;
            assert_true(out[i] == x[i] * scale);
        }
    }
    // kept ~ Binomial(n, 1-p): sd = sqrt(n p (1-p)) = 300; allow 6 sd
    double frac = (double)kept / n;
    if (fabs(frac - (1.0 - p)) > 6.0 * 300.0 / n)
        fail_msg("dropout kept fraction %.5f, want %.5f", frac, 1.0 - p);
    // same seed: same mask; other seed: a different mask with the same rate
    ss_dropout_forward(out2, x, n, p, 1234);
    assert_memory_equal(out, out2, n * sizeof *out);
    ss_dropout_forward(out2, x, n, p, 1235);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) differ += (out[i] == 0.0f) != (out2[i] == 0.0f);
    assert_true(differ > n / 10);  // expected 2 p (1-p) n = 18%
    // backward: dinp = dout * same mask * scale, with dout = 1
    float *ones = malloc(n * sizeof *ones);
    for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
    ss_dropout_backward(dinp, ones, n, p, 1234);
    for (size_t i = 0; i < n; i++)
        if (dinp[i] != (out[i] != 0.0f ? scale : 0.0f))
            fail_msg("dropout backward mask differs at %zu", i);
    free(x); free(out); free(out2); free(dinp); free(ones);
}

/* ---- cross-entropy ------------------------------------------------------------------ */

static void check_crossentropy(int N, int V, float amp, float scale) {
    float *logits = rand_vec((size_t)N * V, amp, 33 + N);
    int32_t *targets = malloc(N * sizeof *targets);
    float *loss = malloc(N * sizeof *loss);
    double *rgrad = dalloc((size_t)N * V), *rloss = dalloc(N);
    double rtotal = 0;
    int64_t rcorrect = 0;
    for (int n = 0; n < N; n++) {
        targets[n] = n % 4 == 3 ? -1 : (n * 37) % V;
        if (n % 5 == 1 && targets[n] >= 0) logits[(size_t)n * V + targets[n]] += 3 * amp;  // a hit
        if (targets[n] < 0) continue;
        const float *x = logits + (size_t)n * V;
        double sum = 0;
        int am = 0;
        for (int j = 0; j < V; j++) { sum += exp((double)x[j]); if (x[j] > x[am]) am = j; }
        rcorrect += am == targets[n];
        rloss[n] = log(sum) - x[targets[n]];
        rtotal += rloss[n];
        for (int j = 0; j < V; j++)
            rgrad[(size_t)n * V + j] = (exp((double)x[j]) / sum - (j == targets[n])) * scale;
    }
    int64_t correct = -1;
    double total = ss_crossentropy_fused(logits, loss, targets, N, V, scale, &correct);
    assert_close(loss, rloss, N, 1e-5, 1e-5, "loss");
    assert_close(logits, rgrad, (size_t)N * V, 1e-4, 1e-7, "dlogits");
    if (fabs(total - rtotal) > 1e-5 * rtotal + 1e-5) fail_msg("total %.9g want %.9g", total, rtotal);
    assert_int_equal(correct, rcorrect);
    assert_true(rcorrect > 0);
    free(logits); free(targets); free(loss); free(rgrad); free(rloss);
}

static void test_crossentropy(void **state) {
    (void)state;
    check_crossentropy(37, 101, 3.0f, 1.0f);
    check_crossentropy(12, 5, 1.0f, 0.25f);
    check_crossentropy(8, 1000, 20.0f, 0.125f);
}

/* Huge logits: a naive exp would overflow; the max shift keeps it finite. */
static void test_crossentropy_stable(void **state) {
    (void)state;
    float logits[2 * 3] = {1000.0f, 999.0f, 998.0f, -1000.0f, -1001.0f, -1002.0f};
    int32_t targets[2] = {1, 2};
    float loss[2];
    int64_t correct = -1;
    double total = ss_crossentropy_fused(logits, loss, targets, 2, 3, 1.0f, &correct);
    double lse = log(1.0 + exp(-1.0) + exp(-2.0));  // logsumexp - max
    assert_true(fabs(loss[0] - (lse + 1.0)) < 1e-5);
    assert_true(fabs(loss[1] - (lse + 2.0)) < 1e-5);
    assert_true(fabs(total - (2.0 * lse + 3.0)) < 1e-5);
    assert_int_equal(correct, 0);
    assert_true(fabs(logits[0] - 1.0 / exp(lse)) < 1e-6);
    assert_true(fabs(logits[4] - exp(-1.0) / exp(lse)) < 1e-6);
    assert_true(fabs(logits[5] - (exp(-2.0) / exp(lse) - 1.0)) < 1e-6);
    // NULL correct is allowed
    float lg[3] = {0.0f, 1.0f, 2.0f};
    int32_t tg = 2;
    ss_crossentropy_fused(lg, loss, &tg, 1, 3, 1.0f, NULL);
}

/* A NaN logit (a diverged model) makes that row's loss and gradient NaN, so
 * the trainer's non-finite check stops the run; it must not be undefined
 * behaviour on the way: exp of NaN once converted NaN to an int
 * (ss_vexpf), which UBSan reports in the sanitizer build of this test. */
static void test_crossentropy_nan_logit(void **state) {
    (void)state;
    float logits[2 * 3] = {0.5f, NAN, -1.0f, 0.0f, 1.0f, 2.0f};
    int32_t targets[2] = {2, 2};
    float loss[2];
    int64_t correct = -1;
    double total = ss_crossentropy_fused(logits, loss, targets, 2, 3, 1.0f, &correct);
    assert_true(isnan(loss[0]));
    assert_true(isnan(total));
    for (int j = 0; j < 3; j++) assert_true(isnan(logits[j]));
    double lse = log(exp(-2.0) + exp(-1.0) + 1.0);  // the finite row is untouched by the NaN one
    assert_true(fabs(loss[1] - lse) < 1e-5);
    assert_true(fabs(logits[5] - (1.0 / exp(lse) - 1.0)) < 1e-6);
    assert_int_equal(correct, 1);  // row 1 only: row 0's argmax (0) is not its target
}

/* ---- determinism ------------------------------------------------------------------------ */

/* Every kernel run twice on 2 threads gives identical bits; the kernels whose
 * reductions run in a fixed order are also bit-identical on 1 thread; sgemm
 * on 1 thread agrees within rounding. Sizes are above the parallel threshold. */
typedef struct { float *out, *mean, *rstd, *dinp, *dw, *db, *lin, *ldw, *ldb, *ce, *g, *dwte;
                 double total; int64_t correct; } run_out;

enum { DN = 256, DC = 384, DOC = 130, DV = 2003, DB = 4, DT = 64 };

static void run_all(run_out *r, int threads) {
    omp_set_num_threads(threads);
    size_t nc = (size_t)DN * DC;
    float *inp = rand_vec(nc, 2.0f, 50), *w = rand_vec(DC, 1.0f, 51), *b = rand_vec(DC, 1.0f, 52);
    float *dout = rand_vec(nc, 1.0f, 53), *lw = rand_vec((size_t)DOC * DC, 0.1f, 54);
    float *ldout = rand_vec((size_t)DN * DOC, 1.0f, 55);
    r->out = malloc(nc * 4); r->mean = malloc(DN * 4); r->rstd = malloc(DN * 4);
    r->dinp = calloc(nc, 4); r->dw = calloc(DC, 4); r->db = calloc(DC, 4);
    ss_layernorm_forward(r->out, r->mean, r->rstd, inp, w, b, DN, DC);
    ss_layernorm_backward(r->dinp, r->dw, r->db, dout, inp, w, r->mean, r->rstd, DN, DC);
    r->g = calloc(nc, 4);
    ss_gelu_forward(r->out, r->out, nc);  // in place
    ss_gelu_backward(r->g, inp, dout, nc);
    ss_dropout_backward(r->g, dout, nc, 0.3f, 99);
    r->lin = malloc((size_t)DN * DOC * 4); r->ldw = calloc((size_t)DOC * DC, 4); r->ldb = calloc(DOC, 4);
    ss_linear_forward(r->lin, inp, lw, b, DN, DC, DOC);
    ss_linear_backward(r->dinp, r->ldw, r->ldb, ldout, inp, lw, DN, DC, DOC);
    int32_t *tok = malloc(DB * DT * 4), *tg = malloc(DN * 4);
    for (int i = 0; i < DB * DT; i++) tok[i] = (i * 13) % 50;
    r->dwte = calloc(50 * DC, 4);
    ss_embedding_backward(r->dwte, r->g, dout, tok, DB, DT, DC);
    r->ce = rand_vec((size_t)DN * DV, 5.0f, 56);
    for (int n = 0; n < DN; n++) tg[n] = n % 9 == 0 ? -1 : (n * 31) % DV;
    float *loss = malloc(DN * 4);
    r->total = ss_crossentropy_fused(r->ce, loss, tg, DN, DV, 1.0f / DN, &r->correct);
    free(inp); free(w); free(b); free(dout); free(lw); free(ldout); free(tok); free(tg); free(loss);
}

static void free_run(run_out *r) {
    free(r->out); free(r->mean); free(r->rstd); free(r->dinp); free(r->dw); free(r->db);
    free(r->lin); free(r->ldw); free(r->ldb); free(r->ce); free(r->g); free(r->dwte);
}

#define SAME(a, b, f, n) assert_memory_equal((a).f, (b).f, (size_t)(n) * sizeof *(a).f)

static void assert_near(const float *a, const float *b, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(b[i]))))
            fail_msg("%s[%zu]: 1 thread %.9g vs 2 threads %.9g", what, i, (double)a[i], (double)b[i]);
}

static void test_determinism(void **state) {
    (void)state;
    int saved = omp_get_max_threads();
    run_out a, b, c;
    run_all(&a, 2);
    run_all(&b, 2);
    run_all(&c, 1);
    size_t nc = (size_t)DN * DC;
    // 2 threads, twice: every output bit-identical
    SAME(a, b, out, nc); SAME(a, b, mean, DN); SAME(a, b, rstd, DN); SAME(a, b, dinp, nc);
    SAME(a, b, dw, DC); SAME(a, b, db, DC); SAME(a, b, lin, DN * DOC); SAME(a, b, ldw, DOC * DC);
    SAME(a, b, ldb, DOC); SAME(a, b, ce, (size_t)DN * DV); SAME(a, b, g, nc); SAME(a, b, dwte, 50 * DC);
    assert_true(a.total == b.total);
    assert_int_equal(a.correct, b.correct);
    // 1 thread: fixed-order kernels bit-identical, sgemm outputs within rounding
    SAME(a, c, out, nc); SAME(a, c, mean, DN); SAME(a, c, rstd, DN); SAME(a, c, dw, DC);
    SAME(a, c, db, DC); SAME(a, c, ldb, DOC); SAME(a, c, ce, (size_t)DN * DV); SAME(a, c, g, nc);
    SAME(a, c, dwte, 50 * DC);
    assert_true(a.total == c.total);
    assert_int_equal(a.correct, c.correct);
    assert_near(c.dinp, a.dinp, nc, "dinp");
    assert_near(c.lin, a.lin, DN * DOC, "linear out");
    assert_near(c.ldw, a.ldw, DOC * DC, "linear dw");
    free_run(&a); free_run(&b); free_run(&c);
    omp_set_num_threads(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_forward),
        cmocka_unit_test(test_linear_backward),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_tanh_residual),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_dropout_p0_is_identity),
        cmocka_unit_test(test_dropout_statistics_and_mask),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_crossentropy_stable),
        cmocka_unit_test(test_crossentropy_nan_logit),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
