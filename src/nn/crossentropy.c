/* Softmax cross-entropy fused with its gradient, in place over the logits. */
#include "selfsup/nn.h"

#include <math.h>
#include <string.h>

#include "nn_internal.h"

// Row with target y: loss = log(sum_j exp(x_j - max)) + max - x_y and
// x_j <- (exp(x_j - max) / sum - [j == y]) * scale.  Returns 1 if argmax == y.
static int xent_row(float *restrict x, float *loss, int y, int V, float scale) {
    float mx = x[0];
    #pragma omp simd reduction(max:mx)
    for (int j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    int argmax = 0;  // first index reaching the max: ties go to the lowest id
    while (argmax < V - 1 && x[argmax] != mx) argmax++;  // bounded: NaN never matches
    float xy = x[y];
    float sum = 0.0f;
    #pragma omp simd reduction(+:sum)
    for (int j = 0; j < V; j++) {
        float e = ss_vexpf(x[j] - mx);
        x[j] = e;
        sum += e;
    }
    *loss = (mx - xy) + logf(sum);  // difference first: exact for huge logits
    float k = scale / sum;
    #pragma omp simd
    for (int j = 0; j < V; j++) x[j] *= k;
    x[y] -= scale;
    return argmax == y;
}

// loss[n] = logsumexp(logits[n,:]) - logits[n,y_n]; logits[n,:] <- dloss/dlogits * scale.
// Rows are independent (static schedule); the total is summed afterwards in row
// order in double, so the result does not depend on the thread count.
double ss_crossentropy_fused(float *logits, float *loss, const int32_t *targets,
                             int N, int V, float scale, int64_t *correct) {
    int64_t hits = 0;
    #pragma omp parallel for schedule(static) reduction(+:hits) \
        if ((size_t)N * V >= SS_NN_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *row = logits + (size_t)n * V;
        if (targets[n] < 0) {  // ignored row: no loss, no gradient
            memset(row, 0, (size_t)V * sizeof *row);
            loss[n] = 0.0f;
            continue;
        }
        hits += xent_row(row, &loss[n], targets[n], V, scale);
    }
    double total = 0.0;
    for (int n = 0; n < N; n++) total += loss[n];
    if (correct) *correct = hits;
    return total;
}
