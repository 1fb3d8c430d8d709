/* Fully connected layer through the GEMM layer (selfsup/gemm.h). Weights are
 * [OC, C] (PyTorch nn.Linear layout), so the forward multiplies by w
 * transposed; w is marked as a weight, so the bf16 backend reuses its bf16
 * copy until the optimizer changes it. */
#include "selfsup/nn.h"

#include <string.h>

#include "selfsup/gemm.h"

#include "nn_internal.h"

// out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC]
void ss_linear_forward(float *out, const float *inp, const float *w,
                       const float *b, int N, int C, int OC) {
    float beta = 0.0f;
    if (b) {
        // seed every output row with the bias, then let sgemm add the product
        #pragma omp parallel for schedule(static) if ((size_t)N * OC >= SS_NN_PAR_MIN)
        for (int n = 0; n < N; n++)
            memcpy(out + (size_t)n * OC, b, (size_t)OC * sizeof *out);
        beta = 1.0f;
    }
    ss_gemm_ex(0, 1, N, OC, C, 1.0f, inp, C, w, C, beta, out, OC, SS_GEMM_B_WEIGHT);
}

// db[o] += sum_n dout[n,o]: parallel over column blocks, each walking the
// rows in order, so every column sum has the same order on any thread count
static void bias_grad(float *restrict db, const float *restrict dout, int N, int OC) {
    int width = ss_colsum_width(N, OC), nblocks = (OC + width - 1) / width;
    #pragma omp parallel for schedule(static) if ((size_t)N * OC >= SS_NN_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        int o0 = blk * width;
        int len = OC - o0 < width ? OC - o0 : width;
        float acc[SS_COLSUM_MAX] = {0};
        for (int n = 0; n < N; n++) {
            const float *row = dout + (size_t)n * OC + o0;
            #pragma omp simd
            for (int i = 0; i < len; i++) acc[i] += row[i];
        }
        for (int i = 0; i < len; i++) db[o0 + i] += acc[i];
    }
}

static void linear_backward(float *dinp, float beta, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    if (dinp)  // [N,OC] @ [OC,C]
        ss_gemm_ex(0, 0, N, C, OC, 1.0f, dout, OC, w, C, beta, dinp, C, SS_GEMM_B_WEIGHT);
    if (dw)    // [OC,N] @ [N,C]
        ss_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    if (db) bias_grad(db, dout, N, OC);
}

// dinp += dout @ w;  dw += dout^T @ inp;  db += sum_rows(dout)
void ss_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC) {
    linear_backward(dinp, 1.0f, dw, db, dout, inp, w, N, C, OC);
}

// dinp = dout @ w (overwritten);  dw += dout^T @ inp;  db += sum_rows(dout)
void ss_linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    linear_backward(dinp, 0.0f, dw, db, dout, inp, w, N, C, OC);
}
