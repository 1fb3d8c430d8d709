/* Neural-network kernels as forward/backward pairs (fp32).
 *
 * Conventions (as in llm.c): activations are row-major [rows, channels];
 * forward functions overwrite their outputs; backward functions ACCUMULATE
 * (+=) into every gradient they produce (dinp, dweight, dbias), so callers
 * zero gradients once per step and residual branches add up naturally.
 * Every matrix product goes through the GEMM layer (selfsup/gemm.h: OpenBLAS,
 * oneDNN f32 or oneDNN bf16 products with fp32 accumulation, chosen at run
 * time; sgemv for a single row); everything else (LayerNorm, softmax, GELU,
 * losses, reductions) is fp32, and element-wise kernels are OpenMP-parallel
 * over rows. Shapes are in the signatures. */
#ifndef SELFSUP_NN_H
#define SELFSUP_NN_H

#include <stddef.h>
#include <stdint.h>

/* ---- linear (src/nn/linear.c) ---------------------------------------------
 * out[N,OC] = inp[N,C] @ w[OC,C]^T + b[OC]              (b may be NULL)
 * dinp += dout @ w;  dw += dout^T @ inp;  db += sum_rows(dout)
 * (dinp, dw or db may be NULL to skip that gradient) */
void ss_linear_forward(float *out, const float *inp, const float *w,
                       const float *b, int N, int C, int OC);
void ss_linear_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, int N, int C, int OC);
/* The same, but dinp is overwritten (= dout @ w): for a fresh gradient
 * buffer this saves zeroing it and reading it back. dw, db still accumulate. */
void ss_linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC);

/* ---- layernorm (src/nn/layernorm.c), eps = 1e-5 -------------------------------
 * out = (x - mean) * rstd * w + b per row; mean[N], rstd[N] saved for backward.
 * b / db may be NULL: no bias (its gradient not computed). */
void ss_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C);
void ss_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int N, int C);

/* ---- GELU, tanh approximation (src/nn/gelu.c) ---------------------------------
 * gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (PyTorch approximate='tanh') */
void ss_gelu_forward(float *out, const float *inp, size_t n);
void ss_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* x[n,:] += b; out = gelu(x): a linear layer's bias folded into its
 * activation (the linear then runs without bias), saving a pass. b (and
 * below db) may be NULL: no bias. */
void ss_bias_gelu_forward(float *out, float *x, const float *b, int N, int F);
/* dinp = dout * gelu'(inp), overwriting dinp. */
void ss_gelu_backward_set(float *dinp, const float *inp, const float *dout, size_t n);
/* Training pair, the derivative computed once in the forward (where exp is
 * already at hand) instead of again in the backward:
 * forward: x[n,:] += b; out = gelu(x); then x is OVERWRITTEN with gelu'(x)
 *          (out is bit-identical to ss_bias_gelu_forward's);
 * backward: dinp = dout * grad (overwriting dinp), db += sum_rows(dinp),
 *          grad being the forward's x. db's column sums run in row order, as
 *          in ss_linear_backward, so its bits do not depend on thread count. */
void ss_bias_gelu_forward_grad(float *out, float *x, const float *b, int N, int F);
void ss_gelu_backward_grad_bias(float *dinp, float *db, const float *grad, const float *dout, int N, int F);

/* ---- tanh (pooler heads) --------------------------------------------------------- */
void ss_tanh_forward(float *out, const float *inp, size_t n);
void ss_tanh_backward(float *dinp, const float *out, const float *dout, size_t n);

/* ---- residual add (src/nn/residual.c): out = a + b; da += dout, db += dout ---- */
void ss_residual_forward(float *out, const float *a, const float *b, size_t n);
void ss_residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- embeddings (src/nn/embedding.c) ----------------------------------------------
 * out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]
 * dwte[tokens[b,t],:] += dout[b,t,:];  dwpe[t,:] += dout[b,t,:]
 * (the backward is race-free: it parallelizes over channels, not rows) */
void ss_embedding_forward(float *out, const int32_t *tokens, const float *wte,
                          const float *wpe, int B, int T, int C);
void ss_embedding_backward(float *dwte, float *dwpe, const float *dout,
                           const int32_t *tokens, int B, int T, int C);

/* ---- dropout (src/nn/dropout.c) ---------------------------------------------------
 * Inverted dropout with keep mask from a counter-based hash of (seed, index),
 * so it is deterministic and needs no stored mask:
 * out = inp * keep(i) / (1-p);  dinp += dout * keep(i) / (1-p).  p == 0: copy. */
void ss_dropout_forward(float *out, const float *inp, size_t n, float p, uint64_t seed);
void ss_dropout_backward(float *dinp, const float *dout, size_t n, float p, uint64_t seed);
/* The same on elements i0 .. i0+n-1 of a larger array (keep(i0 + i)): a
 * data-parallel shard of a batch draws the masks of its rows in the batch. */
void ss_dropout_forward_at(float *out, const float *inp, size_t n, float p, uint64_t seed, size_t i0);
void ss_dropout_backward_at(float *dinp, const float *dout, size_t n, float p, uint64_t seed, size_t i0);

/* ---- softmax cross-entropy (src/nn/crossentropy.c) -------------------------------
 * For each row n with targets[n] >= 0:
 *   loss[n] = logsumexp(logits[n,:]) - logits[n, targets[n]]
 * and, in place, logits[n,:] becomes dloss/dlogits * scale
 *   = (softmax(logits[n,:]) - onehot(targets[n])) * scale.
 * Rows with targets[n] < 0 are ignored: loss 0 and zero gradient.
 * Returns the sum of loss over valid rows; *correct (may be NULL) receives the
 * number of valid rows whose argmax equals the target. */
double ss_crossentropy_fused(float *logits, float *loss, const int32_t *targets,
                             int N, int V, float scale, int64_t *correct);

/* ---- log-sum-exp over groups (src/nn/logsumexp.c) --------------------------------
 * W values x[j], each in group group[j] (0 <= group[j] < K):
 *   lse[k] = log sum_{j: group[j] = k} exp(x[j])   (max-shifted, summed in double;
 *            -inf for a group with no value or only -inf values)
 * and, if share is not NULL, share[j] = exp(x[j] - lse[group[j]]), each value's
 * softmax share within its group (0 in a -inf group); share may be x itself.
 * One label's score from its verbalizer words, in training and in zero-shot
 * classification alike. */
void ss_logsumexp_groups(const float *x, const int32_t *group, int W, int K, float *lse, float *share);

/* ---- binary cross-entropy on logits (src/nn/bce.c) -------------------------------
 * loss[n] = -y log sigmoid(z) - (1-y) log(1 - sigmoid(z)), computed stably;
 * z is overwritten with dloss/dz * scale = (sigmoid(z) - y) * scale.
 * Returns the summed loss. */
double ss_bce_logits_fused(float *z, const uint8_t *labels, int N, float scale);

/* ---- multi-head self-attention (src/nn/attention.c) --------------------------------
 * qkv[B,T,3C] holds q | k | v; head h uses channels h*hs .. h*hs+hs-1 of each,
 * hs = C/NH. out[B,T,C] = concat_h softmax(q k^T / sqrt(hs) + mask) v.
 * mask: causal (key j > query i masked) and/or key_valid[B,T] (0 = padding
 * key, masked; NULL = all valid). Computed in tiles with an online softmax,
 * so memory is O(T) per query row: no [T,T] matrix exists. lse[B,NH,T]
 * (log-sum-exp of each query row's scaled, masked scores) is saved for the
 * backward, which recomputes the probabilities tile by tile.
 * A query row with no visible key gets a zero output. OpenMP over (b, h). */
void ss_attention_forward(float *out, float *lse, const float *qkv,
                          const uint8_t *key_valid, int causal,
                          int B, int T, int C, int NH);
void ss_attention_backward(float *dqkv, const float *dout, const float *out,
                           const float *lse, const float *qkv,
                           const uint8_t *key_valid, int causal,
                           int B, int T, int C, int NH);
/* Inference only: causal attention of the query rows t0..T-1 of one
 * sequence whose q|k|v rows 0..T-1 are in qkv[T,3C] (rows before t0 are a
 * KV cache: a decoder appending T - t0 positions). out[T-t0, C], as the
 * rows t0.. of ss_attention_forward's out (up to rounding). No lse, no
 * backward. One row (a decoding step) runs on the calling thread. */
void ss_attention_forward_rows(float *out, const float *qkv, int t0, int T, int C, int NH);

#endif
