/* tanh activation (pooler heads of classification models). */
#include "selfsup/nn.h"

#include <math.h>

#include "nn_internal.h"

// out = tanh(x)
void ss_tanh_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for schedule(static) if (n >= SS_NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = tanhf(inp[i]);
}

// dinp += (1 - out^2) * dout   (the derivative needs only the output)
void ss_tanh_backward(float *restrict dinp, const float *restrict out,
                      const float *restrict dout, size_t n) {
    #pragma omp parallel for simd schedule(static) if (parallel: n >= SS_NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] += (1.0f - out[i] * out[i]) * dout[i];
}
