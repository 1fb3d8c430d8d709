/* The sgemm peak of this machine: the denominator of model FLOPs utilization.
 * Best of several square 1024^3 products with the current thread count. */
#include <omp.h>
#include <stdlib.h>

#include <cblas.h>

#include "selfsup/train.h"

double ss_sgemm_peak_gflops(void) {
    const int n = 1024, reps = 6;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        free(a); free(b); free(c);
        return 0;
    }
    for (int i = 0; i < n * n; i++) {
        a[i] = (float)((i * 7) % 13) * 0.01f;
        b[i] = (float)((i * 5) % 11) * 0.01f;
    }
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = omp_get_wtime();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = omp_get_wtime() - t0;
        double gf = 2.0 * n * n * (double)n / dt / 1e9;
        if (r > 0 && gf > best) best = gf; /* the first run warms up */
    }
    free(a); free(b); free(c);
    return best;
}
