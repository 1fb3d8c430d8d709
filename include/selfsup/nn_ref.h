/* Naive reference kernels for tests and benchmarks: the textbook algorithm
 * next to each clever fast kernel of nn.h, same layouts and semantics.
 * They allocate (so they return ss_status), are slow, and are not for the
 * training path. */
#ifndef SELFSUP_NN_REF_H
#define SELFSUP_NN_REF_H

#include <stdint.h>

#include "selfsup/error.h"

/* Multi-head self-attention as in ss_attention_forward, materializing the
 * full [T,T] probability matrix of each (b, h) (one per thread), with double
 * accumulators. out[B,T,C] and lse[B,NH,T] are overwritten; rows with no
 * visible key get zeros and lse = -inf. */
ss_status ss_attention_forward_ref(float *out, float *lse, const float *qkv,
                                   const uint8_t *key_valid, int causal,
                                   int B, int T, int C, int NH, ss_error *err);

/* Gradient of ss_attention_forward with the textbook softmax Jacobian
 * dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik) (no saved out/lse needed);
 * ACCUMULATES into dqkv[B,T,3C]. */
ss_status ss_attention_backward_ref(float *dqkv, const float *dout,
                                    const float *qkv, const uint8_t *key_valid,
                                    int causal, int B, int T, int C, int NH,
                                    ss_error *err);

#endif
