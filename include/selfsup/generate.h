/* Text generation with a decoder: samplers, an incremental decoder with a
 * KV cache (the prompt in one batched forward pass, then one token at a time
 * at O(T) cost per token instead of recomputing O(T^2) attention), and the
 * generation loop on text (stop strings, sliding window, UTF-8 hold-back). */
#ifndef SELFSUP_GENERATE_H
#define SELFSUP_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "selfsup/model.h"
#include "selfsup/rng.h"
#include "selfsup/tokenizer.h"

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

/* ---- Generating text (src/infer/generate.c) --------------------------------
 * A generator is a decoder with its tokenizer and KV cache; ss_generate
 * turns one prompt into a continuation, handing the text to a callback as it
 * becomes safe to show: bytes are held back until they form complete UTF-8
 * characters and while they may be the start of the stop string. */
typedef struct ss_generator ss_generator;

/* A clm run directory: its model (a decoder with an LM head) and
 * DIR/tokenizer.json. An encoder is SS_ERR_ARG pointing to fill-mask. */
ss_status ss_generator_load(ss_generator **out, const char *dir, ss_error *err);
/* The same on a model and tokenizer the caller keeps (and frees after). */
ss_status ss_generator_create(ss_generator **out, ss_model *m, ss_tokenizer *tok, ss_error *err);
void ss_generator_free(ss_generator *g);
const ss_model *ss_generator_model(const ss_generator *g);

typedef struct {
    int max_new_tokens;        /* default 128 */
    ss_sampler_config sampler; /* default temperature 0.8, top-k 40, top-p 1, repetition penalty 1 */
    const char *stop;          /* stop string (not emitted); NULL or "" = none */
    int sliding;               /* at max_seq go on with the last half of the window (and keep the
                                  last half of a prompt that long) instead of stopping */
    int no_cache;              /* recompute the full forward per token (the reference) */
    int echo;                  /* emit the prompt text first */
    int allow_special;         /* match special tokens written in the prompt (<|endoftext|>, [MASK]) as
                                  their ids; 0 (default): they encode as ordinary text, as everywhere */
} ss_generate_opts;
void ss_generate_opts_defaults(ss_generate_opts *o);

typedef enum {
    SS_GEN_END_OF_TEXT = 0, /* the model produced <|endoftext|> */
    SS_GEN_STOP_STRING,     /* the text reached the stop string */
    SS_GEN_MAX_NEW_TOKENS,  /* max_new_tokens were produced */
    SS_GEN_MAX_SEQ          /* the sequence filled the model's max_seq (not sliding) */
} ss_gen_end;

typedef struct {
    ss_gen_end end;
    size_t prompt_tokens;
    int new_tokens;
    double prompt_seconds, gen_seconds; /* wall clock: the prompt's pass, the rest */
} ss_generate_result;

/* Receives the text in pieces, in order (their concatenation is the
 * continuation, up to the stop string). */
typedef void (*ss_text_fn)(void *ctx, const char *text, size_t len);

/* Continue prompt[0..len) (an empty prompt starts from <|endoftext|>):
 * sample with o->sampler from rng until <|endoftext|>, the stop string,
 * max_new_tokens or max_seq. SS_ERR_ARG for a prompt of max_seq tokens or
 * more unless sliding. */
ss_status ss_generate(ss_generator *g, const char *prompt, size_t len, const ss_generate_opts *o, ss_rng *rng,
                      ss_text_fn emit, void *ctx, ss_generate_result *r, ss_error *err);

#endif
