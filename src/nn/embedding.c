/* Token + position embeddings. wpe / dwpe may be NULL (no learned positions). */
#include "selfsup/nn.h"

#include <string.h>

#include "nn_internal.h"

/* Channel block owned by one thread in the backward. */
#define EMB_BLOCK 64

// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]
void ss_embedding_forward(float *out, const int32_t *tokens, const float *wte,
                          const float *wpe, int B, int T, int C) {
    #pragma omp parallel for schedule(static) if ((size_t)B * T * C >= SS_NN_PAR_MIN)
    for (int bt = 0; bt < B * T; bt++) {
        float *restrict o = out + (size_t)bt * C;
        const float *restrict e = wte + (size_t)tokens[bt] * C;
        if (!wpe) { memcpy(o, e, (size_t)C * sizeof *o); continue; }
        const float *restrict p = wpe + (size_t)(bt % T) * C;
        #pragma omp simd
        for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
    }
}

// dwte[tokens[b,t],:] += dout[b,t,:];  dwpe[t,:] += dout[b,t,:]
// Rows sharing a token would race, so threads split the channels instead:
// each owns a block of columns and adds rows in (b,t) order, which also makes
// the result independent of the thread count.
void ss_embedding_backward(float *dwte, float *dwpe, const float *dout,
                           const int32_t *tokens, int B, int T, int C) {
    int nblocks = (C + EMB_BLOCK - 1) / EMB_BLOCK;
    #pragma omp parallel for schedule(static) if ((size_t)B * T * C >= SS_NN_PAR_MIN)
    for (int blk = 0; blk < nblocks; blk++) {
        int c0 = blk * EMB_BLOCK;
        int len = C - c0 < EMB_BLOCK ? C - c0 : EMB_BLOCK;
        for (int bt = 0; bt < B * T; bt++) {
            const float *restrict d = dout + (size_t)bt * C + c0;
            float *restrict ge = dwte + (size_t)tokens[bt] * C + c0;
            #pragma omp simd
            for (int i = 0; i < len; i++) ge[i] += d[i];
            if (dwpe) {
                float *restrict gp = dwpe + (size_t)(bt % T) * C + c0;
                #pragma omp simd
                for (int i = 0; i < len; i++) gp[i] += d[i];
            }
        }
    }
}
