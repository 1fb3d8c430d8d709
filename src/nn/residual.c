/* Residual connection: element-wise sum of two streams. */
#include "selfsup/nn.h"

#include "nn_internal.h"

// out = a + b
void ss_residual_forward(float *out, const float *a,
                         const float *b, size_t n) {
    if (n < SS_NN_PAR_MIN) { // e.g. a decoding step's row: entering even a one-thread
        #pragma omp simd     // OpenMP region costs about half a microsecond
        for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
        return;
    }
    #pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// da += dout;  db += dout
void ss_residual_backward(float *restrict da, float *restrict db,
                          const float *restrict dout, size_t n) {
    #pragma omp parallel for simd schedule(static) if (parallel: n >= SS_NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        da[i] += dout[i];
        db[i] += dout[i];
    }
}
