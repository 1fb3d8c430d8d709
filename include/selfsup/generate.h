/* Text generation with a decoder: samplers, and an incremental decoder with a
 * KV cache (the prompt in one batched forward pass, then one token at a time
 * at O(T) cost per token instead of recomputing O(T^2) attention). */
#ifndef SELFSUP_GENERATE_H
#define SELFSUP_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/model.h"
#include "selfsup/rng.h"

/* ---- Samplers (src/infer/sampler.c): plain functions on one logits row ---- */
typedef struct {
    float temperature;        /* 0 = greedy (argmax, deterministic); default 1 */
    int top_k;                /* keep the k most likely tokens; 0 = off */
    float top_p;              /* keep the smallest set with probability mass >= p; 1 = off */
    float repetition_penalty; /* CTRL: logits of tokens already in the history are divided by
                                 the penalty when positive, multiplied when negative; 1 = off */
} ss_sampler_config;

/* CTRL's repetition penalty over the distinct tokens of history[0..n). */
void ss_repetition_penalty(float *logits, int V, const int32_t *history, size_t n, float penalty);
/* logits /= t (t > 0). */
void ss_temperature(float *logits, int V, float t);
/* Keep exactly the k largest logits (ties broken by lower id), others -inf.
 * Returns the number kept: k, or V when k <= 0 or k >= V (nothing removed). */
int ss_top_k(float *logits, int V, int k);
/* Keep the smallest set of most likely tokens whose softmax mass reaches p
 * (at least one); others -inf. p >= 1 (or NaN) is off. Returns the count
 * kept (V when off, or when no token has probability left). */
int ss_top_p(float *logits, int V, float p);
/* Draw from softmax(logits) with one uniform from rng. */
int32_t ss_sample_softmax(const float *logits, int V, ss_rng *rng);
/* The whole pipeline on a copy in scratch[V] (not NULL; may be logits
 * itself): penalty, then greedy argmax if temperature <= 0 (ties to the lower
 * id; no random number used), else temperature, top-k, top-p, draw. If no
 * token keeps any probability, the argmax of the original logits.
 * The top-k/top-p helpers use a per-thread buffer of about 8 V bytes that
 * is allocated once and kept. */
int32_t ss_sample_next(const float *logits, int V, const ss_sampler_config *c, const int32_t *history, size_t n,
                       ss_rng *rng, float *scratch);

/* ---- Incremental decoding with a KV cache (src/infer/kv_cache.c) --------- */
typedef struct ss_decoder_state ss_decoder_state;

/* A decoding state for one sequence of a decoder model (up to max_seq). */
ss_status ss_decoder_state_create(ss_decoder_state **out, ss_model *m, ss_error *err);
void ss_decoder_state_free(ss_decoder_state *s);
/* Forget the sequence (the cache is reused). */
void ss_decoder_state_reset(ss_decoder_state *s);
int ss_decoder_state_length(const ss_decoder_state *s);
/* Process n tokens appended to the sequence in one batched pass of the
 * model's blocks (sgemm over the n rows) that appends them to the cache;
 * logits[V] receives the last position's logits. On an empty state they
 * equal ss_decoder_full_logits' bit for bit. (The pass uses the model's
 * activation buffers: it overwrites those of any earlier forward.) */
ss_status ss_decoder_prefill(ss_decoder_state *s, const int32_t *tokens, int n, float *logits, ss_error *err);
/* Append one token: the same blocks on one row (matrix-vector products),
 * attention over the cached keys/values. */
ss_status ss_decoder_step(ss_decoder_state *s, int32_t token, float *logits, ss_error *err);

/* The reference without a cache: a full forward pass over tokens[0..n),
 * logits[V] of the last position (O(n^2) attention per call). */
ss_status ss_decoder_full_logits(ss_model *m, const int32_t *tokens, int n, float *logits, ss_error *err);

#endif
