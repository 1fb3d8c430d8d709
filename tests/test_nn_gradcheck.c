/* Finite-difference check of every backward in nn.h except attention.
 *
 * For a kernel y = f(x) take the scalar L = sum_i r_i y_i with fixed random r.
 * The analytic gradient is the kernel's backward with dout = r; the numeric one
 * is the central difference (L(x+h) - L(x-h)) / 2h of a double-precision copy
 * of the forward written here, h = 1e-5, whose error (~1e-10) is far below the
 * tolerance |a - n| <= 1e-4 max(|a|,|n|) + 1e-5. That tolerance only absorbs
 * the fp32 rounding of the analytic gradient, so a wrong formula (a missing
 * term, a wrong constant, a transposed product) fails; the sanity tests prove
 * it by feeding deliberately wrong gradients to the same comparison. */
#include "testutil.h"

#include <math.h>

#include "selfsup/nn.h"

#define FD_H 1e-5
#define FD_RTOL 1e-4
#define FD_ATOL 1e-5

/* ---- the checker -------------------------------------------------------------------- */

/* Inputs of one kernel's double-precision forward; each loss uses what it needs. */
typedef struct {
    double *a, *b, *c;       /* differentiable inputs */
    const double *r;         /* weights of the outputs in L */
    const double *mask;      /* dropout: per-element factor keep/(1-p) */
    const int32_t *tokens;   /* embedding tokens, cross-entropy targets */
    int N, C, OC, T;
    double scale;
} fd_ctx;

typedef double (*loss_fn)(const fd_ctx *ctx);

/* num[i] = dL/dp[i] by central differences; p is restored afterwards. */
static void numeric_grad(double *num, double *p, size_t n, loss_fn L, const fd_ctx *ctx) {
    for (size_t i = 0; i < n; i++) {
        double save = p[i];
        p[i] = save + FD_H;
        double lp = L(ctx);
        p[i] = save - FD_H;
        double lm = L(ctx);
        p[i] = save;
        num[i] = (lp - lm) / (2.0 * FD_H);
    }
}

/* Number of elements where analytic and numeric gradients disagree; the first
 * one goes to *first. */
static size_t grad_mismatches(const float *an, const double *num, size_t n, size_t *first) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double a = an[i], d = fabs(a - num[i]);
        double m = fabs(a) > fabs(num[i]) ? fabs(a) : fabs(num[i]);
        if (!(d <= FD_RTOL * m + FD_ATOL)) {
            if (!bad && first) *first = i;
            bad++;
        }
    }
    return bad;
}

/* Check the analytic gradient of L with respect to p (double copy, n elements). */
static void expect_grad(const char *what, const float *analytic, double *p, size_t n,
                        loss_fn L, const fd_ctx *ctx) {
    double *num = malloc(n * sizeof *num);
    assert_non_null(num);
    numeric_grad(num, p, n, L, ctx);
    size_t first = 0, bad = grad_mismatches(analytic, num, n, &first);
    if (bad)
        fail_msg("%s: %zu of %zu elements differ; [%zu] analytic %.9g numeric %.9g", what,
                 bad, n, first, (double)analytic[first], num[first]);
    free(num);
}

/* ---- inputs ------------------------------------------------------------------------------ */

static float frand(uint64_t *s, float a) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return a * ((float)(*s >> 40) * 0x1p-23f - 1.0f);
}

/* A random float vector and its exact double copy. */
static float *rand_pair(double **dcopy, size_t n, float a, uint64_t seed) {
    float *v = malloc(n * sizeof *v);
    double *d = malloc(n * sizeof *d);
    assert_true(v && d);
    for (size_t i = 0; i < n; i++) d[i] = v[i] = frand(&seed, a);
    *dcopy = d;
    return v;
}

static float *zeros(size_t n) {
    float *v = calloc(n, sizeof *v);
    assert_non_null(v);
    return v;
}

/* ---- double-precision forwards, reduced to L = sum r * out ----------------------------- */

static double gelu_d(double x) {
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

// out[n,o] = b[o] + sum_c inp[n,c] w[o,c]
static double linear_L(const fd_ctx *k) {
    double L = 0;
    for (int n = 0; n < k->N; n++)
        for (int o = 0; o < k->OC; o++) {
            double y = k->c[o];
            for (int i = 0; i < k->C; i++) y += k->a[n * k->C + i] * k->b[o * k->C + i];
            L += k->r[n * k->OC + o] * y;
        }
    return L;
}

// out = (x - mean) / sqrt(var + 1e-5) * w + b per row
static double layernorm_L(const fd_ctx *k) {
    double L = 0;
    for (int n = 0; n < k->N; n++) {
        const double *x = k->a + n * k->C;
        double m = 0, v = 0;
        for (int i = 0; i < k->C; i++) m += x[i] / k->C;
        for (int i = 0; i < k->C; i++) v += (x[i] - m) * (x[i] - m) / k->C;
        for (int i = 0; i < k->C; i++)
            L += k->r[n * k->C + i] * ((x[i] - m) / sqrt(v + 1e-5) * k->b[i] + k->c[i]);
    }
    return L;
}

static double gelu_L(const fd_ctx *k) {
    double L = 0;
    for (int i = 0; i < k->N; i++) L += k->r[i] * gelu_d(k->a[i]);
    return L;
}

/* L = sum r[n,f] gelu(a[n,f] + b[f]): the bias-folded GELU of the MLP. */
static double bias_gelu_L(const fd_ctx *k) {
    double L = 0;
    for (int n = 0; n < k->N; n++)
        for (int f = 0; f < k->C; f++) L += k->r[n * k->C + f] * gelu_d(k->a[n * k->C + f] + k->b[f]);
    return L;
}

static double tanh_L(const fd_ctx *k) {
    double L = 0;
    for (int i = 0; i < k->N; i++) L += k->r[i] * tanh(k->a[i]);
    return L;
}

static double residual_L(const fd_ctx *k) {
    double L = 0;
    for (int i = 0; i < k->N; i++) L += k->r[i] * (k->a[i] + k->b[i]);
    return L;
}

static double dropout_L(const fd_ctx *k) {
    double L = 0;
    for (int i = 0; i < k->N; i++) L += k->r[i] * k->a[i] * k->mask[i];
    return L;
}

// out[bt,:] = wte[tokens[bt],:] + wpe[bt % T,:];  N = B*T rows
static double embedding_L(const fd_ctx *k) {
    double L = 0;
    for (int bt = 0; bt < k->N; bt++)
        for (int i = 0; i < k->C; i++)
            L += k->r[bt * k->C + i] *
                 (k->a[k->tokens[bt] * k->C + i] + k->b[(bt % k->T) * k->C + i]);
    return L;
}

// L = scale * sum over rows with a target of (logsumexp(x) - x[target])
static double xent_L(const fd_ctx *k) {
    double L = 0;
    for (int n = 0; n < k->N; n++) {
        if (k->tokens[n] < 0) continue;
        const double *x = k->a + n * k->C;
        double mx = x[0], s = 0;
        for (int j = 1; j < k->C; j++) mx = x[j] > mx ? x[j] : mx;
        for (int j = 0; j < k->C; j++) s += exp(x[j] - mx);
        L += k->scale * (mx + log(s) - x[k->tokens[n]]);
    }
    return L;
}

/* ---- the checks ----------------------------------------------------------------------------- */

enum { N = 5, C = 7, OC = 3 };

static void test_linear(void **state) {
    (void)state;
    double *inp_d, *w_d, *b_d, *r_d;
    float *inp = rand_pair(&inp_d, N * C, 1.0f, 1), *w = rand_pair(&w_d, OC * C, 1.0f, 2);
    float *b = rand_pair(&b_d, OC, 1.0f, 3), *r = rand_pair(&r_d, N * OC, 1.0f, 4);
    float *dinp = zeros(N * C), *dw = zeros(OC * C), *db = zeros(OC);
    ss_linear_backward(dinp, dw, db, r, inp, w, N, C, OC);
    fd_ctx k = {.a = inp_d, .b = w_d, .c = b_d, .r = r_d, .N = N, .C = C, .OC = OC};
    expect_grad("linear dinp", dinp, inp_d, N * C, linear_L, &k);
    expect_grad("linear dw", dw, w_d, OC * C, linear_L, &k);
    expect_grad("linear db", db, b_d, OC, linear_L, &k);
    free(inp); free(w); free(b); free(r); free(dinp); free(dw); free(db);
    free(inp_d); free(w_d); free(b_d); free(r_d);
}

static void test_layernorm(void **state) {
    (void)state;
    double *x_d, *w_d, *b_d, *r_d;
    float *x = rand_pair(&x_d, N * C, 2.0f, 5), *w = rand_pair(&w_d, C, 1.5f, 6);
    float *b = rand_pair(&b_d, C, 1.0f, 7), *r = rand_pair(&r_d, N * C, 1.0f, 8);
    float out[N * C], mean[N], rstd[N];
    float *dx = zeros(N * C), *dw = zeros(C), *db = zeros(C);
    ss_layernorm_forward(out, mean, rstd, x, w, b, N, C);
    ss_layernorm_backward(dx, dw, db, r, x, w, mean, rstd, N, C);
    fd_ctx k = {.a = x_d, .b = w_d, .c = b_d, .r = r_d, .N = N, .C = C};
    expect_grad("layernorm dinp", dx, x_d, N * C, layernorm_L, &k);
    expect_grad("layernorm dw", dw, w_d, C, layernorm_L, &k);
    expect_grad("layernorm db", db, b_d, C, layernorm_L, &k);
    free(x); free(w); free(b); free(r); free(dx); free(dw); free(db);
    free(x_d); free(w_d); free(b_d); free(r_d);
}

static void test_gelu_tanh(void **state) {
    (void)state;
    double *x_d, *r_d;
    float *x = rand_pair(&x_d, N * C, 4.0f, 9), *r = rand_pair(&r_d, N * C, 1.0f, 10);
    float out[N * C], *dx = zeros(N * C);
    fd_ctx k = {.a = x_d, .r = r_d, .N = N * C};
    ss_gelu_backward(dx, x, r, N * C);
    expect_grad("gelu dinp", dx, x_d, N * C, gelu_L, &k);
    memset(dx, 0, N * C * sizeof *dx);
    ss_tanh_forward(out, x, N * C);
    ss_tanh_backward(dx, out, r, N * C);
    expect_grad("tanh dinp", dx, x_d, N * C, tanh_L, &k);
    free(x); free(r); free(dx); free(x_d); free(r_d);
}

/* The training pair: the forward stores gelu'(x + b) in place of x, the
 * backward multiplies by it and sums the bias gradient in the same pass. */
static void test_bias_gelu_grad(void **state) {
    (void)state;
    double *x_d, *b_d, *r_d;
    float *x = rand_pair(&x_d, N * C, 4.0f, 31), *b = rand_pair(&b_d, C, 1.0f, 32);
    float *r = rand_pair(&r_d, N * C, 1.0f, 33);
    float out[N * C], *dx = zeros(N * C), *db = zeros(C), *grad = malloc(N * C * sizeof *grad);
    assert_non_null(grad);
    memcpy(grad, x, N * C * sizeof *grad);
    ss_bias_gelu_forward_grad(out, grad, b, N, C);
    ss_gelu_backward_grad_bias(dx, db, grad, r, N, C);
    fd_ctx k = {.a = x_d, .b = b_d, .r = r_d, .N = N, .C = C};
    expect_grad("bias-gelu dinp", dx, x_d, N * C, bias_gelu_L, &k);
    expect_grad("bias-gelu db", db, b_d, C, bias_gelu_L, &k);
    free(x); free(b); free(r); free(dx); free(db); free(grad);
    free(x_d); free(b_d); free(r_d);
}

static void test_residual(void **state) {
    (void)state;
    double *a_d, *b_d, *r_d;
    float *a = rand_pair(&a_d, N * C, 1.0f, 11), *b = rand_pair(&b_d, N * C, 1.0f, 12);
    float *r = rand_pair(&r_d, N * C, 1.0f, 13);
    float *da = zeros(N * C), *db = zeros(N * C);
    ss_residual_backward(da, db, r, N * C);
    fd_ctx k = {.a = a_d, .b = b_d, .r = r_d, .N = N * C};
    expect_grad("residual da", da, a_d, N * C, residual_L, &k);
    expect_grad("residual db", db, b_d, N * C, residual_L, &k);
    free(a); free(b); free(r); free(da); free(db); free(a_d); free(b_d); free(r_d);
}

static void test_dropout(void **state) {
    (void)state;
    const float p = 0.3f;
    const uint64_t seed = 77;
    double *x_d, *r_d, mask[N * C];
    float *x = rand_pair(&x_d, N * C, 1.0f, 14), *r = rand_pair(&r_d, N * C, 1.0f, 15);
    float ones[N * C], m[N * C], *dx = zeros(N * C);
    for (int i = 0; i < N * C; i++) ones[i] = 1.0f;
    ss_dropout_forward(m, ones, N * C, p, seed);  // the forward's mask, as keep/(1-p)
    int dropped = 0;
    for (int i = 0; i < N * C; i++) { mask[i] = m[i]; dropped += m[i] == 0.0f; }
    assert_true(dropped > 0 && dropped < N * C);
    ss_dropout_backward(dx, r, N * C, p, seed);
    fd_ctx k = {.a = x_d, .r = r_d, .mask = mask, .N = N * C};
    expect_grad("dropout dinp", dx, x_d, N * C, dropout_L, &k);
    free(x); free(r); free(dx); free(x_d); free(r_d);
}

/* Repeated tokens: their rows of dwte collect several contributions. */
static void test_embedding(void **state) {
    (void)state;
    enum { B = 2, T = 3, V = 4 };
    const int32_t tokens[B * T] = {1, 3, 1, 1, 0, 3};  // token 2 unused: zero gradient
    double *wte_d, *wpe_d, *r_d;
    float *wte = rand_pair(&wte_d, V * C, 1.0f, 16), *wpe = rand_pair(&wpe_d, T * C, 1.0f, 17);
    float *r = rand_pair(&r_d, B * T * C, 1.0f, 18);
    float *dwte = zeros(V * C), *dwpe = zeros(T * C);
    ss_embedding_backward(dwte, dwpe, r, tokens, B, T, C);
    fd_ctx k = {.a = wte_d, .b = wpe_d, .r = r_d, .tokens = tokens, .N = B * T, .C = C, .T = T};
    expect_grad("embedding dwte", dwte, wte_d, V * C, embedding_L, &k);
    expect_grad("embedding dwpe", dwpe, wpe_d, T * C, embedding_L, &k);
    free(wte); free(wpe); free(r); free(dwte); free(dwpe); free(wte_d); free(wpe_d); free(r_d);
}

/* Rows 1 and 3 are ignored (target -1): zero gradient, no loss. */
static void test_crossentropy(void **state) {
    (void)state;
    const int32_t targets[N] = {2, -1, 6, -1, 0};
    const float scale = 0.37f;
    double *x_d;
    float *g = rand_pair(&x_d, N * C, 3.0f, 19), loss[N];
    ss_crossentropy_fused(g, loss, targets, N, C, scale, NULL);  // g: logits -> gradient
    fd_ctx k = {.a = x_d, .tokens = targets, .N = N, .C = C, .scale = scale};
    expect_grad("crossentropy dlogits", g, x_d, N * C, xent_L, &k);
    for (int i = 0; i < C; i++) assert_true(g[1 * C + i] == 0.0f && g[3 * C + i] == 0.0f);
    free(g); free(x_d);
}

/* ---- the check can fail ---------------------------------------------------------------------- */

/* A correct gradient passes; the same gradient with one element off by 10% or
 * by 1% is reported. */
static void test_sanity_perturbed_gradient(void **state) {
    (void)state;
    double *inp_d, *w_d, *b_d, *r_d, num[OC * C];
    float *inp = rand_pair(&inp_d, N * C, 1.0f, 1), *w = rand_pair(&w_d, OC * C, 1.0f, 2);
    float *b = rand_pair(&b_d, OC, 1.0f, 3), *r = rand_pair(&r_d, N * OC, 1.0f, 4);
    float *dw = zeros(OC * C);
    ss_linear_backward(NULL, dw, NULL, r, inp, w, N, C, OC);
    fd_ctx k = {.a = inp_d, .b = w_d, .c = b_d, .r = r_d, .N = N, .C = C, .OC = OC};
    numeric_grad(num, w_d, OC * C, linear_L, &k);
    assert_int_equal(grad_mismatches(dw, num, OC * C, NULL), 0);
    size_t first = 99;
    dw[4] *= 1.1f;
    assert_int_equal(grad_mismatches(dw, num, OC * C, &first), 1);
    assert_int_equal(first, 4);
    dw[4] = dw[4] / 1.1f * 1.01f;
    assert_int_equal(grad_mismatches(dw, num, OC * C, NULL), 1);
    // a transposed product: dw laid out as [C, OC] instead of [OC, C]
    float *dwt = malloc(OC * C * sizeof *dwt);
    dw[4] = dw[4] / 1.01f;
    for (int o = 0; o < OC; o++)
        for (int i = 0; i < C; i++) dwt[i * OC + o] = dw[o * C + i];
    assert_true(grad_mismatches(dwt, num, OC * C, NULL) > 0);
    free(inp); free(w); free(b); free(r); free(dw); free(dwt);
    free(inp_d); free(w_d); free(b_d); free(r_d);
}

/* Classic formula bugs are caught: gelu' without the factor 3 in 3*0.044715 x^2,
 * and layernorm's dinp without the term -norm*mean(dnorm*norm). */
static void test_sanity_wrong_formulas(void **state) {
    (void)state;
    double *x_d, *r_d, num[N * C];
    float *x = rand_pair(&x_d, N * C, 3.0f, 20), *r = rand_pair(&r_d, N * C, 1.0f, 21);
    float wrong[N * C];
    const double kk = sqrt(2.0 / M_PI);
    for (int i = 0; i < N * C; i++) {
        double t = tanh(kk * (x[i] + 0.044715 * x[i] * x[i] * x[i]));
        wrong[i] = (float)(r[i] * (0.5 * (1 + t) + 0.5 * x[i] * (1 - t * t) * kk *
                                                       (1 + 0.044715 * x[i] * x[i])));
    }
    fd_ctx k = {.a = x_d, .r = r_d, .N = N * C};
    numeric_grad(num, x_d, N * C, gelu_L, &k);
    assert_true(grad_mismatches(wrong, num, N * C, NULL) > 0);

    double *w_d, *b_d;
    float *w = rand_pair(&w_d, C, 1.5f, 22), *b = rand_pair(&b_d, C, 1.0f, 23);
    fd_ctx kl = {.a = x_d, .b = w_d, .c = b_d, .r = r_d, .N = N, .C = C};
    numeric_grad(num, x_d, N * C, layernorm_L, &kl);
    for (int n = 0; n < N; n++) {
        const float *xr = x + n * C;
        double m = 0, v = 0, dmean = 0;
        for (int i = 0; i < C; i++) m += xr[i] / (double)C;
        for (int i = 0; i < C; i++) v += (xr[i] - m) * (xr[i] - m) / C;
        double s = 1 / sqrt(v + 1e-5);
        for (int i = 0; i < C; i++) dmean += r[n * C + i] * w[i] / (double)C;
        for (int i = 0; i < C; i++) wrong[n * C + i] = (float)((r[n * C + i] * w[i] - dmean) * s);
    }
    assert_true(grad_mismatches(wrong, num, N * C, NULL) > 0);
    free(x); free(r); free(w); free(b); free(x_d); free(r_d); free(w_d); free(b_d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu_tanh),
        cmocka_unit_test(test_bias_gelu_grad),
        cmocka_unit_test(test_residual),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_sanity_perturbed_gradient),
        cmocka_unit_test(test_sanity_wrong_formulas),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
