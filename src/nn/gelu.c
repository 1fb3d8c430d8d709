/* GELU, tanh approximation (PyTorch approximate='tanh'), computed through the
 * identity 0.5 (1 + tanh(u)) = sigmoid(2u) so that it needs a single exp,
 * which vectorizes (ss_vexpf). */
#include "selfsup/nn.h"

#include "nn_internal.h"

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_A 0.044715f

// gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
void ss_gelu_forward(float *out, const float *inp, size_t n) {
    #pragma omp parallel for simd schedule(static) if (parallel: n >= SS_NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = GELU_K * (x + GELU_A * x * x * x);
        out[i] = x / (1.0f + ss_vexpf(-2.0f * u));
    }
}

// x[n,f] += b[f]; out[n,f] = gelu(x[n,f]): the bias of the preceding linear
// layer folded into the activation pass (one pass over x instead of two).
// For training (store_grad) x[n,f] is overwritten with gelu'(x[n,f] + b[f])
// instead, the only thing the backward needs, so the backward is one
// multiply instead of recomputing exp. The derivative reuses this pass's
// e = exp(-2u): gelu'(v) = s + 2 v u'(v) s (e s), s = 1/(1+e) (gelu_grad
// below). The output is the same bits either way. The loop vectorizes with
// the flag as a select, so inference pays the derivative's few flops too,
// which the GEMMs around it dwarf; one kernel keeps the two outputs in step.
// b NULL: no bias (a model without biases); the flag is a constant of each
// instantiation below, so the loop carries no branch.
static inline void bias_gelu(float *out, float *x, const float *b, int N, int F, const int store_grad,
                             const int has_bias) {
    #pragma omp parallel for schedule(static) if ((size_t)N * F >= SS_NN_PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *xr = x + (size_t)n * F, *o = out + (size_t)n * F;
        #pragma omp simd
        for (int f = 0; f < F; f++) {
            float v = has_bias ? xr[f] + b[f] : xr[f];
            float u = GELU_K * (v + GELU_A * v * v * v);
            float e = ss_vexpf(-2.0f * u);
            o[f] = v / (1.0f + e);
            if (store_grad) {
                float s = 1.0f / (1.0f + e);
                float du = GELU_K * (1.0f + 3.0f * GELU_A * v * v);
                xr[f] = s + 2.0f * v * du * s * (e * s);
            } else {
                xr[f] = v;
            }
        }
    }
}

void ss_bias_gelu_forward(float *out, float *x, const float *b, int N, int F) {
    if (b) bias_gelu(out, x, b, N, F, 0, 1);
    else bias_gelu(out, x, NULL, N, F, 0, 0);
}
void ss_bias_gelu_forward_grad(float *out, float *x, const float *b, int N, int F) {
    if (b) bias_gelu(out, x, b, N, F, 1, 1);
    else bias_gelu(out, x, NULL, N, F, 1, 0);
}

// gelu'(x) = s + 2 x s (1-s) du/dx,  s = sigmoid(2u), 1-s = e s with e = exp(-2u),
// du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2);  dinp += gelu'(x) * dout
/* gelu'(x) = s + 2 x u'(x) s (1 - s), with s = 1/(1+exp(-2u)) = (1+tanh u)/2,
 * written as s + 2 x u' s (e s) to reuse e = exp(-2u). */
static inline float gelu_grad(float x) {
    float x2 = x * x;
    float u = GELU_K * (x + GELU_A * x2 * x);
    float e = ss_vexpf(-2.0f * u);
    float s = 1.0f / (1.0f + e);
    float du = GELU_K * (1.0f + 3.0f * GELU_A * x2);
    return s + 2.0f * x * du * s * (e * s);
}

void ss_gelu_backward(float *restrict dinp, const float *restrict inp,
                      const float *restrict dout, size_t n) {
    #pragma omp parallel for simd schedule(static) if (parallel: n >= SS_NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] += gelu_grad(inp[i]) * dout[i];
}

void ss_gelu_backward_set(float *restrict dinp, const float *restrict inp,
                          const float *restrict dout, size_t n) {
    #pragma omp parallel for simd schedule(static) if (parallel: n >= SS_NN_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] = gelu_grad(inp[i]) * dout[i];
}

// dinp[n,f] = dout[n,f] * grad[n,f];  db[f] += sum_n dinp[n,f]
// The bias gradient rides along the multiply pass instead of re-reading dinp.
// Each thread owns a contiguous column range and walks the rows in order, so
// every column sum is accumulated in row order (as ss_linear_backward's bias
// sum does): the result is the same bits on any thread count.
void ss_gelu_backward_grad_bias(float *restrict dinp, float *restrict db, const float *restrict grad,
                                const float *restrict dout, int N, int F) {
    if (!db) { /* no bias: the multiply alone */
        #pragma omp parallel for simd schedule(static) if (parallel: (size_t)N * F >= SS_NN_PAR_MIN)
        for (size_t i = 0; i < (size_t)N * F; i++) dinp[i] = dout[i] * grad[i];
        return;
    }
    int width = ss_colsum_width(N, F), nblk = (F + width - 1) / width;
    #pragma omp parallel for schedule(static) if ((size_t)N * F >= SS_NN_PAR_MIN)
    for (int blk = 0; blk < nblk; blk++) {
        int f0 = blk * width, len = F - f0 < width ? F - f0 : width;
        float acc[SS_COLSUM_MAX] = {0};
        for (int n = 0; n < N; n++) {
            size_t r = (size_t)n * F + f0;
            #pragma omp simd
            for (int i = 0; i < len; i++) {
                float d = dout[r + i] * grad[r + i];
                dinp[r + i] = d;
                acc[i] += d;
            }
        }
        for (int i = 0; i < len; i++) db[f0 + i] += acc[i];
    }
}
