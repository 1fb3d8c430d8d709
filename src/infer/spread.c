/* How spread a set of vectors is (see selfsup/spread.h). */
#include "selfsup/spread.h"

#include <math.h>

#include "selfsup/gemm.h"

/* acc: [0] n, [1] the non-zero ones, [2 .. 2+d) sum v, [2+d .. 2+2d) sum u, [2+2d ..) sum v v^T (d x d) */
size_t ss_spread_width(int d) { return 2 + 2 * (size_t)d + (size_t)d * (size_t)d; }

void ss_spread_add(double *acc, const float *v, int n, int d, float *gram) {
    if (n <= 0) return;
    double *sum = acc + 2, *usum = sum + d, *g = usum + d;
    for (int i = 0; i < n; i++) {
        const float *x = v + (size_t)i * d;
        double norm2 = 0;
        for (int j = 0; j < d; j++) norm2 += (double)x[j] * x[j];
        double inv = norm2 > 0 ? 1.0 / sqrt(norm2) : 0.0;
        acc[1] += norm2 > 0;
        for (int j = 0; j < d; j++) {
            sum[j] += x[j];
            usum[j] += x[j] * inv;
        }
    }
    acc[0] += n;
    /* gram[d, d] = v^T v: the products of this call in one fp32 GEMM (OpenBLAS is always
     * available: it cannot fail), then summed in double */
    ss_error ignore;
    (void)ss_gemm_on(SS_GEMM_OPENBLAS, 1, 0, d, d, n, 1.0f, v, d, v, d, 0.0f, gram, d, &ignore);
    for (size_t k = 0; k < (size_t)d * d; k++) g[k] += gram[k];
}

ss_spread_stats ss_spread_get(const double *acc, int d) {
    ss_spread_stats s = {acc[0], NAN, NAN};
    double n = acc[0];
    if (n < 2) return s;
    const double *sum = acc + 2, *usum = sum + d, *g = usum + d;
    double u2 = 0;
    for (int j = 0; j < d; j++) u2 += usum[j] * usum[j];
    s.mean_cos = (u2 - acc[1]) / (n * (n - 1)); /* sum over i != j of u_i . u_j, |u_i|^2 = 1 for the non-zero */
    /* C = G / n - mean mean^T; tr(C) and tr(C^2) = sum of its squared entries (C is symmetric) */
    double tr = 0, tr2 = 0;
    for (int a = 0; a < d; a++) {
        for (int b = 0; b < d; b++) {
            double c = g[(size_t)a * d + b] / n - (sum[a] / n) * (sum[b] / n);
            tr2 += c * c;
            if (a == b) tr += c;
        }
    }
    s.participation = tr2 > 0 ? tr * tr / tr2 : 0.0;
    return s;
}
